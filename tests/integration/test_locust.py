"""Locust distributed on loopback (one master, two workers; short, bounded runs): against a running service its
figures are a measurement in the report's form and agree with the service's own count of answers; a non-2xx
answer, from a local server or from the service, makes the run a failed measurement that says why."""

from __future__ import annotations

import logging

import httpx
import pytest
from jsonschema import Draft202012Validator
from status_server import status_server

from model_serving.load.locust_runner import LocustSpec, free_port, run_locust
from model_serving.metrics.prometheus import parse_scrape
from model_serving.report.document import load_figures
from model_serving.report.schema import report_schema

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)

SERVICE = "rust-onnx-serving"  # the quickest of the three: more requests in the same few seconds
WORKERS = 2
USERS = 4
RUN_TIME_S = 4


def _answers(base_url: str) -> dict[str, float]:
    """The service's own count of /predict/ answers by status code."""
    return dict(parse_scrape(httpx.get(f"{base_url}/metrics", timeout=10).text, SERVICE).responses)


def _load_section(outcome) -> dict:
    """What report/document.py writes as a service's ``load`` for this outcome, checked against the schema."""
    section = load_figures(outcome.report) if outcome.report else {}
    section["failure"] = outcome.failure
    schema = report_schema()
    Draft202012Validator({"$ref": "#/$defs/load", "$defs": schema["$defs"]}).validate(section)
    return section


@pytest.fixture
def bad_body(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"image": "not base64!"}')
    return path


def test_distributed_run_against_a_service(services, benchmark_body, tmp_path):
    service = services[SERVICE]
    payload = tmp_path / "payload.json"
    payload.write_bytes(benchmark_body)
    before = _answers(service.base_url)
    outcome = run_locust(LocustSpec(service.base_url, payload, USERS, RUN_TIME_S, WORKERS), "locust")
    after = _answers(service.base_url)
    assert outcome.ok, outcome.failure
    assert outcome.exit_code == 0
    report = outcome.report
    assert report is not None
    assert report.rps > 0
    assert report.complete > 0
    assert (report.failed, report.non_2xx) == (0, 0)
    assert report.concurrency == USERS
    assert 0 < report.latency_ms["p50"] <= report.latency_ms["p99"] <= report.latency_ms["max"]
    # Every request Locust counted was answered 200 by the service, and none besides (the stop lets requests in
    # flight finish, so none is sent and left uncounted).
    answered = {code: after.get(code, 0.0) - before.get(code, 0.0) for code in after}
    assert {code: n for code, n in answered.items() if n} == {"200": report.complete}
    section = _load_section(outcome)
    assert section["requests"] == report.complete
    assert section["failure"] is None
    log.info(
        f"locust against {SERVICE}: {report.complete} requests, {report.rps:.1f} req/s, p50 "
        f"{report.latency_ms['p50']:.0f} ms, p99 {report.latency_ms['p99']:.0f} ms"
    )


def test_non_2xx_answers_from_a_local_server_fail_the_measurement(bad_body):
    with status_server(every=5, status=503) as url:
        outcome = run_locust(LocustSpec(url, bad_body, 2, 2, WORKERS))
    assert not outcome.ok
    assert outcome.exit_code == 1  # --exit-code-on-error 1
    report = outcome.report
    assert report is not None
    assert report.non_2xx > 0
    assert report.failed == 0
    # every fifth answer, give or take the requests each worker's users had in flight
    assert report.non_2xx == pytest.approx(report.complete / 5, rel=0.05)
    assert f"{report.non_2xx} of {report.complete} answers were not 2xx (HTTP 503: {report.non_2xx})" == (
        outcome.failure
    )
    assert _load_section(outcome)["non_2xx"] == report.non_2xx


def test_a_bad_body_against_the_service_fails_the_measurement(services, bad_body):
    outcome = run_locust(LocustSpec(services[SERVICE].base_url, bad_body, 2, 2, WORKERS))
    assert not outcome.ok
    report = outcome.report
    assert report is not None
    assert report.non_2xx == report.complete > 0
    assert f"answers were not 2xx (HTTP 422: {report.complete})" in (outcome.failure or "")


def test_no_answer_fails_the_measurement(bad_body):
    outcome = run_locust(LocustSpec(f"http://127.0.0.1:{free_port()}", bad_body, 2, 1, WORKERS))
    assert not outcome.ok
    report = outcome.report
    assert report is not None
    assert report.failed == report.complete > 0
    assert "requests got no answer" in (outcome.failure or "")
    assert "Connection refused" in (outcome.failure or "")
