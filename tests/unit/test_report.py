import json
import math
from pathlib import Path

import pytest

from model_serving.docker.build import BuiltImage
from model_serving.load.ab_parser import judge_ab_run
from model_serving.load.stats_sampler import ResourceSamples
from model_serving.perf.config import load_thresholds, parse_threshold_option, profile_with
from model_serving.perf.measure import LoadMeasurement, MemoryOverRequests, StagedRun
from model_serving.perf.rounds import Rounds
from model_serving.report.breakdown import breakdowns
from model_serving.report.document import ServiceResults, SideBySideResults, build_report, memory_growth
from model_serving.report.environment import ab_name
from model_serving.report.ratios import evaluate, ratios
from model_serving.report.sections import IntervalFigure
from model_serving.report.store import save_report
from model_serving.report.summary import render_summary
from model_serving.usual.compare import UsualComparison

pytestmark = pytest.mark.unit

AB = (Path(__file__).parents[1] / "fixtures" / "ab" / "success.txt").read_text()
# What the report reads of the run's settings (the rest of RunConfig.describe is forwarded as given).
CONFIG = {"profile": "smoke", "requests": 200, "concurrency": 10, "cpus": 1.0, "startup_runs": 3, "payload": "p"}
ENVIRONMENT = {"host_cpu": "cpu", "host_cores": 2, "docker_engine": "28", "ab": "ab 2.3"}


def test_ratios_only_where_both_services_were_measured():
    assert ratios({"torch-serving": 10.0, "onnx-serving": 30.0, "rust-onnx-serving": None}) == {"onnx_over_torch": 3.0}


def test_evaluate_min_max_and_unmeasured():
    measured = {"rps": {"onnx_over_torch": 1.5}, "startup_s": {"rust_over_onnx": 0.6}}
    results = {
        a.name: a.passed
        for a in evaluate(
            measured,
            {"rps.onnx_over_torch.min": 1.2, "startup_s.rust_over_onnx.max": 0.5, "rps.rust_over_onnx.min": 1.0},
        )
    }
    assert results == {
        "rps.onnx_over_torch.min": True,
        "startup_s.rust_over_onnx.max": False,
        "rps.rust_over_onnx.min": None,
    }


def test_threshold_configuration(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.model-serving.thresholds]\n"rps.onnx_over_torch.min" = 1.1\n')
    assert load_thresholds(pyproject, {"x.y.max": 2.0}) == {"rps.onnx_over_torch.min": 1.1, "x.y.max": 2.0}
    assert parse_threshold_option("rps.rust_over_onnx.min=1.5") == ("rps.rust_over_onnx.min", 1.5)
    with pytest.raises(ValueError, match="name=value"):
        parse_threshold_option("oops")


def test_profile_overrides():
    profile = profile_with("smoke", requests=10, cpus=2.0)
    assert (profile.requests, profile.cpus, profile.concurrency) == (10, 2.0, 50)
    with pytest.raises(ValueError, match="unknown profile"):
        profile_with("huge")


def _results(rps_scale: float = 1.0) -> ServiceResults:
    outcome = judge_ab_run(0, AB.replace("31.98", f"{31.98 * rps_scale:.2f}"), requested=200)
    resources = ResourceSamples(memory_mb=[(0.0, 70.0), (1.0, 90.0)], cpu_percent=[(1.0, 99.0)])
    load = LoadMeasurement(outcome, resources, {"workers": 1, "threads": 1}, in_process_rps=64.0)
    image = BuiltImage("x", "model-serving/x:abc", "sha256:1", 100.0, built=False)
    return ServiceResults(image, startup_s=[1.0, 1.2, 1.1], load=load)


def _report():
    results = {"torch-serving": _results(), "onnx-serving": _results(2.0)}
    return build_report(
        "run1", "2026-01-01T00:00:00+00:00", ENVIRONMENT, CONFIG, results, {"rps.onnx_over_torch.min": 1.5}
    )


