from pathlib import Path

import pytest

from model_serving.load.ab_parser import AbParseError, judge_ab_run, parse_ab_output

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ab"


def _text(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_success_every_figure():
    report = parse_ab_output(_text("success.txt"))
    assert report.document_path == "/predict/"
    assert report.document_length == 26
    assert report.concurrency == 10
    assert report.time_taken_s == pytest.approx(6.254)
    assert (report.complete, report.failed, report.non_2xx) == (200, 0, 0)
    assert report.total_transferred_bytes == 34000
    assert report.html_transferred_bytes == 5200
    assert report.body_sent_bytes == 58901800
    assert report.rps == pytest.approx(31.98)
    assert report.time_per_request_ms == pytest.approx(312.679)
    assert report.time_per_request_all_ms == pytest.approx(31.268)
    assert report.transfer_received_kb_s == pytest.approx(5.31)
    assert report.transfer_sent_kb_s == pytest.approx(9198.14)
    assert report.transfer_rate_mb_s == pytest.approx(5.31 / 1024)
    assert report.connection_times["total"].median == 307
    assert report.connection_times["processing"].sd == pytest.approx(66.2)
    assert report.latency_ms == {
        "p50": 307,
        "p66": 337,
        "p75": 352,
        "p80": 364,
        "p90": 386,
        "p95": 408,
        "p98": 434,
        "p99": 479,
        "max": 518,
    }


def test_success_is_a_measurement():
    outcome = judge_ab_run(0, _text("success.txt"), requested=200)
    assert outcome.ok
    assert outcome.report is not None


def test_non_2xx_is_a_failed_measurement():
    outcome = judge_ab_run(0, _text("non_2xx.txt"), requested=100)
    assert not outcome.ok
    assert "100 non-2xx responses" in outcome.failure
    assert outcome.report.non_2xx == 100


def test_failed_requests_are_a_failed_measurement():
    outcome = judge_ab_run(0, _text("failed_length.txt"), requested=200)
    assert not outcome.ok
    assert "186 failed requests (length 186)" in outcome.failure
    assert outcome.report.failed_breakdown == {"connect": 0, "receive": 0, "length": 186, "exceptions": 0}


def test_failed_and_non_2xx_report_both():
    outcome = judge_ab_run(0, _text("failed_and_non_2xx.txt"), requested=200)
    assert "130 failed requests" in outcome.failure
    assert "70 non-2xx responses" in outcome.failure


def test_connection_refused_is_a_failed_measurement_with_the_reason():
    outcome = judge_ab_run(111, _text("connection_refused.txt"), requested=20)
    assert not outcome.ok
    assert outcome.report is None
    assert "Connection refused" in outcome.failure
    assert "exit code 111" in outcome.failure
    with pytest.raises(AbParseError, match="did not finish"):
        parse_ab_output(_text("connection_refused.txt"))


def test_fewer_requests_than_asked_is_a_failed_measurement():
    outcome = judge_ab_run(0, _text("success.txt"), requested=400)
    assert "200 of 400 requests completed" in outcome.failure


def test_nonzero_exit_with_full_output_is_still_a_failure():
    outcome = judge_ab_run(1, _text("success.txt"), requested=200)
    assert "ab exited with 1" in outcome.failure
