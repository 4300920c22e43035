"""The knee of a sweep and the capacity search, on made-up curves."""

import pytest

from model_serving.curves import Probe, knee, meets_bound, search_capacity

pytestmark = pytest.mark.unit


def test_the_knee_is_the_smallest_concurrency_near_the_best():
    sweep = [(1, 40.0), (2, 70.0), (4, 95.0), (8, 99.0), (16, 100.0), (32, 98.0)]
    assert knee(sweep) == 4  # 95 ≥ 0.95 × 100
    assert knee(sweep, fraction=0.99) == 8
    assert knee([]) is None


def queueing_service(capacity: float, slo_ms: float):
    """A service that keeps p99 low until the arrival rate nears its capacity, then falls behind and blows up."""

    def probe(rate: float) -> Probe:
        achieved = min(rate, capacity * 1.02)
        p99 = 20.0 if rate < capacity else 20.0 + 100.0 * (rate - capacity)
        return Probe(rate, achieved, p99, meets_bound(rate, achieved, p99, slo_ms))

    return probe


def test_a_rate_is_met_when_the_service_keeps_up_within_the_bound():
    assert meets_bound(100.0, 99.0, 900.0, slo_ms=1000.0)
    assert not meets_bound(100.0, 99.0, 1100.0, slo_ms=1000.0)
    assert not meets_bound(100.0, 80.0, 300.0, slo_ms=1000.0)  # behind the schedule: the queue grows
    assert not meets_bound(100.0, None, None, slo_ms=1000.0)


def test_the_search_brackets_the_capacity_within_its_steps():
    result = search_capacity(queueing_service(80.0, slo_ms=1000.0), low=40.0, high=160.0, steps=6)
    assert len(result.probes) == 6
    # carried (achieved ≥ 0.95 × rate) up to 81.6 / 0.95 = 85.9 req/s, p99 ≤ 1000 up to 89.8: the first binds
    assert result.rate is not None
    assert result.bracket[0] <= 85.9 <= result.bracket[1]
    assert result.bracket[1] - result.bracket[0] == pytest.approx(120.0 / 2**4, abs=0.02)
    assert [p.met for p in result.probes][:2] == [True, False]
    assert not result.at_least


def test_the_search_stops_when_the_lowest_rate_misses_and_when_the_highest_meets():
    too_slow = search_capacity(queueing_service(10.0, slo_ms=100.0), low=40.0, high=160.0, steps=5)
    assert too_slow.rate is None
    assert len(too_slow.probes) == 1
    ample = search_capacity(queueing_service(500.0, slo_ms=100.0), low=40.0, high=160.0, steps=5)
    assert ample.rate == 160.0
    assert ample.at_least
    assert len(ample.probes) == 2
    with pytest.raises(ValueError, match="low < high"):
        search_capacity(queueing_service(1.0, slo_ms=1.0), low=5.0, high=5.0, steps=3)
