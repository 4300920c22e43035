"""The concurrency sweep: closed-loop ab runs at each concurrency of a list against services already up side by
side (perf/rounds.side_by_side), the services interleaved at each level. Where req/s stops growing (the knee,
model_serving.curves) is the concurrency a service needs; latency beyond it is queueing."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from model_serving.load.ab_runner import run_ab
from model_serving.perf.endpoint import Endpoint
from model_serving.perf.rounds import rotated

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepPoint:
    """One level of the sweep for one service: ab's figures, or why there are none; errors are failed and
    non-2xx requests (a level with errors is kept, marked, not dropped)."""

    concurrency: int
    requests: int
    rps: float | None
    latency_ms: dict[str, float] | None
    errors: int | None
    failure: str | None


def completed(points: Sequence[SweepPoint]) -> list[tuple[int, float]]:
    """(c, req/s) of the levels that finished without failure."""
    return [(p.concurrency, p.rps) for p in points if p.rps is not None and not p.failure]


def best_rps(points: Sequence[SweepPoint]) -> float | None:
    """The best req/s of the levels that finished without failure; None when none did."""
    return max((rps for _, rps in completed(points)), default=None)


def level_requests(requests: int, concurrency: int) -> int:
    """At least four requests per connection: below that the run is mostly ramp-up and drain."""
    return max(requests, 4 * concurrency)


def run_sweep(
    running: Mapping[str, Endpoint],
    body_path: Path,
    concurrencies: Sequence[int],
    requests: int,
) -> dict[str, list[SweepPoint]]:
    """ab at each concurrency for each service; a level that fails for one service does not stop the others."""
    points: dict[str, list[SweepPoint]] = {name: [] for name in running}
    for index, concurrency in enumerate(concurrencies):
        n = level_requests(requests, concurrency)
        for name in rotated(list(running), index):
            log.info(f"{name}: sweep c={concurrency}, ab -n {n}")
            outcome = run_ab(f"{running[name].base_url}/predict/", body_path, n, concurrency, name)
            report = outcome.report
            points[name].append(
                SweepPoint(
                    concurrency,
                    n,
                    report.rps if report else None,
                    {k: report.latency_ms[k] for k in ("p50", "p90", "p99")} if report else None,
                    report.failed + report.non_2xx if report else None,
                    outcome.failure,
                )
            )
        log.info(
            f"sweep c={concurrency}: "
            + ", ".join(
                f"{name} {p[-1].rps:.1f} req/s" if p[-1].rps else f"{name} failed" for name, p in points.items()
            )
        )
    return points
