"""``POST /predict/`` outside FastAPI's stack answers as the FastAPI route it replaced did."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import service_doubles
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from service_doubles import png_body

from serving_common.app import ServiceApp
from serving_common.errors import ApiError
from serving_common.metrics import ServiceMetrics
from serving_common.predict_route import PredictRoute, probabilities_wanted, send_json

QUERIES = [
    "",
    "probabilities=true",
    "probabilities=YES",
    "probabilities=On",
    "probabilities=0",
    "probabilities=f",
    "probabilities=",
    "probabilities=maybe",
    "probabilities=2",
    "probabilities=%20true",
    "probabilities=1&probabilities=no",
    "probabilities=no&probabilities=1",
    "other=1&probabilities=y",
    "probabilities",
    "Probabilities=true",
]


def _fastapi_reading() -> TestClient:
    app = FastAPI()

    @app.get("/q")
    async def query(probabilities: bool = False) -> dict[str, bool]:
        return {"probabilities": probabilities}

    return TestClient(app)


@pytest.mark.parametrize("query", QUERIES)
def test_the_query_is_read_as_fastapi_reads_a_bool_parameter(query):
    expected = _fastapi_reading().get(f"/q?{query}")
    if expected.status_code == 200:
        assert probabilities_wanted(query.encode()) is expected.json()["probabilities"]
    else:
        assert expected.status_code == 422
        with pytest.raises(ApiError) as caught:
            probabilities_wanted(query.encode())
        assert caught.value.status == 422
        assert caught.value.detail.endswith(f"got {expected.json()['detail'][0]['input']!r}")


@pytest.mark.parametrize("content", [{"prediction": "rain"}, {"detail": 'é \u2028 "x"'}, {"p": [0.1, 1e-30, 1.0]}])
def test_answers_are_rendered_as_json_response_renders_them(content):
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    asyncio.run(send_json(send, 201, content))
    expected = JSONResponse(content, status_code=201)
    assert sent[0] == {"type": "http.response.start", "status": 201, "headers": expected.raw_headers}
    assert sent[1] == {"type": "http.response.body", "body": expected.body}


class _Predictor:
    def probabilities(self, pixels: np.ndarray, stages: object = None) -> np.ndarray:
        return np.array([0.25, 0.75])


@pytest.fixture
def client() -> TestClient:
    service = service_doubles.service(_Predictor(), max_body_bytes=2048)
    app = ServiceApp(PredictRoute(lambda: service), ServiceMetrics("test"))
    return TestClient(app)


_JSON = {"content-type": "application/json"}


def test_a_prediction_with_and_without_probabilities(client):
    plain = client.post("/predict/", content=png_body(), headers=_JSON)
    assert (plain.status_code, plain.json()) == (200, {"prediction": "b"})
    assert "server-timing" in plain.headers
    full = client.post("/predict/?probabilities=on", content=png_body(), headers=_JSON)
    assert full.json() == {"prediction": "b", "probabilities": [0.25, 0.75]}


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "detail"),
    [
        (
            "/predict/",
            b"{}",
            {"content-type": "text/plain"},
            415,
            "content type must be application/json, got text/plain",
        ),
        ("/predict/", b"{}", {}, 415, "content type must be application/json, got none"),
        # The query is judged first, as FastAPI judged its parameters before the handler ran.
        ("/predict/?probabilities=x", b"{}", {"content-type": "text/plain"}, 422, None),
        ("/predict/", b" " * 4096, _JSON, 413, "request body is 4096 bytes; the limit is 2048"),
        ("/predict/", b"{}", {"content-type": "Application/JSON; charset=utf-8"}, 422, "field 'image' is missing"),
    ],
)
def test_refusals(client, path, body, headers, status, detail):
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    if detail is not None:
        assert response.json() == {"detail": detail}


def test_other_methods_and_the_path_without_slash_are_answered_by_fastapi(client):
    wrong_method = client.get("/predict/")
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"detail": "Method Not Allowed"})
    assert wrong_method.headers["allow"] == "POST"
    redirect = client.post("/predict", content=png_body(), headers=_JSON, follow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["location"].endswith("/predict/")
    assert client.get("/nowhere").status_code == 404
