"""The limits of serving_common: REQUEST_TIMEOUT_S (parsing and the 504), the aspect-ratio limit, huge integers."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import numpy as np
import pytest
import service_doubles
from PIL import Image
from service_doubles import png_body

from serving_common.app import Service
from serving_common.config import Settings
from serving_common.decoding import MAX_ASPECT_RATIO, decode_rgb
from serving_common.errors import ApiError
from serving_common.request import parse_predict_body

pytestmark = pytest.mark.unit


def _timeout(monkeypatch, value: str | None) -> float:
    if value is None:
        monkeypatch.delenv("REQUEST_TIMEOUT_S", raising=False)
    else:
        monkeypatch.setenv("REQUEST_TIMEOUT_S", value)
    return Settings.from_env(default_port=8080).request_timeout_s


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, 30.0),
        ("", 30.0),
        ("0.001", 0.001),
        (" 2 ", 2.0),
        ("+1.5", 1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e-3", 0.001),
        ("2.5E+1", 25.0),
        ("1_0.2_5", 10.25),
        ("1_0e0_1", 100.0),
        ("86400", 86_400.0),
    ],
)
def test_request_timeout_is_a_number_of_seconds(monkeypatch, value, seconds):
    assert _timeout(monkeypatch, value) == seconds


# The same values and messages as rust_onnx_serving's config tests.
@pytest.mark.parametrize(
    "value",
    ["fast", "inf", "nan", "-inf", "1_", "_1", "1__0", "1._5", "1_.5", ".", "1e", "e3", "0x10", "30s", "1 0", "\u0661"],
)
def test_request_timeout_that_is_no_number_is_refused(monkeypatch, value):
    with pytest.raises(ValueError, match=f"^REQUEST_TIMEOUT_S must be a number of seconds, got {value!r}$"):
        _timeout(monkeypatch, value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "must be greater than 0, got 0"),
        ("-1", "must be greater than 0, got -1"),
        ("-0.0", "must be greater than 0, got -0.0"),
        ("1e-400", "must be greater than 0, got 1e-400"),
        ("86401", "must be at most 86400, got 86401"),
        ("1e999", "must be at most 86400, got 1e999"),
    ],
)
def test_request_timeout_out_of_range_is_refused(monkeypatch, value, message):
    with pytest.raises(ValueError, match=f"^REQUEST_TIMEOUT_S {message}$"):
        _timeout(monkeypatch, value)


def test_request_timeout_is_logged_with_the_settings(monkeypatch):
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "2.5")
    assert Settings.from_env(default_port=8080).describe()["request_timeout_s"] == 2.5


class _SlowPredictor:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0
        self.finished = threading.Event()

    def probabilities(self, pixels: np.ndarray, stages: object = None) -> np.ndarray:
        self.calls += 1
        time.sleep(self.seconds)
        self.finished.set()
        return np.array([0.25, 0.75])


def test_a_slow_request_is_a_504_at_the_timeout_and_the_thread_is_abandoned():
    predictor = _SlowPredictor(0.5)
    service = service_doubles.service(predictor, request_timeout_s=0.05)
    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        asyncio.run(service.predict_within_timeout(png_body()))
    elapsed = time.monotonic() - started
    assert caught.value.status == 504
    assert caught.value.detail == "the request took longer than REQUEST_TIMEOUT_S (0.05 s) to process"
    # Answered at the timeout, not when the inference ends (the abandoned thread still finishes it).
    assert elapsed < 0.4
    assert predictor.finished.wait(2)


def test_fast_requests_and_refusals_are_unchanged():
    service = service_doubles.service(_SlowPredictor(0), request_timeout_s=5)
    index, probabilities = asyncio.run(service.predict_within_timeout(png_body()))
    assert index == 1
    assert list(probabilities) == [0.25, 0.75]
    with pytest.raises(ApiError) as caught:
        asyncio.run(service.predict_within_timeout(b"{}"))
    assert (caught.value.status, caught.value.detail) == (422, "field 'image' is missing")


def test_work_past_its_deadline_is_not_started():
    predictor = _SlowPredictor(0)
    service = service_doubles.service(predictor, request_timeout_s=1)
    with pytest.raises(ApiError) as caught:
        service.predict(png_body(), deadline=time.monotonic() - 1)
    assert caught.value.status == 504
    assert predictor.calls == 0


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(("width", "height"), [(1, 100), (100, 1), (3, 300), (1, 1), (640, 480)])
def test_aspect_ratios_up_to_100_to_1_decode(width, height):
    assert decode_rgb(_png(width, height)).shape == (height, width, 3)


@pytest.mark.parametrize(
    ("width", "height", "resized"),
    [(1, 101, 25856), (2000, 1, 512000), (301, 3, 25685)],
)
def test_aspect_ratios_over_100_to_1_are_refused(width, height, resized):
    with pytest.raises(ApiError) as caught:
        decode_rgb(_png(width, height), max_pixels=50_000_000)
    assert caught.value.status == 422
    assert caught.value.detail == (
        f"image is {width}x{height} pixels, an aspect ratio over {MAX_ASPECT_RATIO}:1; "
        f"the model would resize it to 256x{resized} pixels"
    )


def test_max_pixels_is_checked_before_the_aspect_ratio():
    with pytest.raises(ApiError, match="the limit is 100 pixels"):
        decode_rgb(_png(1, 101), max_pixels=100)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"image": ' + b"9" * 5000 + b"}", "field 'image' must be a base64 string, got number"),
        (b"-" + b"1" * 5000, "request body must be a JSON object, got number"),
        (b"[" + b"1" * 10000 + b"]", "request body must be a JSON object, got array"),
    ],
)
def test_integers_of_any_length_are_numbers_not_errors(body, detail):
    with pytest.raises(ApiError) as caught:
        parse_predict_body(body)
    assert (caught.value.status, caught.value.detail) == (422, detail)


class _CountingPredictor:
    """Records the most requests it ever had in progress at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.in_progress = 0
        self.most_at_once = 0
        self.calls = 0
        self._lock = threading.Lock()

    def probabilities(self, pixels: np.ndarray, stages: object = None) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.in_progress += 1
            self.most_at_once = max(self.most_at_once, self.in_progress)
        time.sleep(self.seconds)
        with self._lock:
            self.in_progress -= 1
        return np.array([0.25, 0.75])


async def _concurrently(service: Service, count: int) -> list[object]:
    tasks = [asyncio.ensure_future(service.predict_within_timeout(png_body())) for _ in range(count)]
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_a_worker_processes_one_request_at_a_time():
    predictor = _CountingPredictor(0.02)
    service = service_doubles.service(predictor, request_timeout_s=10)
    results = asyncio.run(_concurrently(service, 8))
    assert all(isinstance(result, tuple) for result in results), results
    assert predictor.calls == 8
    assert predictor.most_at_once == 1


def test_a_request_that_waits_past_its_timeout_is_a_504_and_never_runs():
    predictor = _CountingPredictor(0.3)
    service = service_doubles.service(predictor, request_timeout_s=0.2)
    results = asyncio.run(_concurrently(service, 3))
    statuses = [result.status for result in results if isinstance(result, ApiError)]
    # The first runs past the timeout (504, finishes in its abandoned thread); the other two time out waiting.
    assert statuses == [504, 504, 504]
    time.sleep(0.5)
    assert predictor.calls <= 2, "a request still waiting for its turn at its deadline must not be run"
