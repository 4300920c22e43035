"""What the perf tests check a run against: the services asked for, the start-ups taken, and the verdict on the ratio
thresholds (a threshold without a figure passes only when the run chose not to measure it)."""

import math

import pytest

from model_serving.perf.config import parse_services
from model_serving.perf.measure import ServiceStarter
from model_serving.perf.target import UNAVAILABLE
from model_serving.perf.thresholds import judge_thresholds
from model_serving.report.sections import Assertion
from model_serving.services import SERVICE_NAMES as SERVICES

pytestmark = pytest.mark.unit


def test_services_default_to_all_and_keep_the_order_given():
    assert parse_services(None) == parse_services("") == SERVICES
    assert parse_services(" rust-onnx-serving, torch-serving,,rust-onnx-serving") == (
        "rust-onnx-serving",
        "torch-serving",
    )


@pytest.mark.parametrize("text", ["tensorflow-serving", "onnx-serving,tf", ",", " "])
def test_unknown_or_no_services_are_refused_naming_the_choices(text):
    with pytest.raises(ValueError, match=r"--services: unknown .*; choose from torch-serving, onnx-serving"):
        parse_services(text)


def _starter(samples, ids=None) -> ServiceStarter:
    starter = ServiceStarter("onnx-serving", "model-serving/onnx-serving:0", 1.0)
    starter.samples = list(samples)
    starter.container_ids = list(ids if ids is not None else (f"c{i}" for i in range(len(samples))))
    return starter


def test_start_ups_one_per_run_each_fresh_positive_and_within_its_call_pass():
    assert _starter([0.8, 0.9, 1.1]).problems(3, [0.85, 0.95, 1.2]) == []
    assert _starter([0.8]).problems(1) == []


@pytest.mark.parametrize(
    ("samples", "ids", "runs", "timed", "expected"),
    [
        ([0.8, 0.9], None, 3, None, "2 start-ups for 3 runs"),
        ([], [], 2, None, "0 start-ups for 2 runs"),
        ([0.8, 0.9], ["same", "same"], 2, None, "1 distinct containers for 2 start-ups"),
        ([0.8, 0.0], None, 2, None, "not positive and finite: [0.0]"),
        ([0.8, math.nan], None, 2, None, "not positive and finite: [nan]"),
        ([0.8, -1.0], None, 2, None, "not positive and finite: [-1.0]"),
        ([0.8, math.inf], None, 2, None, "not positive and finite: [inf]"),
        ([0.8, 0.9], None, 2, [0.85], "1 timed calls for 2 start-ups"),
        ([0.8, 0.9], None, 2, [0.85, 0.5], "longer than the call that took them (start-up, call): [(0.9, 0.5)]"),
    ],
)
def test_start_ups_that_are_missing_shared_impossible_or_longer_than_their_call_are_named(
    samples, ids, runs, timed, expected
):
    problems = _starter(samples, ids).problems(runs, timed)
    assert any(expected in problem for problem in problems), problems


def _assertion(name: str, passed: bool | None, measured: float | None = None) -> Assertion:
    why = "not measured in this run (its measurement was not selected, or did not complete)"
    return Assertion(
        name=name, measured=measured, threshold=1.0, passed=passed, not_measured=why if passed is None else None
    )


def test_a_full_run_with_every_threshold_met_is_ok():
    verdict = judge_thresholds(
        [_assertion("rps.rust_over_onnx.min", True, 1.3), _assertion("memory_growth.onnx-serving.max", True, 1.0)],
        SERVICES,
        {},
    )
    assert verdict.ok
    assert verdict.met == ["rps.rust_over_onnx.min", "memory_growth.onnx-serving.max"]
    assert verdict.gaps == verdict.left_out == verdict.not_met == []


def test_a_threshold_not_met_is_a_failure_with_its_figures():
    verdict = judge_thresholds([_assertion("rps.rust_over_onnx.min", False, 0.9)], SERVICES, {})
    assert not verdict.ok
    assert verdict.not_met == ["rps.rust_over_onnx.min: measured 0.9, required >= 1.0"]


@pytest.mark.parametrize(
    "name", ["rps.onnx_over_torch.min", "memory_growth.torch-serving.max", "over_usual.onnx-serving.min"]
)
def test_a_threshold_not_measured_in_a_run_of_all_services_is_a_failure(name):
    verdict = judge_thresholds([_assertion("rps.rust_over_onnx.min", True, 1.2), _assertion(name, None)], SERVICES, {})
    assert not verdict.ok
    assert verdict.gaps == [f"{name}: not measured in this run (its measurement was not selected, or did not complete)"]
    assert verdict.left_out == []


def test_a_threshold_naming_no_known_ratio_or_service_is_a_failure_even_in_a_subset_run():
    verdict = judge_thresholds([_assertion("rps.rust_over_tf.min", None)], ("torch-serving",), {})
    assert [gap.split(":")[0] for gap in verdict.gaps] == ["rps.rust_over_tf.min"]


def test_a_subset_of_services_leaves_out_only_the_ratios_it_cannot_form():
    assertions = [
        _assertion("rps.rust_over_onnx.min", None),  # torch-serving alone cannot form it: left out
        _assertion("memory_growth.onnx-serving.max", None),
        _assertion("memory_growth.torch-serving.max", None),  # its service was measured: a gap
    ]
    verdict = judge_thresholds(assertions, ("torch-serving",), {})
    assert verdict.left_out == [
        "rps.rust_over_onnx.min: rust-onnx-serving is not among the run's services",
        "memory_growth.onnx-serving.max: onnx-serving is not among the run's services",
    ]
    assert [gap.split(":")[0] for gap in verdict.gaps] == ["memory_growth.torch-serving.max"]
    assert not verdict.ok


def test_a_target_run_leaves_out_the_figures_it_cannot_take_and_nothing_else():
    unavailable = dict.fromkeys(SERVICES, UNAVAILABLE)
    assertions = [
        _assertion("startup_s.onnx_over_torch.max", None),
        _assertion("image_size_mb.rust_over_onnx.max", None),
        _assertion("over_usual.onnx-serving.min", None),
        _assertion("rps.onnx_over_torch.min", True, 1.5),
    ]
    verdict = judge_thresholds(assertions, SERVICES, unavailable)
    assert verdict.ok
    assert [entry.split(":")[0] for entry in verdict.left_out] == [a.name for a in assertions[:3]]
    assert "--target: the service was not started by the suite" in verdict.left_out[0]
    # The load is measured at a target: an rps ratio without a figure would be a gap.
    assert not judge_thresholds([_assertion("rps.onnx_over_torch.min", None)], SERVICES, unavailable).ok
