"""The benchmark (`pytest -m perf`): start-ups, load, and ratio assertions, recorded with pytest-benchmark."""

from __future__ import annotations

import logging

import pytest

from model_serving.perf.target import Unavailable
from model_serving.perf.thresholds import judge_thresholds
from model_serving.report.schema import validate_report
from model_serving.services import SERVICE_NAMES
from model_serving.stats import summary
from model_serving.usual.build import UsualUnavailable

pytestmark = pytest.mark.perf

log = logging.getLogger(__name__)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_startup(perf, selected, name, benchmark):
    try:
        starter = perf.startups(name)
    except Unavailable as reason:  # --target: the suite started no container of it
        pytest.skip(str(reason))
    runs = perf.config.profile.startup_runs
    log.info(f"{name}: {runs} start-ups")
    try:
        benchmark.pedantic(starter.start, setup=starter.stop, rounds=runs, iterations=1)
    finally:
        starter.stop()
    perf.results[name].startup_s = starter.samples
    # With --benchmark-disable pytest-benchmark calls start once, untimed.
    timed = None if benchmark.disabled else benchmark.stats.stats.data
    problems = starter.problems(1 if benchmark.disabled else runs, timed)
    assert not problems, f"{name}: " + "; ".join(problems)
    benchmark.extra_info.update({"startup_s": summary(starter.samples), "image": perf.results[name].image.tag})
    log.info(f"{name}: start-up median {summary(starter.samples)['median']:.3f} s")


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_load(perf, selected, name):
    # Not a pytest-benchmark: its time would hold the container's start, warm-up and the in-process loop; the
    # histories are the load rounds' (TestSideBySide.test_load_round).
    measurement = perf.load(name)
    outcome = measurement.outcome
    if report := outcome.report:
        log.info(f"{name}: {report.rps:.1f} req/s, p50 {report.latency_ms['p50']:.0f} ms")
    assert outcome.ok, f"{name}: failed measurement: {outcome.failure}"
    # The service's own count of the run is ab's: the stages describe exactly the requests that were timed.
    assert measurement.responses == {"200": outcome.report.complete}, measurement.responses
    assert {"queue", "parse", "decode", "total"} <= set(measurement.stages_ms), measurement.stages_ms
    assert measurement.at_c1 is not None, "no c=1 run"
    assert measurement.at_c1.outcome.ok, f"{name}: the c=1 run failed: {measurement.at_c1.outcome.failure}"


@pytest.fixture(scope="class")
def together(perf):
    """The services up side by side for the tests of the class, removed after its last."""
    with perf.side_by_side() as running:
        yield running


