"""CPU per request by thread: the schedstat parser, the roles of the three services' threads, the difference of two
readings, reading a container's threads from a /proc tree, and the report and summary that show it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_report import AB, CONFIG, ENVIRONMENT, _ab_report, _results

from model_serving.load.ab_parser import judge_ab_run
from model_serving.load.thread_sampler import ThreadsUnavailable, container_threads
from model_serving.metrics.thread_cpu import ThreadTime, cpu_per_request, parse_schedstat
from model_serving.perf.measure import thread_cpu_over
from model_serving.perf.rounds import Rounds
from model_serving.report.document import SideBySideResults, build_report
from model_serving.report.summary import render_summary


def test_schedstat_gives_the_time_on_a_cpu():
    assert parse_schedstat("961452131 22049931 2178\n") == 961452131
    for bad in ("", "12 34", "a b c", "1 2 3 4"):
        with pytest.raises(ValueError, match="not a schedstat line"):
            parse_schedstat(bad)


# Thread names as /proc showed them in the three containers under load (2026-12-05), with (pid, tid).
RECORDED = {
    "torch-serving": [(1, 1, "python", "server"), (1, 47, "python", "other"), (1, 82, "libuv-worker", "other")],
    "onnx-serving": [(1, 1, "python", "server"), (1, 63, "predict", "worker"), (1, 57, "libuv-worker", "other")],
    "rust-onnx-serving": [
        (1, 1, "rust-onnx-servi", "other"),
        (1, 7, "inference-0", "worker"),
        (1, 8, "actix-rt|system", "server"),
        (1, 9, "actix-server ac", "server"),
    ],
}


@pytest.mark.parametrize("service", RECORDED)
def test_each_thread_has_its_role(service):
    for pid, tid, name, role in RECORDED[service]:
        assert ThreadTime(pid, tid, name, 0).role == role, name
    # A supervisor's worker process: its main thread is its event loop.
    assert ThreadTime(12, 12, "python", 0).role == "server"
    assert ThreadTime(1, 12, "python3.11", 0).role == "other"


def _threads(*rows: tuple[int, str, int]) -> dict[int, ThreadTime]:
    return {tid: ThreadTime(1, tid, name, ns) for tid, name, ns in rows}


def test_cpu_per_request_is_each_threads_difference_over_the_requests():
    before = _threads((1, "python", 500_000_000), (63, "predict", 2_000_000_000), (57, "libuv-worker", 1_000))
    after = _threads(
        (1, "python", 1_500_000_000),  # 1 s over 1000 requests: 1 ms each
        (63, "predict", 10_500_000_000),  # 8.5 ms each
        (57, "libuv-worker", 1_000),  # idle
        (90, "python", 200_000_000),  # started during the run: counted from zero
    )
    measured = cpu_per_request(before, after, 1000)
    assert [name for name, _, _ in measured.threads] == ["predict", "python", "python", "libuv-worker"]
    assert measured.by_role() == {"server": 1.0, "worker": 8.5, "other": 0.2}
    assert measured.as_dict()["ms_per_request"] == {"server": 1.0, "worker": 8.5, "other": 0.2, "total": 9.7}
    assert measured.as_dict()["threads"][0] == {"name": "predict", "role": "worker", "ms_per_request": 8.5}


def test_a_reused_thread_id_with_another_name_counts_from_zero():
    measured = cpu_per_request(_threads((5, "predict", 9_000_000)), _threads((5, "inference-0", 3_000_000)), 3)
    assert measured.by_role()["worker"] == 1.0
    with pytest.raises(ValueError, match="positive"):
        cpu_per_request({}, {}, 0)


class _Container:
    """What container_threads reads of a docker Container."""

    def __init__(self, pid: int, container_id: str = "c0ffee" * 10) -> None:
        self.id, self.short_id = container_id, container_id[:12]
        self.attrs: dict[str, Any] = {"State": {"Pid": pid}}

    def reload(self) -> None:
        pass


def _task(proc: Path, pid: int, tid: int, name: str, ns: int, children: str = "") -> None:
    task = proc / str(pid) / "task" / str(tid)
    task.mkdir(parents=True)
    (task / "comm").write_text(name + "\n")
    (task / "schedstat").write_text(f"{ns} 100 7\n")
    (task / "children").write_text(children)


def test_a_containers_threads_are_its_processes_and_their_children(tmp_path):
    container = _Container(100)
    (tmp_path / "100").mkdir()
    (tmp_path / "100" / "cgroup").write_text(f"4:memory:/docker/{container.id}\n1:cpu:/docker/{container.id}\n")
    _task(tmp_path, 100, 100, "python", 10, children="200 ")
    _task(tmp_path, 100, 101, "python", 20)
    _task(tmp_path, 200, 200, "python", 30)  # a worker process the supervisor started
    _task(tmp_path, 200, 205, "predict", 40)
    threads = container_threads(container, proc=tmp_path)  # type: ignore[arg-type]
    assert {tid: (t.pid, t.name, t.cpu_ns, t.role) for tid, t in threads.items()} == {
        100: (100, "python", 10, "server"),
        101: (100, "python", 20, "other"),
        200: (200, "python", 30, "server"),
        205: (200, "predict", 40, "worker"),
    }


def test_a_process_that_is_not_the_containers_is_refused(tmp_path):
    (tmp_path / "100").mkdir()
    (tmp_path / "100" / "cgroup").write_text("0::/user.slice/some-other-thing\n")
    with pytest.raises(ThreadsUnavailable, match="remote engine"):
        container_threads(_Container(100), proc=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ThreadsUnavailable, match="not readable here"):
        container_threads(_Container(300), proc=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ThreadsUnavailable, match="no process"):
        container_threads(_Container(0), proc=tmp_path)  # type: ignore[arg-type]


def test_the_report_and_summary_show_cpu_by_thread_or_why_not():
    results = {"onnx-serving": _results(), "rust-onnx-serving": _results()}
    before = _threads((1, "python", 0), (63, "predict", 0))
    after = _threads((1, "python", 200_000_000), (63, "predict", 3_200_000_000))
    results["onnx-serving"].load.thread_cpu = cpu_per_request(before, after, 200)  # 1.0 and 16.0 ms
    results["rust-onnx-serving"].load.thread_cpu_unavailable = "process 9 is not readable here: remote engine?"
    report = build_report("run-threads", "t", ENVIRONMENT, CONFIG, results, {})
    onnx, rust = report.services["onnx-serving"], report.services["rust-onnx-serving"]
    assert onnx.thread_cpu is not None
    assert onnx.thread_cpu.ms_per_request.to_json() == {"server": 1.0, "worker": 16.0, "other": 0.0, "total": 17.0}
    assert "thread_cpu" not in rust.to_json()
    assert rust.unavailable == {"thread_cpu": "process 9 is not readable here: remote engine?"}
    summary = render_summary(report)
    # in-process 64 req/s: 15.625 ms a request; worker ÷ that 1.024; that ÷ total 0.919
    assert (
        "| `onnx-serving` | 1.00 | 16.00 | 0.00 | 17.00 | 15.62 | 1.024 | 0.919 | `predict` 16.00, `python` 1.00 |"
        in (summary)
    )
    assert "remote engine?" in summary


def test_the_rounds_mean_cpu_by_thread_is_in_the_rounds_section_and_the_summary():
    rounds = Rounds(
        reports={"onnx-serving": [_ab_report(v) for v in (100.0, 110.0)]},
        limits={"onnx-serving": [125.0, 100.0]},  # in-process 8 and 10 ms a request
        thread_cpu={
            "onnx-serving": [
                cpu_per_request({}, _threads((1, "python", 1_000_000_000), (63, "predict", 8_000_000_000)), 1000),
                cpu_per_request({}, _threads((1, "python", 600_000_000), (63, "predict", 9_400_000_000)), 1000),
            ]
        },
    )
    results = {"onnx-serving": _results()}
    report = build_report("r", "t", ENVIRONMENT, CONFIG, results, {}, together=SideBySideResults(rounds))
    section = report.services["onnx-serving"].rounds
    assert section is not None
    assert section.thread_cpu_ms is not None
    assert section.thread_cpu_ms.to_json() == {"server": 0.8, "worker": 8.7, "other": 0.0, "total": 9.5, "rounds": 2}
    # in-process: the mean of 8 and 10 ms, 9 ms; ÷ 9.5 ms of CPU a request: 0.947
    assert "`onnx-serving` 0.80 / 8.70 / 9.50 (in-process 9.00, ÷ total 0.947)" in render_summary(report)
    assert Rounds(reports={"onnx-serving": []}).mean_thread_cpu("onnx-serving") is None


def test_a_run_between_two_readings_gives_its_cpu_or_why_not():
    ok = judge_ab_run(0, AB, requested=200)  # 200 requests completed
    readings = iter([_threads((63, "predict", 0)), _threads((63, "predict", 400_000_000))])
    result, measured, why = thread_cpu_over(lambda: next(readings), lambda: ok, lambda outcome: outcome)
    assert (result, why) == (ok, None)
    assert measured is not None
    assert measured.by_role()["worker"] == 2.0

    def unreadable() -> dict[int, ThreadTime]:
        raise ThreadsUnavailable("process 9 is not readable here: remote engine?")

    assert thread_cpu_over(unreadable, lambda: ok, lambda outcome: outcome) == (
        ok,
        None,
        "process 9 is not readable here: remote engine?",
    )
    assert thread_cpu_over(None, lambda: ok, lambda outcome: outcome) == (ok, None, None)
    failed = judge_ab_run(0, AB, requested=300)  # fewer completed than asked: a failed run has no figure
    readings = iter([_threads((63, "predict", 0)), _threads((63, "predict", 1))])
    assert thread_cpu_over(lambda: next(readings), lambda: failed, lambda outcome: outcome) == (failed, None, None)