def test_report_document_has_the_schema():
    report = _report()
    section = report.services["onnx-serving"]
    assert section.load is not None
    assert section.load.latency_ms is not None
    assert section.load.rps == pytest.approx(63.96)
    assert section.load.latency_ms.p99 == 479
    assert section.memory_mb is not None
    assert section.startup_s is not None
    assert section.memory_mb.to_json() == {"mean": 80.0, "peak": 90.0, "series": [[0.0, 70.0], [1.0, 90.0]]}
    assert section.startup_s.median == 1.1
    assert section.efficiency == pytest.approx(63.96 / 64.0, abs=1e-3)
    assert report.ratios.rps == {"onnx_over_torch": pytest.approx(2.0, abs=1e-3)}
    assert report.to_json()["assertions"] == [
        {"name": "rps.onnx_over_torch.min", "measured": pytest.approx(2.0, abs=1e-3), "threshold": 1.5, "passed": True}
    ]


def test_failed_measurement_has_no_efficiency_and_shows_in_the_summary():
    results = {"torch-serving": _results()}
    bad = (Path(__file__).parents[1] / "fixtures" / "ab" / "non_2xx.txt").read_text()
    results["torch-serving"].load.outcome = judge_ab_run(0, bad, requested=100)
    report = build_report("run2", "t", ENVIRONMENT, {**CONFIG, "requests": 100}, results, {})
    assert report.services["torch-serving"].efficiency is None
    assert "100 non-2xx responses" in render_summary(report)


def test_saved_report_has_json_summary_plots_and_latest(tmp_path):
    folder = save_report(_report(), tmp_path)
    assert json.loads((folder / "report.json").read_text())["run_id"] == "run1"
    summary = (folder / "summary.md").read_text()
    assert "## Performance" in summary
    assert "## Deployment" in summary
    assert "onnx_over_torch" in summary
    for plot in ("throughput", "latency_percentiles", "memory", "image_size", "startup"):
        assert (folder / f"{plot}.png").stat().st_size > 1000
    assert (tmp_path / "latest").resolve() == folder.resolve()


def test_memory_growth_is_last_batch_over_first_batch():
    # Warm-up at 60 MB, the working set at 90 after the first batch, then flat: no growth.
    assert memory_growth([(20, 60.0), (520, 90.0), (1020, 91.0), (1520, 90.5)]) == pytest.approx(1.0056, abs=1e-4)
    assert memory_growth([(20, 60.0), (520, 90.0), (1020, 120.0), (1520, 150.0)]) == pytest.approx(1.6667, abs=1e-4)
    assert memory_growth([(20, 60.0), (520, 90.0)]) is None  # one batch says nothing about growth


def test_memory_over_requests_in_report_summary_and_assertions():
    results = {"torch-serving": _results(), "onnx-serving": _results(2.0)}
    results["torch-serving"].memory_over_requests = MemoryOverRequests([(20, 200.0), (520, 300.0), (1020, 390.0)])
    results["onnx-serving"].memory_over_requests = MemoryOverRequests([(20, 100.0), (520, 150.0), (1020, 151.0)])
    thresholds = {"memory_growth.torch-serving.max": 1.1, "memory_growth.onnx-serving.max": 1.1}
    report = build_report("run3", "t", ENVIRONMENT, CONFIG, results, thresholds)
    torch_memory = report.services["torch-serving"].memory_over_requests
    assert torch_memory is not None
    assert torch_memory.growth == 1.3
    passed = {a.name: a.passed for a in report.assertions}
    assert passed == {"memory_growth.torch-serving.max": False, "memory_growth.onnx-serving.max": True}
    summary = render_summary(report)
    assert "## Memory over requests" in summary
    assert "200.0 → 300.0 → 390.0" in summary


def test_the_report_names_the_model_it_measured():
    results = {"torch-serving": _results()}
    source = {"kind": "state_dict", "uri": "gs://weights/weather.pt", "generation": 17, "location": "gcs"}
    model = {"model_id": "ab" * 32, "source": source}
    report = build_report("run4", "t", ENVIRONMENT, CONFIG, results, {}, model)
    assert report.model.model_id == "ab" * 32
    assert report.to_json()["model"] == model  # forwarded as given
    assert "Model `abababababab`: state dict `gs://weights/weather.pt` (generation 17)." in render_summary(report)


