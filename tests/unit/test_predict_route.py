"""``POST /predict/`` outside FastAPI's stack: the query, the checks' order, the routing (docs/contract.md §1)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import service_doubles
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from service_doubles import png_body

from serving_common.app import ServiceApp, create_app
from serving_common.errors import ApiError
from serving_common.metrics import ServiceMetrics
from serving_common.predict_route import PredictRoute, probabilities_wanted, require_json, send_json

#: The contract's spellings of a boolean (docs/contract.md §1).
SPELLINGS = {"true": True, "1": True, "yes": True, "on": True, "t": True, "y": True}
SPELLINGS |= {"false": False, "0": False, "no": False, "off": False, "f": False, "n": False}


def _case_variants(word: str) -> set[str]:
    return {word, word.upper(), word.capitalize(), word.swapcase(), word[:-1] + word[-1].upper()}


@pytest.mark.parametrize(("word", "wanted"), SPELLINGS.items())
def test_every_spelling_of_a_boolean_in_any_ascii_case(word, wanted):
    for spelling in _case_variants(word):
        assert probabilities_wanted(f"probabilities={spelling}".encode()) is wanted


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("", False),  # absent
        ("other=1", False),
        ("Probabilities=true", False),  # names are case-sensitive: this is another parameter
        ("probabilities=1&probabilities=no", False),  # the last one counts
        ("probabilities=no&probabilities=1", True),
        ("other=1&probabilities=y&x", True),
        ("%70robabilities=%74rue", True),  # percent-escapes in names and values
        ("probabilities=ON&other=%ff", True),
    ],
)
def test_the_query_is_form_urlencoded_and_the_last_occurrence_counts(query, wanted):
    assert probabilities_wanted(query.encode()) is wanted


@pytest.mark.parametrize(
    "query",
    [
        "probabilities",  # no value is an empty one
        "probabilities=",
        "probabilities=maybe",
        "probabilities=2",
        "probabilities=tru",
        "probabilities=truee",
        "probabilities=%20true",
        "probabilities=true+",  # + is a space
        "probabilities=1.0",
        "probabilities=%EF%BC%B4rue",  # a fullwidth T
        "probabilities=%C4%B0",  # İ, whose lower case is i and a combining dot
        "probabilities=%ff",  # not UTF-8
        "probabilities=true&probabilities=x",  # the last one counts
    ],
)
def test_anything_else_is_422(query):
    with pytest.raises(ApiError) as caught:
        probabilities_wanted(query.encode())
    assert caught.value.status == 422
    assert caught.value.detail.startswith("query parameter 'probabilities' must be a boolean")


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


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        (b"application/json", True),
        (b"APPLICATION/Json", True),
        (b"application/json; charset=utf-8", True),
        (b"application/json \t;x=y", True),
        (b"application/jsonx", False),
        (b"application/json\xa0", False),  # not HTTP whitespace
        (b"application/json, text/plain", False),
        (b"text/plain; application/json", False),
        (b"", False),
    ],
)
def test_the_content_type(content_type, accepted):
    scope = {"headers": [(b"content-type", content_type)]}
    if accepted:
        require_json(scope)
    else:
        with pytest.raises(ApiError) as caught:
            require_json(scope)
        assert caught.value.status == 415


@pytest.mark.parametrize("path", ["/predict/", "/predict"])
def test_the_path_with_and_without_the_slash_is_one_endpoint(client, path):
    response = client.post(path + "?probabilities=yes", content=png_body(), headers=_JSON, follow_redirects=False)
    assert (response.status_code, response.json()) == (200, {"prediction": "b", "probabilities": [0.25, 0.75]})
    assert "total;dur=" in response.headers["server-timing"]
    refused = client.post(path, content=b"[]", headers=_JSON, follow_redirects=False)
    assert (refused.status_code, refused.json()) == (422, {"detail": "request body must be a JSON object, got array"})


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/predict/", "/predict"])
def test_other_methods_are_405(client, method, path):
    response = client.request(method, path, follow_redirects=False)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "total;dur=" in response.headers["server-timing"]
    if method != "HEAD":
        assert response.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/nowhere"), ("POST", "/predict//"), ("POST", "/predict/v2"), ("GET", "/metrics/")]
)
def test_other_paths_are_404_never_a_redirect(client, method, path):
    response = client.request(method, path, content=png_body(), headers=_JSON, follow_redirects=False)
    assert response.status_code == 404


def test_the_service_app_makes_no_slash_redirects():
    app = create_app("test", lambda settings, manifest: _Predictor(), port=8080)
    client = TestClient(app)  # not entered: no lifespan, no model, which /metrics does not need
    assert client.get("/metrics", follow_redirects=False).status_code == 200
    assert client.get("/metrics/", follow_redirects=False).status_code == 404


def test_both_names_are_counted_as_the_one_endpoint():
    metrics = ServiceMetrics("test")
    service = service_doubles.service(_Predictor())
    client = TestClient(ServiceApp(PredictRoute(lambda: service), metrics))
    for path in ["/predict/", "/predict", "/predict", "/nowhere"]:
        client.post(path, content=png_body(), headers=_JSON)
    client.get("/predict")
    exposition = metrics.exposition()[0].decode()
    assert 'model_serving_requests_total{code="200",service="test"} 3.0' in exposition
    assert 'model_serving_requests_total{code="405",service="test"} 1.0' in exposition
    assert 'code="404"' not in exposition
