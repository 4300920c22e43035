"""A --target run's report: no image, start-up, container memory or in-process figures, each named with its reason
in the service's ``unavailable``; assertions on ratios of them reported as not measured, with why; the summary says
so; the schema holds it all and refuses a service section that neither has an image nor says why not. A run writes
its report once."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from model_serving.load.ab_parser import judge_ab_run
from model_serving.load.stats_sampler import ResourceSamples
from model_serving.perf import session
from model_serving.perf.config import RunConfig, profile_with
from model_serving.perf.measure import LoadMeasurement, StagedRun
from model_serving.perf.rounds import Rounds
from model_serving.perf.session import PerfRun
from model_serving.perf.sweep import SweepPoint
from model_serving.perf.target import UNAVAILABLE, TargetService
from model_serving.report.document import ServiceResults, SideBySideResults, build_report
from model_serving.report.schema import ReportSchemaError, validate_report
from model_serving.report.sections import LoadFigures, Report, ServiceSection
from model_serving.report.store import save_report
from model_serving.report.summary import render_summary
from model_serving.report.unavailable import NOT_RUN, not_measured_reason
from model_serving.services import SERVICE_NAMES

pytestmark = pytest.mark.unit

AB = (Path(__file__).parents[1] / "fixtures" / "ab" / "success.txt").read_text()  # 200 requests at c=10
TARGETS = {name: f"http://127.0.0.1:{8080 + i}" for i, name in enumerate(SERVICE_NAMES)}
THRESHOLDS = {
    "rps.rust_over_onnx.min": 1.1,
    "image_size_mb.rust_over_onnx.max": 0.3,
    "startup_s.onnx_over_torch.max": 0.6,
    "memory_mb.rust_over_onnx.max": 0.8,
    "memory_growth.onnx-serving.max": 1.2,
    "preprocess_over_network.torch-serving.max": 0.6,
    "over_usual.rust-onnx-serving.min": 2.0,
    "stage_coverage.onnx-serving.min": 0.65,
}
ENVIRONMENT = {"host_cpu": "cpu", "host_cores": 2, "docker_engine": None, "ab": "ab 2.3", "versions": {}}


def _ab(rps: float):
    return judge_ab_run(0, AB.replace("31.98", f"{rps:.2f}"), requested=200)


def _stages() -> dict:
    stage = {"mean": 5.0, "p50": 5.0, "p99": 7.0, "count": 30}
    return {"parse": stage, "decode": stage, "inference": stage, "total": {**stage, "mean": 16.0}}


def _target_results(rps: float) -> ServiceResults:
    # What perf/measure.load_with_stages gives for a target: no resources sampled, no in-process bench.
    health = {"status": "healthy", "model_id": "m1", "workers": 1, "threads": 1}
    load = LoadMeasurement(
        _ab(rps), ResourceSamples(), health, stages_ms=_stages(), responses={"200": 200.0}, at_c1=None
    )
    load.at_c1 = StagedRun(_ab(rps), _stages(), {"200": 30.0})
    return ServiceResults(None, load=load, unavailable=dict(UNAVAILABLE))


def _report() -> Report:
    config = RunConfig(profile_with("smoke"), SERVICE_NAMES, Path("p.jpg"), THRESHOLDS, targets=TARGETS).describe()
    rates = {"torch-serving": 30.0, "onnx-serving": 60.0, "rust-onnx-serving": 90.0}
    results = {name: _target_results(rate) for name, rate in rates.items()}
    latency = {"p50": 9.0, "p90": 10.0, "p99": 13.0}
    together = SideBySideResults(
        rounds=Rounds({name: [_ab(rate).report] for name, rate in rates.items()}),
        sweep={name: [SweepPoint(8, 40, rate, latency, 0, None)] for name, rate in rates.items()},
    )
    return build_report("run-t", "2026-12-04T10:00:00+00:00", ENVIRONMENT, config, results, THRESHOLDS, {}, together)


def test_the_report_names_each_unavailable_figure_with_why():
    report = _report()
    document = report.to_json()
    for name, section in report.services.items():
        assert not {"image", "startup_s", "memory_over_requests", "against_usual"} & set(document["services"][name])
        assert section.unavailable == UNAVAILABLE, name
        assert section.memory_mb is not None
        assert section.memory_mb.to_json() == {"mean": None, "peak": None, "series": []}
        assert section.in_process_rps is None
        assert section.efficiency is None
        # What a target gives: load, its stages and the c=1 run's coverage, and the side-by-side figures.
        assert section.load.rps > 0
        assert section.stages_ms["total"].mean == 16.0
        assert section.at_c1.coverage is not None
        assert section.rounds.rps.centre > 0
        assert section.sweep.best_rps > 0
    assert report.environment.images == {}
    assert report.config.targets == TARGETS
    validate_report(document)
    validate_report(json.loads(json.dumps(document)))


def test_assertions_on_unavailable_figures_are_not_measured_with_why():
    assertions = {a["name"]: a for a in _report().to_json()["assertions"]}
    assert assertions["rps.rust_over_onnx.min"]["passed"] is True
    assert "not_measured" not in assertions["rps.rust_over_onnx.min"]
    assert assertions["stage_coverage.onnx-serving.min"]["passed"] is not None
    expected = {
        "image_size_mb.rust_over_onnx.max": ("rust-onnx-serving", "image"),
        "startup_s.onnx_over_torch.max": ("onnx-serving", "startup_s"),
        "memory_mb.rust_over_onnx.max": ("rust-onnx-serving", "memory_mb"),
        "memory_growth.onnx-serving.max": ("onnx-serving", "memory_over_requests"),
        "preprocess_over_network.torch-serving.max": ("torch-serving", "in_process_stages_ms"),
        "over_usual.rust-onnx-serving.min": ("rust-onnx-serving", "against_usual"),
    }
    for name, (service, figure) in expected.items():
        assert assertions[name]["passed"] is None, name
        assert assertions[name]["measured"] is None, name
        assert assertions[name]["not_measured"] == f"{service}: {UNAVAILABLE[figure]}", name


def test_a_ratio_not_measured_for_another_reason_says_so():
    services = {
        "onnx-serving": ServiceSection(load=LoadFigures(failure="ab did not start")),
        "torch-serving": ServiceSection(),
    }
    assert not_measured_reason("rps.onnx_over_torch.min", services) == NOT_RUN
    assert not_measured_reason("rps.rust_over_onnx.min", services) == "rust-onnx-serving was not measured in this run"
    assert not_measured_reason("memory_growth.onnx-serving.max", services) == NOT_RUN


def test_the_summary_says_what_is_not_available_and_why(tmp_path):
    report = _report()
    summary = render_summary(report)
    assert "against services already running (--target: `torch-serving` http://127.0.0.1:8080" in summary
    section = summary.split("## Not available", 1)[1].split("\n## ", 1)[0]
    everyone = "`torch-serving`, `onnx-serving`, `rust-onnx-serving`"
    for figure, why in UNAVAILABLE.items():
        assert f"| `{figure}` | {everyone} | {why} |" in section
    assertions = summary.split("## Assertions", 1)[1]
    assert f"| not measured | rust-onnx-serving: {UNAVAILABLE['image']} |" in assertions
    assert "| pass |" in assertions
    folder = save_report(report, tmp_path)  # plots without images or memory
    assert (folder / "image_size.png").is_file()
    assert (folder / "summary.md").read_text() == summary


def test_the_schema_refuses_a_section_with_no_image_and_no_reason():
    report = _report().to_json()
    broken = copy.deepcopy(report)
    del broken["services"]["onnx-serving"]["unavailable"]
    with pytest.raises(ReportSchemaError, match=r"services\['onnx-serving'\]: 'unavailable' is a required property"):
        validate_report(broken)
    broken = copy.deepcopy(report)
    del broken["services"]["onnx-serving"]["unavailable"]["image"]
    with pytest.raises(ReportSchemaError, match=r"unavailable: 'image' is a required property"):
        validate_report(broken)
    broken = copy.deepcopy(report)
    broken["services"]["onnx-serving"]["unavailable"]["sweep"] = "no reason"
    with pytest.raises(ReportSchemaError, match=r"'sweep' is not one of"):
        validate_report(broken)


def test_the_schema_requires_why_exactly_when_an_assertion_was_not_measured():
    report = _report().to_json()
    broken = copy.deepcopy(report)
    unmeasured = next(a for a in broken["assertions"] if a["passed"] is None)
    del unmeasured["not_measured"]
    with pytest.raises(ReportSchemaError, match="'not_measured' is a required property"):
        validate_report(broken)
    broken = copy.deepcopy(report)
    next(a for a in broken["assertions"] if a["passed"] is True)["not_measured"] = "?"
    with pytest.raises(ReportSchemaError, match="assertions"):
        validate_report(broken)


def test_a_run_writes_its_report_once(tmp_path, monkeypatch):
    # The environment is the machine's (ab, the CPU); here a fixed one, so that nothing outside the run is read.
    monkeypatch.setattr(session, "environment", lambda engine: dict(ENVIRONMENT))
    config = RunConfig(profile_with("smoke"), SERVICE_NAMES, Path("p.jpg"), THRESHOLDS, targets=TARGETS)
    targets = {name: TargetService(name, url, {"model_id": "m1"}) for name, url in TARGETS.items()}
    run = PerfRun(config, None, tmp_path, Path("p.jpg"), Path("p.json"), targets=targets)
    for rate, name in ((30.0, "torch-serving"), (60.0, "onnx-serving")):
        run.results_for(name).load = _target_results(rate).load
    built = run.build_report()
    assert run.report_folder is None
    assert not list(tmp_path.iterdir())  # building writes nothing
    report = run.write_report()
    assert run.report_folder == tmp_path / run.run_id
    written = json.loads((run.report_folder / "report.json").read_text())
    validate_report(written)
    assert written == report.to_json() == built.to_json()
    assert written["model"] == {"model_id": "m1"}
    assert list(written["services"]) == ["torch-serving", "onnx-serving"]
    with pytest.raises(RuntimeError, match="already written"):
        run.write_report()