def _staged_results(name: str) -> ServiceResults:
    results = _results()
    onnx = name != "torch-serving"
    model = {"inference": {"mean": 20.0, "p50": 19.0, "p99": 30.0, "count": 30}}
    if not onnx:
        model = {
            "preprocess": {"mean": 8.0, "p50": 8.0, "p99": 9.0, "count": 30},
            "model": {"mean": 12.0, "p50": 12.0, "p99": 14.0, "count": 30},
        }
    stages = {
        "queue": {"mean": 0.5, "p50": 0.4, "p99": 1.0, "count": 30},
        "parse": {"mean": 2.0, "p50": 2.0, "p99": 3.0, "count": 30},
        "decode": {"mean": 10.0, "p50": 10.0, "p99": 12.0, "count": 30},
        **model,
        "total": {"mean": 33.0, "p50": 33.0, "p99": 40.0, "count": 30},
    }
    c1 = judge_ab_run(0, AB, requested=200)  # ab's mean time per request there: 312.7 ms at c=10
    results.load.stages_ms = {**stages, "queue": {"mean": 280.0, "p50": 280.0, "p99": 400.0, "count": 200}}
    results.load.at_c1 = StagedRun(c1, stages, {"200": 30.0})

    def bench(mean: float) -> dict[str, float]:
        return {"mean": mean, "p50": mean, "p99": mean * 1.2}

    in_process = {"parse": bench(1.5), "decode": bench(9.0), **{k: bench(v["mean"]) for k, v in model.items()}}
    if onnx:
        in_process.update(preprocess=bench(14.0), model=bench(5.0))
    results.load.in_process_detail = {"stages_ms": in_process}
    return results


def test_stages_in_the_report_with_coverage_at_c1_and_the_breakdown():
    results = {name: _staged_results(name) for name in ("torch-serving", "onnx-serving")}
    thresholds = {"stage_coverage.onnx-serving.min": 0.85, "stage_coverage.onnx-serving.max": 1.15}
    report = build_report("run5", "t", ENVIRONMENT, CONFIG, results, thresholds)
    onnx = report.services["onnx-serving"]
    assert onnx.stages_ms is not None
    assert onnx.at_c1 is not None
    assert onnx.load is not None
    assert onnx.stages_ms["inference"].to_json() == {"mean": 20.0, "p50": 19.0, "p99": 30.0, "count": 30}
    assert onnx.at_c1.stage_sum_ms == 32.5
    mean = onnx.at_c1.mean_ms
    assert mean is not None
    assert onnx.at_c1.coverage == pytest.approx(32.5 / mean, abs=1e-4)
    assert report.ratios.stage_coverage["onnx-serving"] == onnx.at_c1.coverage
    passed = {a.name: a.passed for a in report.assertions}
    # 32.5 ms of ab's 312.7 ms: the stages explain far too little
    assert passed == {"stage_coverage.onnx-serving.min": False, "stage_coverage.onnx-serving.max": True}

    rows = {row.label: row for row in breakdowns(onnx)}
    assert list(rows) == ["c=1", "c=10", "in-process"]
    assert rows["c=1"].other_ms == pytest.approx(mean - 32.5, abs=1e-3)
    # Above c=1 the latency is the requests' own mean (ab's connection times: 305 ms), not its time per request
    # (312.7 ms: concurrency × run time ÷ requests, which also counts the ramp-up and the drain).
    assert rows["c=10"].latency_ms == 305.0
    assert onnx.load.latency_mean_ms == 305.0
    # In-process ONNX: the graph's halves are the parts, the whole graph is what the path adds up through.
    assert rows["in-process"].parts_ms == {"parse": 1.5, "decode": 9.0, "preprocess": 14.0, "model": 5.0}
    assert (rows["in-process"].whole_graph_ms, rows["in-process"].latency_ms) == (20.0, 30.5)
    assert rows["in-process"].other_ms is None
    torch_rows = {row.label: row for row in breakdowns(report.services["torch-serving"])}
    assert torch_rows["in-process"].parts_ms == {"parse": 1.5, "decode": 9.0, "preprocess": 8.0, "model": 12.0}


def test_the_summary_shows_where_the_time_goes_and_the_plot_exists(tmp_path):
    results = {name: _staged_results(name) for name in ("torch-serving", "onnx-serving")}
    folder = save_report(build_report("run6", "t", ENVIRONMENT, CONFIG, results, {}), tmp_path)
    summary = (folder / "summary.md").read_text()
    assert "## Where the time goes" in summary
    assert "| `onnx-serving` | c=1 | 0.50 | 2.00 | 10.00 | – | – | 20.00 | 280.18 | 33.00 | 312.68 |" in summary
    assert "| `onnx-serving` | in-process | – | 1.50 | 9.00 | 14.00 | 5.00 | 20.00 | – | – | 30.50 |" in summary
    assert "![Where the time goes](where_the_time_goes.png)" in summary
    assert (folder / "where_the_time_goes.png").stat().st_size > 5000


