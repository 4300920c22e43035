"""Where the time goes, in the running services: ``GET /metrics`` counts exactly what was asked, with one worker and
with two; ``Server-Timing`` on every ``/predict/`` answer; ``/metrics`` answers beside the predictions of a saturated
service, not after them."""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest

from model_serving.load.ab_runner import run_ab
from model_serving.metrics.prometheus import parse_scrape
from model_serving.perf.measure import scrape
from model_serving.services import SERVICE_NAMES

pytestmark = pytest.mark.integration

_JSON = {"content-type": "application/json"}
#: A scrape queued behind c=50 predictions would take about one prediction's latency (ratio ~1).
MAX_SCRAPE_OVER_PREDICTION = 0.5
#: The stages each service times (torch runs preprocessing and the network apart; ONNX runs one graph).
STAGES = {
    "torch-serving": {"queue", "parse", "decode", "preprocess", "model", "total"},
    "onnx-serving": {"queue", "parse", "decode", "inference", "total"},
    "rust-onnx-serving": {"queue", "parse", "decode", "inference", "total"},
}
_TIMING = re.compile(r"^([a-z]+);dur=(\d+\.\d{3})$")


def server_timing(header: str | None) -> dict[str, float]:
    assert header, "no Server-Timing header"
    parts = [_TIMING.match(part.strip()) for part in header.split(",")]
    assert all(parts), header
    return {match.group(1): float(match.group(2)) for match in parts if match}


def _post(url: str, body: bytes, headers: dict[str, str] = _JSON) -> httpx.Response:
    # A connection per request, so that with two workers either may take it.
    return httpx.post(f"{url}/predict/", content=body, headers={**headers, "connection": "close"}, timeout=120)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_n_predictions_count_n_and_errors_count_under_their_code(read_only_services, benchmark_body, name, workers):
    predictions = 5
    # Shared with test_hardening (read-only, as deployed): the counts are the difference over this test's requests.
    service = read_only_services(name, workers)
    before = scrape(service)
    answers = [_post(service.base_url, benchmark_body) for _ in range(predictions)]
    unprocessable = _post(service.base_url, b'{"picture": "x"}')
    unsupported = _post(service.base_url, benchmark_body, {"content-type": "text/plain"})
    # Whichever worker answers a scrape, it reports every worker's figures.
    scrapes = [scrape(service) for _ in range(3)]
    text = httpx.get(f"{service.base_url}/metrics", headers={"connection": "close"}, timeout=30).text
    assert [a.status_code for a in answers] == [200] * predictions
    assert (unprocessable.status_code, unsupported.status_code) == (422, 415)
    runs = [after.minus(before) for after in scrapes]
    assert all(run == runs[0] for run in runs[1:]), "scrapes answered by different workers disagree"
    run = runs[0]
    assert run.responses == {"200": predictions, "422": 1, "415": 1}
    counts = {stage: histogram.count for stage, histogram in run.stages.items() if histogram.count}
    expected = {stage: predictions for stage in STAGES[name]}
    expected["total"] = predictions + 2  # every answer
    expected["queue"] = expected["parse"] = predictions + 1  # the 415 is refused before the body is processed
    assert counts == expected
    assert run.in_flight == 0
    # Process memory and CPU: prometheus_client's / the prometheus crate's process metrics.
    assert "process_resident_memory_bytes" in text
    assert "process_cpu_seconds_total" in text
    for answer in answers:
        timing = server_timing(answer.headers.get("server-timing"))
        assert set(timing) == STAGES[name]
        assert sum(v for k, v in timing.items() if k != "total") <= timing["total"] + 0.01
    assert set(server_timing(unprocessable.headers.get("server-timing"))) == {"queue", "parse", "total"}
    assert set(server_timing(unsupported.headers.get("server-timing"))) == {"total"}


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_metrics_do_not_queue_behind_predictions_at_c50(services, benchmark_body, tmp_path, name):
    """A scrape while 50 predictions wait takes a fraction of a prediction's time at that moment: it is answered
    beside them, not after them (queued, it would take about as long as they do). Relative to the same run's
    latency, as this machine's speed moves 2-3x from hour to hour."""
    body = tmp_path / "body.json"
    body.write_bytes(benchmark_body)
    service = services[name]
    outcome = {}
    load = threading.Thread(
        target=lambda: outcome.update(run=run_ab(f"{service.base_url}/predict/", body, 200, 50, name))
    )
    load.start()
    try:
        in_flight, seconds = [], []
        deadline = time.monotonic() + 60
        while len(seconds) < 5 and time.monotonic() < deadline and load.is_alive():
            started = time.perf_counter()
            response = httpx.get(f"{service.base_url}/metrics", timeout=10)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200
            scraped = parse_scrape(response.text, name).in_flight or 0
            if scraped >= 40:  # saturated: ab's 50 clients are all waiting on the service
                in_flight.append(scraped)
                seconds.append(elapsed)
            time.sleep(0.1)
    finally:
        load.join()
    run = outcome["run"]
    assert run.ok, run.failure
    prediction_s = run.report.latency_ms["p50"] / 1000
    print(
        f"\n{name}: /metrics at c=50 took {[f'{s * 1000:.0f} ms' for s in seconds]}, in flight {in_flight}; "
        f"a prediction's median {prediction_s * 1000:.0f} ms"
    )
    assert len(seconds) == 5, "the service was never seen saturated (in flight ≥ 40) five times"
    assert max(seconds) < MAX_SCRAPE_OVER_PREDICTION * prediction_s
