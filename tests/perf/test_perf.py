"""The benchmark (`pytest -m perf`): start-ups, load, and ratio assertions, recorded with pytest-benchmark."""

from __future__ import annotations

import pytest

from model_serving.perf.config import SERVICES
from model_serving.report.ratios import describe_failure
from model_serving.stats import summary
from model_serving.usual.build import UsualUnavailable

pytestmark = pytest.mark.perf


@pytest.mark.parametrize("name", SERVICES)
def test_startup(perf, selected, name, benchmark):
    starter = perf.startups(name)
    runs = perf.config.profile.startup_runs
    perf.progress(f"{name}: {runs} start-ups")
    try:
        benchmark.pedantic(starter.start, setup=starter.stop, rounds=runs, iterations=1)
    finally:
        starter.stop()
    perf.results[name].startup_s = starter.samples
    benchmark.extra_info.update({"startup_s": summary(starter.samples), "image": perf.results[name].image.tag})
    perf.progress(f"{name}: start-up median {summary(starter.samples)['median']:.3f} s")


@pytest.mark.parametrize("name", SERVICES)
def test_load(perf, selected, name, benchmark):
    measurement = benchmark.pedantic(perf.load, args=(name,), rounds=1, iterations=1)
    outcome = measurement.outcome
    if outcome.report:
        report = outcome.report
        memory = [v for _, v in measurement.resources.memory_mb]
        benchmark.extra_info.update(
            {
                "rps": report.rps,
                "latency_ms": report.latency_ms,
                "time_per_request_ms": report.time_per_request_ms,
                "failed": report.failed,
                "non_2xx": report.non_2xx,
                "memory_peak_mb": max(memory) if memory else None,
                "in_process_rps": measurement.in_process_rps,
                "cpus": perf.config.profile.cpus,
                "stages_ms": measurement.stages_ms,
                "in_process_stages_ms": measurement.in_process_detail.get("stages_ms"),
            }
        )
        perf.progress(f"{name}: {report.rps:.1f} req/s, p50 {report.latency_ms['p50']:.0f} ms")
    assert outcome.ok, f"{name}: failed measurement: {outcome.failure}"
    # The service's own count of the run is ab's: the stages describe exactly the requests that were timed.
    assert measurement.responses == {"200": outcome.report.complete}, measurement.responses
    assert {"queue", "parse", "decode", "total"} <= set(measurement.stages_ms), measurement.stages_ms
    assert measurement.at_c1 is not None, "no c=1 run"
    assert measurement.at_c1.outcome.ok, f"{name}: the c=1 run failed: {measurement.at_c1.outcome.failure}"


@pytest.mark.parametrize("name", SERVICES)
def test_load_held_at_high_concurrency(perf, selected, name):
    outcome = perf.load_held(name)
    if outcome.report:
        perf.progress(f"{name}: held {outcome.report.complete} requests at c={outcome.report.concurrency}")
    assert outcome.ok, f"{name} did not hold c={perf.config.profile.held_concurrency}: {outcome.failure}"


@pytest.mark.parametrize("name", SERVICES)
def test_memory_over_requests(perf, selected, name):
    measured = perf.memory_over_requests(name)
    assert measured.failure is None, f"{name}: failed measurement: {measured.failure}"


@pytest.mark.parametrize("name", SERVICES)
def test_against_usual_implementation(perf, selected, name):
    try:
        compared = perf.against_usual(name)
    except UsualUnavailable as reason:
        pytest.skip(str(reason))
    assert compared.failure is None, f"{name} beside {compared.usual}: failed measurement: {compared.failure}"
    assert len(compared.rounds) == perf.config.profile.usual_rounds


def test_ratio_thresholds(perf):
    report = perf.write_report()
    failed = [a for a in report["assertions"] if a["passed"] is False]
    assert not failed, "ratio thresholds not met:\n" + "\n".join(describe_failure(a) for a in failed)
