import ast
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from model_serving.load import locust_parser, locust_runner
from model_serving.load.locust_parser import (
    LocustParseError,
    history_snapshot,
    judge_locust_run,
    parse_failures,
    parse_locust_stats,
)
from model_serving.load.locust_runner import LOCUSTFILE, LocustSpec, master_command, worker_command
from model_serving.report.document import load_figures
from model_serving.report.schema import report_schema

pytestmark = pytest.mark.unit

RECORDINGS = Path(__file__).parents[1] / "data" / "locust"
# As tests/data/locust/record.py made them: one master and two workers; 2 users for 2 s against a local server
# (ok, non_2xx: every fifth answer 503, refused: nobody listening), 4 users for 3 s against rust-onnx-serving
# with the benchmark body (service).
USERS = {"ok": 2, "non_2xx": 2, "refused": 2, "service": 4}


def _files(name: str) -> dict[str, str]:
    folder = RECORDINGS / name
    return {
        "stats_csv": (folder / "run_stats.csv").read_text(),
        "failures_csv": (folder / "run_failures.csv").read_text(),
        "exceptions_csv": (folder / "run_exceptions.csv").read_text(),
    }


def _judge(name: str, exit_code: int = 0, **replaced: str):
    files = {**_files(name), **replaced}
    return judge_locust_run(exit_code, users=USERS[name], **files)


def _load_section(outcome) -> dict:
    """What report/document.py writes as a service's ``load`` for this outcome."""
    section = load_figures(outcome.report) if outcome.report else {}
    section["failure"] = outcome.failure
    return section


def _validate_load(section: dict) -> None:
    schema = report_schema()
    Draft202012Validator({"$ref": "#/$defs/load", "$defs": schema["$defs"]}).validate(section)


@pytest.mark.parametrize("name", ["ok", "service"])
def test_clean_runs_are_measurements(name):
    outcome = _judge(name)
    assert outcome.ok, outcome.failure
    report = outcome.report
    assert report is not None
    assert report.complete > 0
    assert (report.failed, report.non_2xx) == (0, 0)
    assert report.concurrency == USERS[name]
    assert report.document_path == "/predict/"
    assert report.rps > 0
    # Locust's req/s is its count over the run's time, which is what the report's time_taken_s is made from
    assert report.time_taken_s == pytest.approx(report.complete / report.rps)
    assert report.time_per_request_all_ms == pytest.approx(1000 * report.time_taken_s / report.complete)
    assert report.time_per_request_ms == pytest.approx(USERS[name] * report.time_per_request_all_ms)
    latency = report.latency_ms
    assert list(latency) == ["p50", "p66", "p75", "p80", "p90", "p95", "p98", "p99", "max"]
    assert list(latency.values()) == sorted(latency.values())
    total = report.connection_times["total"]
    assert total.min <= total.mean <= total.max == latency["max"]
    assert total.sd is None


def test_service_recording_exact_figures():
    report = _judge("service").report
    assert report is not None
    assert report.complete == 249
    assert report.rps == pytest.approx(80.71163624226187)
    assert report.latency_ms["p50"] == 44
    assert report.latency_ms["p99"] == 110
    assert report.latency_ms["max"] == pytest.approx(136.5473910000219)  # exact, where 100% is rounded to 140
    assert report.connection_times["total"].mean == pytest.approx(47.745071200807274)
    assert report.document_length == 26  # {"prediction": "<class>"}


@pytest.mark.parametrize("name", ["ok", "service", "non_2xx", "refused"])
def test_figures_fit_the_reports_load_section(name):
    section = _load_section(_judge(name, exit_code=0 if name in ("ok", "service") else 1))
    _validate_load(section)
    assert section["requests"] > 0
    assert section["rps"] > 0
    assert section["latency_mean_ms"] is not None


def test_non_2xx_answers_fail_the_measurement():
    outcome = _judge("non_2xx", exit_code=1)
    assert not outcome.ok
    report = outcome.report
    assert report is not None
    assert report.non_2xx == 1099
    assert report.failed == 0
    assert report.complete == 5497
    assert outcome.failure == "1099 of 5497 answers were not 2xx (HTTP 503: 1099)"


def test_requests_without_answer_fail_the_measurement():
    outcome = _judge("refused", exit_code=1)
    assert not outcome.ok
    report = outcome.report
    assert report is not None
    assert report.failed == report.complete == 15255
    assert report.non_2xx == 0
    assert report.failed_breakdown == {"no answer: ConnectionRefusedError(111, 'Connection refused')": 15255}
    assert "15255 of 15255 requests got no answer" in (outcome.failure or "")
    assert "Connection refused" in (outcome.failure or "")


def test_failure_messages_are_unwrapped():
    failures = parse_failures(_files("refused")["failures_csv"]) + parse_failures(_files("non_2xx")["failures_csv"])
    assert [(f.message, f.non_2xx) for f in failures] == [
        ("no answer: ConnectionRefusedError(111, 'Connection refused')", False),
        ("non-2xx answer: HTTP 503", True),
    ]


def test_failures_missing_from_the_table_still_fail():
    """A failure count the failure table does not explain is counted as a request without an answer."""
    outcome = _judge("non_2xx", exit_code=1, failures_csv=_files("ok")["failures_csv"])
    assert not outcome.ok
    assert outcome.report is not None
    assert outcome.report.failed == 1099
    assert "not in Locust's failure table × 1099" in (outcome.failure or "")


