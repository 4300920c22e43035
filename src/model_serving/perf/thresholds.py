"""The verdict on a run's ratio thresholds (the report's ``assertions``): met, not met, or not measured, and for
each one not measured whether the run chose not to measure it or failed to.

A run chooses not to measure a ratio when a service it needs is not among the run's services (``--services``,
``--target``), or when a figure it needs is one the run cannot take for that service (the section's
``unavailable``: a ``--target`` run has no container of its own, a prebuilt ONNX model has no usual graph). Any
other threshold without a figure is a gap: a measurement that was deselected or did not complete, and that is a
failure, not a pass.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from model_serving.report.ratios import describe_failure
from model_serving.report.sections import Assertion
from model_serving.report.unavailable import METRIC_FIELDS
from model_serving.services import RATIO_PAIRS, SERVICE_NAMES


@dataclass(frozen=True)
class ThresholdVerdict:
    met: list[str] = field(default_factory=list)
    not_met: list[str] = field(default_factory=list)  # each described: measured, required
    gaps: list[str] = field(default_factory=list)  # "name: why", not measured though the run should have
    left_out: list[str] = field(default_factory=list)  # "name: why", not measured by the run's choice

    @property
    def ok(self) -> bool:
        return not self.not_met and not self.gaps


def _left_out_because(name: str, services: Collection[str], unavailable: Mapping[str, Mapping[str, str]]) -> str | None:
    """Why the run chose not to measure threshold ``name``'s ratio, or None when it should have measured it."""
    metric, ratio, _ = name.rsplit(".", 2)
    needed = RATIO_PAIRS.get(ratio, (ratio,))  # a per-service metric names its service instead of a pair
    figure = METRIC_FIELDS.get(metric)
    for service in needed:
        if service not in SERVICE_NAMES:
            return None  # a threshold naming no known ratio or service is never measured: a gap, not a choice
        if service not in services:
            return f"{service} is not among the run's services"
        if figure is not None and (why := unavailable.get(service, {}).get(figure)):
            return f"{service}: {why}"
    return None


def judge_thresholds(
    assertions: Sequence[Assertion],
    services: Collection[str],
    unavailable: Mapping[str, Mapping[str, str]],
) -> ThresholdVerdict:
    """Sort ``assertions`` (the report's) for a run that measured ``services``, whose sections declare
    ``unavailable`` figures (service → figure → reason)."""
    verdict = ThresholdVerdict()
    for assertion in assertions:
        name = assertion.name
        if assertion.passed is True:
            verdict.met.append(name)
        elif assertion.passed is False:
            verdict.not_met.append(describe_failure(assertion))
        elif why := _left_out_because(name, services, unavailable):
            verdict.left_out.append(f"{name}: {why}")
        else:
            verdict.gaps.append(f"{name}: {assertion.not_measured or 'not measured'}")
    return verdict