def test_preprocess_over_network_from_the_in_process_stages():
    results = {name: _staged_results(name) for name in ("torch-serving", "onnx-serving")}
    thresholds = {"preprocess_over_network.torch-serving.max": 0.5, "preprocess_over_network.onnx-serving.max": 3.0}
    report = build_report("run6", "t", ENVIRONMENT, CONFIG, results, thresholds)
    # torch: 8 ms of preprocessing for a 12 ms network; onnx: the graph's halves, 14 and 5 ms
    assert report.ratios.preprocess_over_network == {"torch-serving": 0.6667, "onnx-serving": 2.8}
    passed = {a.name: a.passed for a in report.assertions}
    assert passed == {
        "preprocess_over_network.torch-serving.max": False,
        "preprocess_over_network.onnx-serving.max": True,
    }


def test_against_the_usual_implementation_in_report_ratios_and_summary():
    results = {"torch-serving": _results(), "onnx-serving": _results(2.0)}
    results["onnx-serving"].against_usual = UsualComparison(
        BuiltImage("onnx-usual", "model-serving/onnx-usual:abc", "sha256:u", 240.0, built=False),
        "plain resize",
        rounds=[{"ours": 40.0, "usual": 20.0, "usual_tuned": 40.0}, {"ours": 30.0, "usual": 20.0, "usual_tuned": 30.0}],
        max_abs_dp=0.02,
        same_prediction=True,
    )
    results["torch-serving"].against_usual = UsualComparison(
        BuiltImage("torch-usual", "model-serving/torch-usual:abc", "sha256:t", 830.0, built=False),
        "PIL",
        failure="torch-usual: 3 failed requests",
    )
    thresholds = {"over_usual.onnx-serving.min": 1.5, "over_usual.torch-serving.min": 1.0}
    report = build_report("run7", "t", ENVIRONMENT, CONFIG, results, thresholds)
    assert report.ratios.over_usual == {"onnx-serving": pytest.approx(math.sqrt(2.0 * 1.5), abs=1e-4)}
    assert report.ratios.over_usual_tuned == {"onnx-serving": 1.0}
    passed = {a.name: a.passed for a in report.assertions}
    assert passed == {"over_usual.onnx-serving.min": True, "over_usual.torch-serving.min": None}
    summary = render_summary(report)
    assert "## Against the usual implementation" in summary
    assert "40.0 vs 20.0, 40.0 / 30.0 vs 20.0, 30.0" in summary
    assert "torch-usual: 3 failed requests" in summary


def _ab_report(rps: float):
    report = judge_ab_run(0, AB.replace("31.98", f"{rps:.2f}"), requested=200).report
    assert report is not None
    return report


def test_load_rounds_give_intervals_paired_ratios_and_the_rps_assertion():
    # onnx is 2× torch in every round while the machine's speed halves between rounds: pairing keeps the 2.
    rounds = Rounds(
        reports={
            "torch-serving": [_ab_report(v) for v in (30.0, 15.0, 30.0)],
            "onnx-serving": [_ab_report(v) for v in (60.0, 30.0, 60.0)],
        }
    )
    results = {"torch-serving": _results(), "onnx-serving": _results(3.0)}
    thresholds = {"rps.onnx_over_torch.min": 1.9}
    report = build_report("r", "t", ENVIRONMENT, CONFIG, results, thresholds, together=SideBySideResults(rounds))
    torch_rounds = report.services["torch-serving"].rounds
    assert torch_rounds is not None
    rps, efficiency = torch_rounds.rps, torch_rounds.efficiency
    assert rps is not None
    assert efficiency is not None
    assert torch_rounds.samples.rps == [30.0, 15.0, 30.0]
    assert rps.median == 30.0
    assert rps.low < rps.centre < rps.high
    assert rps.half_width > 0.3  # unpaired, the drift is spread
    # Efficiency over the rounds: their req/s over the one in-process rate (64 req/s here), the rounds' spread kept.
    cpus = float(CONFIG["cpus"])
    for key in ("centre", "low", "high", "median"):
        assert getattr(efficiency, key) == pytest.approx(getattr(rps, key) / (64.0 * cpus), abs=1e-3)
    assert efficiency.half_width == rps.half_width
    assert report.ratio_intervals.rps is not None
    paired = report.ratio_intervals.rps["onnx_over_torch"]
    assert paired is not None
    assert paired.centre == paired.low == paired.high == 2.0  # paired, it is gone
    # The rounds' ratio, not the single load run's (3.0), is what the assertion checks.
    assert report.ratios.rps["onnx_over_torch"] == 2.0
    (assertion,) = report.assertions
    assert assertion.passed is True
    assert assertion.interval == (2.0, 2.0)
    summary = render_summary(report)
    assert "## Load rounds" in summary
    assert f"| {efficiency.centre:.2f} [{efficiency.low:.2f}, {efficiency.high:.2f}] |" in summary
    assert "onnx_over_torch 2.00 [2.00, 2.00]" in summary


