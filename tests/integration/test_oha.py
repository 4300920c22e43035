"""The real oha (``make setup`` builds it) at a fixed rate against a local server that freezes once a second:
latency correction must show the freezes that the uncorrected figures hide, and the rate must be held."""

from __future__ import annotations

import socket

import pytest
from stalling_server import stalling_server

from model_serving.load.oha_runner import OhaNotInstalled, OpenLoopSpec, find_oha, run_oha

pytestmark = pytest.mark.integration

RATE_PER_S = 150.0
DURATION_S = 3.0
# One connection: the freeze holds it, so the requests scheduled meanwhile queue in oha (see stalling_server).
CONCURRENCY = 1


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    path = tmp_path_factory.mktemp("oha") / "body.json"
    path.write_text('{"image": "not really"}')
    return path


def _run(url, body, corrected):
    spec = OpenLoopSpec(
        url, body, RATE_PER_S, CONCURRENCY, duration_s=DURATION_S, latency_correction=corrected, timeout_s=10.0
    )
    outcome = run_oha(spec)
    assert outcome.ok, outcome.failure
    assert outcome.report is not None
    return outcome.report


def test_correction_shows_the_stalls_and_the_rate_is_held(body):
    with stalling_server() as url:
        corrected = _run(url, body, corrected=True)
    with stalling_server() as url:
        uncorrected = _run(url, body, corrected=False)
    assert corrected.latency is not None
    assert uncorrected.latency is not None
    assert corrected.latency.p99_ms > uncorrected.latency.p99_ms
    # a freeze is 500 ms and the requests it delays are half of each second's: corrected p99 shows most of it
    assert corrected.latency.p99_ms > 250
    for report in (corrected, uncorrected):
        assert report.successes == report.requests
        # -w answers what was scheduled before the deadline: up to one freeze later than the schedule
        assert 0.75 * RATE_PER_S <= report.achieved_rate_per_s <= 1.05 * RATE_PER_S
        assert report.requests >= 0.9 * RATE_PER_S * DURATION_S


def test_refused_connections_fail_the_measurement(body):
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = run_oha(OpenLoopSpec(f"http://127.0.0.1:{port}/", body, 50.0, 2, requests=10))
    assert not outcome.ok
    assert outcome.report is not None
    assert outcome.report.latency is None
    assert "10 of 10 requests failed" in (outcome.failure or "")


def test_missing_oha_says_to_run_make_setup(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_SERVING_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OhaNotInstalled, match="make setup"):
        find_oha()