def test_exceptions_in_the_users_fail_the_measurement():
    exceptions = "Count,Message,Traceback,Nodes\n4,\"RuntimeError('MODEL_SERVING_PAYLOAD must name')\",tb,vm_1\n"
    outcome = _judge("ok", exit_code=1, exceptions_csv=exceptions)
    assert not outcome.ok
    assert "the users raised exceptions (RuntimeError('MODEL_SERVING_PAYLOAD must name') × 4)" in (
        outcome.failure or ""
    )


def test_a_run_without_requests_is_a_failure_with_the_users_exceptions():
    stats = (RECORDINGS / "ok" / "run_stats.csv").read_text().splitlines()[0] + "\n"
    stats += ",Aggregated,0,0,0,0,0,0,0,0,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A\n"
    exceptions = "Count,Message,Traceback,Nodes\n2,FileNotFoundError('body.json'),tb,vm_1\n"
    outcome = _judge("ok", exit_code=1, stats_csv=stats, exceptions_csv=exceptions)
    assert outcome.report is None
    assert "Locust counted no requests" in (outcome.failure or "")
    assert "FileNotFoundError('body.json') × 2" in (outcome.failure or "")


def test_a_nonzero_exit_without_failures_names_the_log():
    outcome = judge_locust_run(3, users=2, log_tail="Gave up waiting for workers to connect", **_files("ok"))
    assert not outcome.ok
    assert outcome.failure == "locust exited with 3; the master's log ends: Gave up waiting for workers to connect"


def test_missing_files_are_a_failure_not_a_crash():
    outcome = judge_locust_run(1, "", "", "", users=2, log_tail="the master's last words")
    assert outcome.report is None
    assert outcome.failure == "Locust wrote no statistics (exit code 1); the master's log ends: the master's last words"


def test_unreadable_files_are_a_failure_not_a_crash():
    outcome = judge_locust_run(1, "garbage\n", "", "garbage\n", users=2, log_tail="last words")
    assert outcome.report is None
    failure = outcome.failure or ""
    assert failure.startswith("Locust's stats.csv has no column 'Type'")
    assert "exceptions.csv has no column 'Count'" in failure
    assert "last words" not in failure  # the files explain enough


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda text: text.replace(",Aggregated,", ",Total,"), "no Aggregated row"),
        (lambda text: text.replace("99%,", "99th,"), "no column '99%'"),
        (lambda text: text.replace(",4781,", ",many,"), "is not a count"),
    ],
)
def test_malformed_stats_are_refused(change, message):
    with pytest.raises(LocustParseError, match=message):
        parse_locust_stats(change(_files("ok")["stats_csv"]), _files("ok")["failures_csv"], 2)


def test_history_snapshot():
    seen = history_snapshot((RECORDINGS / "service" / "run_stats_history.csv").read_text())
    assert seen is not None
    assert (seen.users, seen.requests, seen.failures) == (0, 249, 0)  # the last row, written after the stop
    assert history_snapshot("") is None
    assert history_snapshot("Timestamp,User Count,Type,Name\n") is None


def _assigned_strings(path: Path) -> dict[str, str]:
    """Module-level ``NAME = "string"`` assignments of a file, read without importing it (importing Locust
    would patch this process with gevent)."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def test_locustfile_and_parser_agree_on_the_failure_prefixes_and_payload_variable():
    locustfile = _assigned_strings(LOCUSTFILE)
    assert locustfile["NON_2XX"] == locust_parser.NON_2XX
    assert locustfile["NO_ANSWER"] == locust_parser.NO_ANSWER
    assert locustfile["PAYLOAD_ENV"] == locust_runner.PAYLOAD_ENV
    assert locustfile["PATH"] == "/predict/"


def test_commands():
    spec = LocustSpec("http://127.0.0.1:8082/", Path("body.json"), users=50, run_time_s=30, workers=4)
    master = master_command(spec, 5601, Path("/tmp/x/run"))
    joined = " ".join(master)
    for expected in (
        "--headless --master",
        "--master-bind-host 127.0.0.1 --master-bind-port 5601",
        "--expect-workers 4",
        "--host http://127.0.0.1:8082 ",
        "--users 50 --spawn-rate 50 --run-time 30s",
        "--csv /tmp/x/run",
        "--exit-code-on-error 1",
    ):
        assert expected in joined
    assert str(LOCUSTFILE) in master
    assert worker_command(5601)[-5:] == ["--worker", "--master-host", "127.0.0.1", "--master-port", "5601"]
    assert spec.deadline_s > spec.run_time_s + spec.stop_timeout_s
    remote = LocustSpec("http://10.0.0.5:8082", Path("b"), 200, 60, workers=0, remote_workers=3, bind_host="0.0.0.0")
    joined = " ".join(master_command(remote, 5557, Path("run")))
    assert "--master-bind-host 0.0.0.0 --master-bind-port 5557 --expect-workers 3" in joined


def test_spec_is_bounded():
    with pytest.raises(ValueError, match="must be positive"):
        LocustSpec("http://x", Path("b"), users=2, run_time_s=0)
