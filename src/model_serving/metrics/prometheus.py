"""Figures from a service's ``GET /metrics`` (Prometheus text format): pure functions over scraped text.

Parsing is prometheus_client's own (``prometheus_client.parser``). A load run is measured by two scrapes, before
and after; their difference holds exactly that run's requests, whatever came before. Quantiles of a stage come
from its histogram buckets the way Prometheus' ``histogram_quantile`` computes them (linear within a bucket), so
they are as fine as the buckets: 10 a decade, a bucket is at most a third wider than the one below it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

STAGE_METRIC = "model_serving_stage_seconds"
REQUESTS_METRIC = "model_serving_requests"  # the counter; its samples are named ..._total
IN_FLIGHT_METRIC = "model_serving_requests_in_flight"


@dataclass(frozen=True)
class Histogram:
    """One stage's histogram: upper bounds (the last is +Inf), cumulative counts, sum (s) and count."""

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]
    sum: float
    count: float

    def minus(self, earlier: Histogram) -> Histogram:
        if earlier.bounds != self.bounds:
            raise ValueError("the two scrapes have different buckets: did the service restart in between?")
        return Histogram(
            self.bounds,
            tuple(a - b for a, b in zip(self.cumulative, earlier.cumulative, strict=True)),
            self.sum - earlier.sum,
            self.count - earlier.count,
        )

    def quantile(self, q: float) -> float | None:
        """The q-quantile in seconds, interpolated within its bucket; None without observations."""
        if self.count <= 0:
            return None
        rank = q * self.count
        lower, below = 0.0, 0.0
        for bound, cumulative in zip(self.bounds, self.cumulative, strict=True):
            if cumulative >= rank:
                if math.isinf(bound):  # past the last finite bound: that bound is all one can say
                    return lower
                inside = cumulative - below
                return lower + (bound - lower) * ((rank - below) / inside if inside > 0 else 1.0)
            lower, below = bound, cumulative
        return lower


@dataclass(frozen=True)
class Scrape:
    """What one scrape says: stage histograms, responses by status code, requests in flight."""

    stages: Mapping[str, Histogram] = field(default_factory=dict)
    responses: Mapping[str, float] = field(default_factory=dict)
    in_flight: float | None = None

    def minus(self, earlier: Scrape) -> Scrape:
        """What happened between ``earlier`` and this scrape."""
        stages = {
            name: histogram.minus(earlier.stages[name]) if name in earlier.stages else histogram
            for name, histogram in self.stages.items()
        }
        codes = {code: count - earlier.responses.get(code, 0.0) for code, count in self.responses.items()}
        return Scrape(stages, {code: n for code, n in codes.items() if n}, self.in_flight)


def parse_scrape(text: str, service: str | None = None) -> Scrape:
    """The suite's metrics in ``text`` (of ``service`` only, when given); other metrics are passed over."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    responses: dict[str, float] = {}
    in_flight: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if service is not None and labels.get("service", service) != service:
                continue
            if family.name == STAGE_METRIC:
                stage = labels["stage"]
                if sample.name.endswith("_bucket"):
                    buckets.setdefault(stage, []).append((float(labels["le"]), sample.value))
                elif sample.name.endswith("_sum"):
                    sums[stage] = sample.value
                elif sample.name.endswith("_count"):
                    counts[stage] = sample.value
            elif family.name == REQUESTS_METRIC and sample.name.endswith("_total"):
                responses[labels["code"]] = responses.get(labels["code"], 0.0) + sample.value
            elif family.name == IN_FLIGHT_METRIC:
                in_flight = (in_flight or 0.0) + sample.value
    stages = {}
    for stage, pairs in buckets.items():
        pairs.sort()
        stages[stage] = Histogram(
            tuple(b for b, _ in pairs), tuple(c for _, c in pairs), sums.get(stage, 0.0), counts.get(stage, 0.0)
        )
    return Scrape(stages, responses, in_flight)


def stage_figures(run: Scrape) -> dict[str, dict[str, float | int | None]]:
    """Per stage with observations: mean, p50 and p99 in milliseconds, and how many requests went through it."""
    figures: dict[str, dict[str, float | int | None]] = {}
    for stage, histogram in run.stages.items():
        if histogram.count <= 0:
            continue
        p50, p99 = histogram.quantile(0.5), histogram.quantile(0.99)
        figures[stage] = {
            "mean": round(histogram.sum / histogram.count * 1e3, 4),
            "p50": round(p50 * 1e3, 4) if p50 is not None else None,
            "p99": round(p99 * 1e3, 4) if p99 is not None else None,
            "count": int(histogram.count),
        }
    return figures