def test_a_failed_round_is_reported_and_not_dropped():
    rounds = Rounds(
        reports={"torch-serving": [_ab_report(30.0)], "onnx-serving": [_ab_report(60.0), _ab_report(50.0)]},
        failures={"torch-serving": "round 2: 5 failed requests"},
    )
    results = {"torch-serving": _results(), "onnx-serving": _results()}
    report = build_report("r", "t", ENVIRONMENT, CONFIG, results, {}, together=SideBySideResults(rounds))
    torch_rounds, paired = report.services["torch-serving"].rounds, report.ratio_intervals.rps
    assert torch_rounds is not None
    assert paired is not None
    assert torch_rounds.failure == "round 2: 5 failed requests"
    assert paired["onnx_over_torch"] is not None
    assert paired["onnx_over_torch"].rounds == 1  # only the round both completed
    assert "round 2: 5 failed requests" in render_summary(report)


def test_interval_bound_checks_the_end_on_the_thresholds_side():
    measured = {"rps": {"a": 1.5, "b": 0.5}}

    def interval(low: float, centre: float, high: float) -> IntervalFigure:
        return IntervalFigure(centre=centre, low=low, high=high, median=centre, rounds=5, half_width=0.2)

    intervals = {"rps": {"a": interval(1.1, 1.5, 1.9), "b": interval(0.3, 0.5, 0.7)}}
    thresholds = {"rps.a.min": 1.2, "rps.b.max": 0.6}
    by_centre = {a.name: a.passed for a in evaluate(measured, thresholds, intervals, "centre")}
    by_interval = {a.name: a.passed for a in evaluate(measured, thresholds, intervals, "interval")}
    assert by_centre == {"rps.a.min": True, "rps.b.max": True}
    assert by_interval == {"rps.a.min": False, "rps.b.max": False}


def test_rounds_efficiency_pairs_each_round_with_its_own_in_process_rate():
    # The machine halves its speed in round 2: served and in-process halve together, so pairing keeps 0.75; the
    # round whose bench failed (None) is left out; the load test's one in-process rate (64) plays no part.
    rounds = Rounds(
        reports={"torch-serving": [_ab_report(v) for v in (30.0, 15.0, 30.0)]},
        limits={"torch-serving": [40.0, 20.0, None]},
    )
    results = {"torch-serving": _results()}
    report = build_report("r", "t", ENVIRONMENT, CONFIG, results, {}, together=SideBySideResults(rounds))
    torch_rounds = report.services["torch-serving"].rounds
    assert torch_rounds is not None
    assert torch_rounds.efficiency is not None
    assert torch_rounds.in_process_rps == [40.0, 20.0, None]
    efficiency = torch_rounds.efficiency
    assert efficiency.centre == efficiency.low == efficiency.high == pytest.approx(0.75 / float(CONFIG["cpus"]))
    assert efficiency.rounds == 2


def test_an_in_process_rate_belongs_to_a_kept_round():
    rounds = Rounds(reports={"torch-serving": [_ab_report(30.0)]})
    rounds.record_limit("torch-serving", 40.0)
    with pytest.raises(ValueError, match="not kept"):
        rounds.record_limit("torch-serving", 41.0)  # no second round was kept
    assert rounds.with_limits("torch-serving") == [(30.0, 40.0)]


def test_the_host_line_names_ab_by_its_version():
    # Debian's ab leaves the revision keyword unexpanded: the line is no version to print.
    assert ab_name("This is ApacheBench, Version 2.3 <$Revision$>") == "ApacheBench 2.3"
    assert ab_name("This is ApacheBench, Version 2.3 <$Revision: 1913912 $>") == "ApacheBench 2.3"
    assert ab_name("unknown") == "unknown"
