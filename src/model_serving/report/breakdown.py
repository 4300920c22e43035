"""Where the time goes: a service's stage means beside the latency they make up, for the summary and the plot.

Pure, over a report's service section (report/sections.ServiceSection). The stages follow one another in a request
(``total`` spans them all and is not a part); what the latency holds beyond their sum is HTTP and everything else
(reading the body, routing, writing the answer, the client's side of the loopback).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from model_serving.report.sections import InProcessStage, ServiceSection, StageFigure

#: In request order; a service has ``preprocess`` and ``model`` (torch) or ``inference`` (ONNX: one graph call).
PARTS = ("queue", "parse", "decode", "preprocess", "model", "inference")
OTHER = "HTTP/other"


@dataclass(frozen=True)
class Breakdown:
    label: str  # where it was measured: "c=1", "c=50", "in-process"
    parts_ms: dict[str, float]  # stage → mean ms, in PARTS order, only the stages measured; they add up
    latency_ms: float | None  # served: the client's mean latency per request; in-process: the path's own sum
    served: bool = True
    #: In-process ONNX: the whole graph as served (one call), beside its two halves run apart in ``parts_ms``.
    whole_graph_ms: float | None = None
    #: Served: the service's own ``total`` (request received → response written); latency − total is outside it.
    total_ms: float | None = None

    @property
    def other_ms(self) -> float | None:
        """Served: the latency the stages do not explain (HTTP and the rest); in-process there is none."""
        if not self.served or self.latency_ms is None:
            return None
        return round(self.latency_ms - sum(self.parts_ms.values()), 4)


def _means(stages_ms: Mapping[str, StageFigure | InProcessStage]) -> dict[str, float]:
    return {stage: stages_ms[stage].mean for stage in PARTS if stage in stages_ms}


def _total(stages_ms: Mapping[str, StageFigure]) -> float | None:
    total = stages_ms.get("total")
    return total.mean if total else None


def breakdowns(section: ServiceSection) -> list[Breakdown]:
    """At c=1 and at the load's concurrency (stages from ``/metrics``, latency from ab), and in-process."""
    rows = []
    at_c1 = section.at_c1
    if at_c1 is not None and at_c1.stages_ms:
        rows.append(Breakdown("c=1", _means(at_c1.stages_ms), at_c1.mean_ms, total_ms=_total(at_c1.stages_ms)))
    load = section.load
    if section.stages_ms:
        concurrency = load.concurrency if load and load.concurrency is not None else "?"
        # The requests' own mean: ab's time per request at c > 1 also holds the run's ramp-up and drain.
        latency = (load.latency_mean_ms or load.time_per_request_ms) if load else None
        rows.append(
            Breakdown(f"c={concurrency}", _means(section.stages_ms), latency, total_ms=_total(section.stages_ms))
        )
    in_process = _means(section.in_process_stages_ms or {})
    if in_process:
        # ONNX: the request path is parse + decode + the whole graph; its halves show what the graph spends on
        # preprocessing and on the network (the two add up to about the whole).
        whole = in_process.pop("inference", None)
        path = sum(v for k, v in in_process.items() if whole is None or k not in ("preprocess", "model"))
        latency = round(path + (whole or 0.0), 4)
        if whole is not None and not {"preprocess", "model"} <= in_process.keys():
            in_process["inference"] = whole  # no halves: the graph stays one part
        rows.append(Breakdown("in-process", in_process, latency, served=False, whole_graph_ms=whole))
    return rows
