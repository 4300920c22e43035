"""The services as containers under the CPU limit: health, predictions, agreement, concurrency, cleanup."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations

import httpx
import numpy as np
import pytest
from conftest import SERVICE_NAMES

from model_serving.agreement import compare
from model_serving.checks import corpus_probabilities
from model_serving.model import CLASSES

pytestmark = pytest.mark.integration

_JSON = {"content-type": "application/json"}


def _predict(base_url: str, image: bytes, client: httpx.Client) -> np.ndarray:
    body = json.dumps({"image": base64.b64encode(image).decode()})
    response = client.post(f"{base_url}/predict/?probabilities=true", content=body, headers=_JSON, timeout=60)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["prediction"] == CLASSES[int(np.argmax(payload["probabilities"]))]
    return np.array(payload["probabilities"], dtype=np.float64)


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
    expected = default_artifacts.torch_classifier().probabilities(benchmark_jpeg.read_bytes())
    assert response.json() == {"prediction": CLASSES[int(expected.argmax())]}


def test_services_agree_with_each_other_and_the_reference(services, corpus, default_artifacts):
    names = [p.name for p in corpus]
    reference = corpus_probabilities(default_artifacts.torch_classifier(), corpus)
    served = {}
    with httpx.Client() as client:
        for service, running in services.items():
            served[service] = np.stack([_predict(running.base_url, p.read_bytes(), client) for p in corpus])
    failures = []
    for service, probabilities in served.items():
        result = compare(names, reference, probabilities)
        print(f"{service} vs in-process torch reference: {result.explain()}")
        if not result.ok:
            failures.append(f"{service} vs reference:\n{result.explain()}")
    for first, second in combinations(served, 2):
        result = compare(names, served[first], served[second])
        print(f"{first} vs {second}: {result.explain()}")
        if not result.ok:
            failures.append(f"{first} vs {second}:\n{result.explain()}")
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
