import json
from pathlib import Path

import pytest

from model_serving.load.oha_parser import OhaParseError, parse_oha_json
from model_serving.load.oha_runner import judge_oha_run

pytestmark = pytest.mark.unit

RECORDINGS = Path(__file__).parents[1] / "data" / "oha"
# As tests/data/oha/record.py made them: 450 POSTs at 150/s on one connection, against a server answering in
# 2 ms that freezes for 500 ms every second.
RATE_PER_S = 150.0
REQUESTS = 450


def _text(name: str) -> str:
    return (RECORDINGS / name).read_text()


def _parse(name: str, corrected: bool):
    return parse_oha_json(_text(name), RATE_PER_S, latency_corrected=corrected)


def _edited(change) -> str:
    """The corrected recording with ``change`` applied to its parsed JSON (the file itself stays as oha wrote it)."""
    document = json.loads(_text("corrected.json"))
    change(document)
    return json.dumps(document)


@pytest.mark.parametrize(("name", "corrected"), [("corrected.json", True), ("uncorrected.json", False)])
def test_recording_fields(name, corrected):
    report = _parse(name, corrected)
    assert report.requested_rate_per_s == RATE_PER_S
    assert report.latency_corrected is corrected
    assert (report.requests, report.responses, report.successes) == (REQUESTS, REQUESTS, REQUESTS)
    assert (report.errors, report.non_2xx) == (0, 0)
    assert report.status_codes == {200: REQUESTS}
    assert report.error_kinds == {}
    # 3 s of schedule, plus at most one freeze to drain at the end
    assert 3.0 <= report.duration_s <= 3.6
    assert report.achieved_rate_per_s == pytest.approx(REQUESTS / report.duration_s)
    latency = report.latency
    assert latency is not None
    assert 0 < latency.p50_ms <= latency.p90_ms <= latency.p99_ms <= latency.max_ms
    assert latency.mean_ms <= latency.max_ms
    # whichever way it is measured, the request caught by a freeze waited for most of it
    assert 400 <= latency.max_ms <= 700


def test_exact_figures_in_ms():
    latency = _parse("corrected.json", True).latency
    assert latency is not None
    assert latency.p50_ms == pytest.approx(175.658709)
    assert latency.p90_ms == pytest.approx(437.748193)
    assert latency.p99_ms == pytest.approx(497.207098)
    assert latency.max_ms == pytest.approx(501.812037)
    assert latency.mean_ms == pytest.approx(193.08847345555544)


def test_correction_reveals_coordinated_omission():
    """Uncorrected, only the one request in flight at each freeze (3 of 450) waited, so p99 is the 2 ms answer;
    corrected, the ~75 requests scheduled during each freeze count their wait too."""
    corrected = _parse("corrected.json", True).latency
    uncorrected = _parse("uncorrected.json", False).latency
    assert corrected is not None
    assert uncorrected is not None
    assert uncorrected.p99_ms < 20
    assert corrected.p99_ms > 300
    assert corrected.p99_ms > 10 * uncorrected.p99_ms
    assert corrected.mean_ms > 10 * uncorrected.mean_ms


def test_non_2xx_and_error_kinds_are_counted():
    def change(document):
        document["statusCodeDistribution"] = {"200": 440, "500": 7, "404": 3}
        document["errorDistribution"] = {"Connection refused (os error 111)": 2, "timeout": 1}

    report = parse_oha_json(_edited(change), RATE_PER_S, latency_corrected=True)
    assert (report.requests, report.responses, report.successes, report.non_2xx) == (453, 450, 440, 10)
    assert report.status_codes == {200: 440, 500: 7, 404: 3}
    assert (report.errors, report.error_kinds) == (3, {"Connection refused (os error 111)": 2, "timeout": 1})
    # only 2xx answers count as throughput
    assert report.achieved_rate_per_s == pytest.approx(440 / report.duration_s)


def test_nothing_answered_has_no_latency():
    def change(document):
        document["statusCodeDistribution"] = {}
        document["errorDistribution"] = {"Connection refused (os error 111)": 20}
        for key in document["latencyPercentiles"]:
            document["latencyPercentiles"][key] = None
        for key in ("slowest", "fastest", "average"):
            document["summary"][key] = None

    report = parse_oha_json(_edited(change), RATE_PER_S, latency_corrected=True)
    assert (report.requests, report.successes, report.errors) == (20, 0, 20)
    assert report.latency is None
    assert report.achieved_rate_per_s == 0.0


def _drop(*path):
    def change(document):
        for key in path[:-1]:
            document = document[key]
        del document[path[-1]]

    return change


def _set(value, *path):
    def change(document):
        for key in path[:-1]:
            document = document[key]
        document[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not JSON"),
        ("Summary:\n  Success rate: 100.00%", "not JSON"),
        ("[1, 2]", "not an object"),
        (_edited(_drop("summary")), "no 'summary'"),
        (_edited(_drop("summary", "total")), "no 'summary.total'"),
        (_edited(_drop("latencyPercentiles", "p99")), "no 'latencyPercentiles.p99'"),
        (_edited(_drop("statusCodeDistribution")), "no 'statusCodeDistribution'"),
        (_edited(_drop("errorDistribution")), "no 'errorDistribution'"),
        (_edited(_set("fast", "summary", "average")), "'summary.average' is not a number"),
        (_edited(_set(0.0, "summary", "total")), "not a positive duration"),
        (_edited(_set({"OK": 450}, "statusCodeDistribution")), "not a status code"),
        (_edited(_set({"200": -1}, "statusCodeDistribution")), "'statusCodeDistribution.200' is not a count"),
        (_edited(_set(None, "latencyPercentiles", "p90")), "450 responses but gives no latency for p90"),
    ],
)
def test_malformed_output_is_a_clear_value_error(text, message):
    with pytest.raises(ValueError, match=message) as raised:
        parse_oha_json(text, RATE_PER_S, latency_corrected=True)
    assert isinstance(raised.value, OhaParseError)


def test_requested_rate_must_be_positive():
    with pytest.raises(ValueError, match="requested rate must be positive"):
        parse_oha_json(_text("corrected.json"), 0.0, latency_corrected=True)


def test_judge_accepts_a_clean_run():
    outcome = judge_oha_run(0, _text("corrected.json"), "", RATE_PER_S, latency_corrected=True)
    assert outcome.ok
    assert outcome.report is not None


def test_judge_refuses_errors_and_non_2xx():
    def change(document):
        document["statusCodeDistribution"] = {"200": 449, "500": 1}
        document["errorDistribution"] = {"aborted due to deadline": 2}

    outcome = judge_oha_run(0, _edited(change), "", RATE_PER_S, latency_corrected=True)
    assert not outcome.ok
    assert outcome.report is not None
    assert outcome.failure == (
        "2 of 452 requests failed (aborted due to deadline: 2); 1 of 452 responses were not 2xx (500: 1)"
    )


def test_judge_reports_oha_failing_and_unparsable_output():
    failed = judge_oha_run(2, "", "error: invalid value 'x' for '-q'", RATE_PER_S, latency_corrected=True)
    assert not failed.ok
    assert failed.failure == "oha failed (exit code 2): error: invalid value 'x' for '-q'"
    garbled = judge_oha_run(0, "{", "", RATE_PER_S, latency_corrected=True)
    assert not garbled.ok
    assert garbled.report is None
    assert "not JSON" in (garbled.failure or "")
