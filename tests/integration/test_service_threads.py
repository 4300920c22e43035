"""CPU per thread in the running services: the thread that decodes and infers is found by its name and is the one
that spends the CPU of predictions; the server's thread spends some too."""

from __future__ import annotations

import httpx
import pytest

from model_serving.load.thread_sampler import container_threads
from model_serving.metrics.thread_cpu import cpu_per_request
from model_serving.services import SERVICE_NAMES

pytestmark = pytest.mark.integration

WORKER_NAMES = {"torch-serving": "predict", "onnx-serving": "predict", "rust-onnx-serving": "inference-0"}


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_predictions_are_the_worker_threads_cpu(services, benchmark_body, name):
    running = services[name]
    container = running.container.get_wrapped_container()
    before = container_threads(container)
    requests = 20
    with httpx.Client(timeout=120) as client:
        for _ in range(requests):
            response = client.post(
                f"{running.base_url}/predict/", content=benchmark_body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 200, response.text
    measured = cpu_per_request(before, container_threads(container), requests)
    busiest_name, busiest_role, busiest_ms = measured.threads[0]
    assert (busiest_name, busiest_role) == (WORKER_NAMES[name], "worker"), measured.threads
    roles = measured.by_role()
    # A decode and an inference cost far more than reading a body and writing an answer.
    assert roles["worker"] > 3 * roles["server"] > 0, measured.threads
    assert busiest_ms == roles["worker"]  # one worker thread
