"""What a run could not measure, and why: the services' ``unavailable`` fields (a ``--target`` run: perf/target)
behind an assertion that was not measured, and the summary's section listing them. Pure, over the report's
service sections."""

from __future__ import annotations

from collections.abc import Mapping

from model_serving.report.markdown import table
from model_serving.report.sections import ServiceSection
from model_serving.services import RATIO_PAIRS

#: The service section's field each ratio metric is computed from (report/document.build_report).
METRIC_FIELDS = {
    "rps": "load",
    "image_size_mb": "image",
    "startup_s": "startup_s",
    "memory_mb": "memory_mb",
    "capacity_rps": "capacity",
    "memory_growth": "memory_over_requests",
    "stage_coverage": "at_c1",
    "preprocess_over_network": "in_process_stages_ms",
    "over_usual": "against_usual",
    "over_usual_tuned": "against_usual",
}
NOT_RUN = "not measured in this run (its measurement was not selected, or did not complete)"


def not_measured_reason(name: str, services: Mapping[str, ServiceSection]) -> str:
    """Why the ratio of threshold ``name`` (``<metric>.<ratio>.<min|max>``) has no figure: a service it needs was
    not measured, or a figure it needs is unavailable in this run (with the reason), else :data:`NOT_RUN`."""
    metric, ratio, _ = name.rsplit(".", 2)
    figure = METRIC_FIELDS.get(metric)
    for service in RATIO_PAIRS.get(ratio, (ratio,)):
        section = services.get(service)
        if section is None:
            return f"{service} was not measured in this run"
        why = (section.unavailable or {}).get(figure) if figure else None
        if why:
            return f"{service}: {why}"
    return NOT_RUN


def unavailable_lines(services: Mapping[str, ServiceSection]) -> list[str]:
    """The summary's "Not available" section: each figure with the services it is missing for and why."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for name, section in services.items():
        for figure, why in (section.unavailable or {}).items():
            grouped.setdefault((figure, why), []).append(name)
    if not grouped:
        return []
    rows = [[f"`{figure}`", ", ".join(f"`{n}`" for n in names), why] for (figure, why), names in grouped.items()]
    return [
        "",
        "## Not available",
        "",
        *table(["figure", "services", "why"], rows),
        "",
        "These figures were not measured (shown as – above); assertions on ratios of them are reported as not"
        " measured, not as passed.",
    ]
