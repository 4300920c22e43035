"""The Python services' apps in-process (no Docker): the API contract, fast."""

import base64
import importlib
import json

import pytest
from fastapi.testclient import TestClient

from model_core import CLASSES
from model_serving.inference import torch_classifier

pytestmark = pytest.mark.integration

APPS = {"torch-serving": "torch_serving.app", "onnx-serving": "onnx_serving.app"}


@pytest.fixture(scope="module", params=list(APPS))
def client(request, default_artifacts, monkeypatch_module):
    monkeypatch_module.setenv("MODEL_DIR", str(default_artifacts.directory))
    monkeypatch_module.setenv("WORKERS", "1")
    monkeypatch_module.setenv("THREADS", "1")
    app = importlib.import_module(APPS[request.param]).app
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_health_names_the_model(client, default_artifacts):
    body = client.get("/").json()
    assert body["status"] == "healthy"
    assert body["model_id"] == default_artifacts.manifest["model_id"]
    assert (body["workers"], body["threads"]) == (1, 1)


def test_prediction_and_probabilities(client, benchmark_body, benchmark_jpeg, default_artifacts):
    response = client.post("/predict/?probabilities=true", content=benchmark_body, headers=_JSON)
    assert response.status_code == 200
    body = response.json()
    assert len(body["probabilities"]) == len(CLASSES)
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    expected = torch_classifier(default_artifacts).probabilities(benchmark_jpeg.read_bytes())
    assert body["prediction"] == CLASSES[int(expected.argmax())]
    assert "probabilities" not in client.post("/predict/", content=benchmark_body, headers=_JSON).json()


_JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{broken", _JSON, 400),
        (b"[]", _JSON, 422),
        (b'{"image": 3}', _JSON, 422),
        (json.dumps({"image": base64.b64encode(b"no image").decode()}).encode(), _JSON, 422),
        (b'{"image": "aGk="}', {"content-type": "text/plain"}, 415),
        (b'{"image": "aGk="}', {}, 415),
    ],
)
def test_bad_requests_get_a_4xx_with_detail_and_the_service_stays_up(client, body, headers, status):
    response = client.post("/predict/", content=body, headers=headers)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)
    assert client.get("/").status_code == 200


def test_body_over_the_limit_is_413(default_artifacts, benchmark_body, monkeypatch):
    monkeypatch.setenv("MODEL_DIR", str(default_artifacts.directory))
    monkeypatch.setenv("MAX_BODY_BYTES", "1000")
    app = importlib.import_module(APPS["onnx-serving"]).app
    with TestClient(app) as small:
        response = small.post("/predict/", content=benchmark_body, headers=_JSON)
        assert response.status_code == 413
        assert "limit is 1000" in response.json()["detail"]
        assert small.get("/").status_code == 200


def test_unknown_path_and_wrong_method(client):
    assert client.get("/nope").status_code == 404
    response = client.get("/predict/")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}


def test_metrics_and_server_timing_in_process(client, benchmark_body):
    """The app alone (no launcher, so prometheus_client in its single-process mode): the same figures."""
    from model_serving.metrics.prometheus import parse_scrape

    before = parse_scrape(client.get("/metrics").text)
    answers = [client.post("/predict/", content=benchmark_body, headers=_JSON) for _ in range(2)]
    refused = client.post("/predict/", content=b"{broken", headers=_JSON)
    assert client.get("/").status_code == 200  # neither / nor /metrics is counted
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    run = parse_scrape(response.text).minus(before)
    assert run.responses == {"200": 2, "400": 1}
    assert run.stages["total"].count == 3
    assert run.stages["decode"].count == 2
    for answer in answers:
        stages = [part.split(";")[0] for part in answer.headers["server-timing"].split(", ")]
        assert stages[:3] == ["queue", "parse", "decode"]
        assert stages[-1] == "total"
        assert stages[3:-1] in (["preprocess", "model"], ["inference"])
    assert [part.split(";")[0] for part in refused.headers["server-timing"].split(", ")] == ["queue", "parse", "total"]
