"""Open-loop load (oha at fixed arrival rates, latency corrected for coordinated omission) against services
already up side by side, and the capacity under a latency bound found with it (model_serving.curves).

Rates are fractions of each service's best closed-loop req/s (the sweep's): the same fractions load each service
equally hard, whatever its speed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from model_serving.curves import Capacity, Probe, meets_bound, search_capacity
from model_serving.load.oha_parser import OpenLoopReport
from model_serving.load.oha_runner import OpenLoopSpec, run_oha
from model_serving.perf.endpoint import Endpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenLoopSettings:
    duration_s: float  # of each run at a fixed rate
    connections: int  # oha's -c: enough for every request in flight at the highest rate
    timeout_s: float = 30.0


@dataclass(frozen=True)
class OpenLoopPoint:
    """One run at a fixed arrival rate: oha's figures (also when some requests failed: ``failure`` says so)."""

    rate: float
    fraction: float | None  # of the service's best req/s; None for a capacity probe
    report: OpenLoopReport | None
    failure: str | None


def open_loop_run(
    service: Endpoint, body_path: Path, rate: float, settings: OpenLoopSettings, label: str
) -> tuple[OpenLoopReport | None, str | None]:
    spec = OpenLoopSpec(
        f"{service.base_url}/predict/",
        body_path,
        rate,
        settings.connections,
        duration_s=settings.duration_s,
        timeout_s=settings.timeout_s,
    )
    outcome = run_oha(spec, label)
    return outcome.report, outcome.failure


def run_open_loop(
    running: Mapping[str, Endpoint],
    body_path: Path,
    best_rps: Mapping[str, float],
    fractions: Sequence[float],
    settings: OpenLoopSettings,
) -> dict[str, list[OpenLoopPoint]]:
    """Each service at each fraction of its best req/s, the services taking turns at each fraction."""
    points: dict[str, list[OpenLoopPoint]] = {name: [] for name in running if name in best_rps}
    for fraction in fractions:
        for name in points:
            rate = round(fraction * best_rps[name], 2)
            report, failure = open_loop_run(
                running[name], body_path, rate, settings, f"{name} open loop at {fraction:g} × best"
            )
            points[name].append(OpenLoopPoint(rate, fraction, report, failure))
            if report is not None and report.latency is not None:
                log.info(
                    f"{name}: {report.achieved_rate_per_s:.1f} of {rate:g} req/s, corrected p99 "
                    f"{report.latency.p99_ms:.0f} ms" + (f" ({failure})" if failure else "")
                )
    return points


def run_capacity(
    service: Endpoint,
    body_path: Path,
    best_rps: float,
    slo_ms: float,
    steps: int,
    settings: OpenLoopSettings,
    span: tuple[float, float] = (0.3, 1.2),
) -> Capacity:
    """The highest arrival rate in ``span`` × best whose run the service carries (curves.meets_bound: it keeps up
    and its corrected p99 stays within ``slo_ms``); a run with failed requests misses the bound."""

    def probe(rate: float) -> Probe:
        report, failure = open_loop_run(service, body_path, rate, settings, f"{service.service} capacity probe")
        achieved = report.achieved_rate_per_s if report else None
        p99 = report.latency.p99_ms if report and report.latency else None
        met = failure is None and meets_bound(rate, achieved, p99, slo_ms)
        log.info(
            f"{service.service}: {rate:g} req/s asked, {achieved or 0:.1f} carried, p99 "
            + (f"{p99:.0f} ms" if p99 is not None else "–")
            + (" (met)" if met else f" (missed{': ' + failure if failure else ''})")
        )
        return Probe(rate, round(achieved, 2) if achieved is not None else None, p99, met)

    return search_capacity(probe, span[0] * best_rps, span[1] * best_rps, steps)
