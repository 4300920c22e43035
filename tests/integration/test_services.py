"""The services as containers under the CPU limit: health, predictions, agreement, concurrency, cleanup."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from model_core import CLASSES
from model_serving.checks import served_disagreements
from model_serving.inference import torch_classifier
from model_serving.services import SERVICE_NAMES

pytestmark = pytest.mark.integration

_JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_health_reports_model_and_configuration(services, name, default_artifacts, cpus):
    body = httpx.get(services[name].base_url + "/", timeout=10).json()
    assert body["status"] == "healthy"
    assert body["model_id"] == default_artifacts.manifest["model_id"]
    assert body["workers"] >= 1
    assert body["threads"] >= 1
    assert body["workers"] * body["threads"] <= max(1, int(cpus))


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_prediction_on_the_benchmark_payload(services, name, benchmark_body, benchmark_jpeg, default_artifacts):
    response = httpx.post(services[name].base_url + "/predict/", content=benchmark_body, headers=_JSON, timeout=60)
    assert response.status_code == 200
    expected = torch_classifier(default_artifacts).probabilities(benchmark_jpeg.read_bytes())
    assert response.json() == {"prediction": CLASSES[int(expected.argmax())]}


def test_services_agree_with_each_other_and_the_reference(services, corpus, default_artifacts):
    failures = served_disagreements(
        default_artifacts, {name: running.base_url for name, running in services.items()}, corpus
    )
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_50_concurrent_requests_all_succeed(services, name, benchmark_body):
    url = services[name].base_url + "/predict/"
    with httpx.Client(limits=httpx.Limits(max_connections=50)) as client:

        def post(_: int) -> tuple[int, str]:
            response = client.post(url, content=benchmark_body, headers=_JSON, timeout=120)
            return response.status_code, response.text

        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(post, range(50)))
    assert [status for status, _ in results] == [200] * 50
    assert len({text for _, text in results}) == 1
