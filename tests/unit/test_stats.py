"""Intervals over rounds: they catch a real difference and do not invent one (seeded data)."""

import math
import random
import statistics

import pytest

from model_serving.stats import log_interval, ratio_interval, t_quantile_975

pytestmark = pytest.mark.unit


def rounds(rng: random.Random, n: int, level: float, drift: list[float], noise: float = 0.03) -> list[float]:
    """req/s of ``n`` rounds: the machine's speed that round (``drift``, shared by both sides) × own noise."""
    return [level * drift[i] * rng.lognormvariate(0.0, noise) for i in range(n)]


def test_the_ratio_is_the_geometric_mean_of_the_paired_rounds():
    interval = ratio_interval([(20.0, 10.0), (10.0, 20.0)])
    assert interval.centre == 1.0
    assert interval.low < 1.0 < interval.high
    assert ratio_interval([(30.0, 10.0)]).centre == 3.0
    assert ratio_interval([(30.0, 10.0)]).low == 3.0  # one round: no spread known
    assert ratio_interval([(30.0, 10.0), (60.0, 20.0), (15.0, 5.0)]).low == pytest.approx(3.0)
    with pytest.raises(ValueError, match="positive"):
        ratio_interval([(10.0, 0.0)])


def test_a_log_interval_is_around_the_geometric_mean_and_keeps_the_median():
    interval = log_interval([10.0, 40.0, 20.0])
    assert interval.centre == pytest.approx(20.0)
    assert interval.median == 20.0
    assert interval.low < 20.0 < interval.high
    assert interval.low * interval.high == pytest.approx(400.0, rel=1e-3)  # symmetric on the log scale
    assert log_interval([10.0, 10.0]).half_width == 0.0
    assert log_interval([9.0, 11.0]).half_width > 0.0
    with pytest.raises(ValueError, match="positive"):
        log_interval([1.0, -1.0])


def test_a_planted_20_percent_difference_is_caught_and_none_is_invented():
    rng = random.Random(12)
    caught = invented = 0
    trials = 200
    for _ in range(trials):
        # The machine's speed swings 2× between rounds; pairing has to take that out.
        drift = [rng.uniform(0.5, 1.0) for _ in range(5)]
        base = rounds(rng, 5, 40.0, drift)
        faster = rounds(rng, 5, 48.0, drift)
        same = rounds(rng, 5, 40.0, drift)
        caught += ratio_interval(list(zip(faster, base, strict=True))).excludes(1.0)
        invented += ratio_interval(list(zip(same, base, strict=True))).excludes(1.0)
    assert caught >= 0.95 * trials
    assert invented <= 0.10 * trials  # a 95 % interval misses the truth 5 % of the time, give or take


def unpaired_excludes_zero(a: list[float], b: list[float]) -> bool:
    """t on the difference of the log means, the two as independent samples."""
    logs_a, logs_b = [math.log(x) for x in a], [math.log(x) for x in b]
    difference = statistics.fmean(logs_a) - statistics.fmean(logs_b)
    margin = t_quantile_975(len(a) + len(b) - 2) * math.sqrt(
        statistics.variance(logs_a) / len(a) + statistics.variance(logs_b) / len(b)
    )
    return abs(difference) > margin


def test_unpaired_figures_under_the_same_drift_mostly_miss_it():
    # Why the pairing: the same rounds compared as two independent samples let the machine's drift hide the 20 %.
    rng = random.Random(7)
    trials, caught = 200, 0
    for _ in range(trials):
        drift = [rng.uniform(0.5, 1.0) for _ in range(5)]
        caught += unpaired_excludes_zero(rounds(rng, 5, 48.0, drift), rounds(rng, 5, 40.0, drift))
    assert caught <= 0.5 * trials


def test_t_quantiles():
    assert t_quantile_975(1) == 12.706
    assert t_quantile_975(4) == 2.776
    assert t_quantile_975(100) == 1.96
    with pytest.raises(ValueError, match="two samples"):
        t_quantile_975(0)