class TestSideBySide:
    """Measurements that interleave the services, up together (one CPU limit each, one loaded at a time)."""

    # One test per round and service (tests/perf/conftest.py orders them: round by round, the services rotating),
    # so that pytest-benchmark's history holds each load run alone, not container starts or warm-ups.
    def test_load_round(self, perf, together, selected, name, round_index, benchmark):
        if failed := perf.round_failed(name):
            pytest.skip(f"{name} failed an earlier round: {failed}")
        outcome = benchmark.pedantic(perf.load_round, args=(together, name, round_index), rounds=1, iterations=1)
        if report := outcome.report:
            benchmark.extra_info.update(
                {
                    "round": round_index + 1,
                    "rps": report.rps,
                    "latency_ms": report.latency_ms,
                    "failed": report.failed,
                    "non_2xx": report.non_2xx,
                    "requests": report.complete,
                    "concurrency": report.concurrency,
                    "cpus": perf.config.profile.cpus,
                }
            )
        assert outcome.ok, f"{name}, round {round_index + 1}: failed measurement: {outcome.failure}"
        # Outside the timed call: the history keeps the ab run alone.
        if (limit := perf.round_limit(together, name, round_index)) is not None:
            benchmark.extra_info["in_process_rps"] = limit

    def test_concurrency_sweep(self, perf, together):
        sweep = perf.concurrency_sweep(together)
        levels = list(perf.config.profile.sweep_concurrency)
        assert {name: [p.concurrency for p in points] for name, points in sweep.items()} == dict.fromkeys(
            perf.config.services, levels
        )
        failed = {name: [p.failure for p in points if p.failure] for name, points in sweep.items()}
        assert not any(failed.values()), f"sweep levels that failed (reported as such): {failed}"

    def test_open_loop(self, perf, together):
        if not perf.best_rps():
            pytest.skip("no best req/s to take fractions of: run the sweep or the rounds with it")
        runs = perf.open_loop_runs(together)
        assert set(runs) == set(perf.config.services), "a service without a best req/s to take fractions of"
        for name, points in runs.items():
            assert [p.fraction for p in points] == list(perf.config.profile.open_loop_fractions)
            assert all(p.report is not None and p.report.latency_corrected for p in points), (name, points)

    @pytest.mark.parametrize("name", SERVICE_NAMES)
    def test_capacity_under_a_latency_bound(self, perf, together, selected, name):
        if name not in perf.best_rps():
            pytest.skip(f"no best req/s of {name} to search under: run the sweep or the rounds with it")
        capacity = perf.capacity_under_bound(together, name)
        assert 2 <= len(capacity.probes) <= perf.config.profile.capacity_steps or capacity.rate is None
        log.info(f"{name}: capacity {capacity.rate} req/s with p99 ≤ {perf.config.profile.slo_ms:g} ms")

    def test_payload_sizes(self, perf, together):
        sizes = perf.payload_sizes(together)
        for name, points in sizes.items():
            assert [(p.width, p.height) for p in points] == list(perf.config.profile.payload_sizes)
            assert all(p.failure is None for p in points), (name, [p.failure for p in points])
            assert all({"decode", "total"} <= set(p.stages_ms) for p in points), name


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_load_held_at_high_concurrency(perf, selected, name):
    outcome = perf.load_held(name)
    if outcome.report:
        log.info(f"{name}: held {outcome.report.complete} requests at c={outcome.report.concurrency}")
    assert outcome.ok, f"{name} did not hold c={perf.config.profile.held_concurrency}: {outcome.failure}"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_memory_over_requests(perf, selected, name):
    try:
        measured = perf.memory_over_requests(name)
    except Unavailable as reason:
        pytest.skip(str(reason))
    assert measured.failure is None, f"{name}: failed measurement: {measured.failure}"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_against_usual_implementation(perf, selected, name):
    try:
        compared = perf.against_usual(name)
    except (Unavailable, UsualUnavailable) as reason:
        pytest.skip(str(reason))
    assert compared.failure is None, f"{name} beside {compared.usual}: failed measurement: {compared.failure}"
    assert len(compared.rounds) == perf.config.profile.usual_rounds


def test_ratio_thresholds(perf):
    report = perf.build_report()  # the session writes it once, when the run ends (tests/perf/conftest.py)
    # The JSON it writes matches its documented schema (src/model_serving/report/report.schema.json).
    validate_report(report.to_json())
    unavailable = {name: section.unavailable or {} for name, section in report.services.items()}
    verdict = judge_thresholds(report.assertions, perf.config.services, unavailable)
    assert not verdict.not_met, "ratio thresholds not met:\n" + "\n".join(verdict.not_met)
    # A threshold without a figure is not a pass: unless the run chose not to measure it (--services, --target),
    # a measurement it needs was deselected or did not complete.
    assert not verdict.gaps, "thresholds not measured, though this run measures their services:\n" + "\n".join(
        verdict.gaps
    )
    if verdict.left_out:
        pytest.skip(
            f"{len(verdict.met)} thresholds met; {len(verdict.left_out)} not measured by this run's choice"
            f" (why: summary.md): {'; '.join(verdict.left_out)}"
        )
