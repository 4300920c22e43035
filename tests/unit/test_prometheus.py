"""The exposition-format figures: recorded ``/metrics`` of the three services (tests/fixtures/metrics/record.py),
and bucket arithmetic on histograms made by hand."""

import math
from pathlib import Path

import pytest

from model_serving.metrics.prometheus import Histogram, Scrape, parse_scrape, stage_figures
from model_serving.services import SERVICE_NAMES
from serving_common.metrics import STAGE_BUCKETS

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[1] / "fixtures" / "metrics"
STAGES = {
    "torch-serving": {"queue", "parse", "decode", "preprocess", "model", "total"},
    "onnx-serving": {"queue", "parse", "decode", "inference", "total"},
    "rust-onnx-serving": {"queue", "parse", "decode", "inference", "total"},
}


def _recorded(service: str) -> str:
    return (FIXTURES / f"{service}.txt").read_text()


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_recorded_scrapes_count_three_predictions_and_one_refusal(service):
    scrape = parse_scrape(_recorded(service), service)
    assert scrape.responses == {"200": 3, "422": 1}
    assert scrape.in_flight == 0
    counted = {stage for stage, histogram in scrape.stages.items() if histogram.count}
    assert counted == STAGES[service]
    assert scrape.stages["total"].count == 4
    assert scrape.stages["parse"].count == 4  # the refused body was parsed
    assert scrape.stages["decode"].count == 3
    figures = stage_figures(scrape)
    assert set(figures) == STAGES[service]
    for stage, figure in figures.items():
        assert 0 < figure["mean"] < 60_000, (stage, figure)
        assert figure["p50"] <= figure["p99"]
    # The stages a request goes through one after another fit within its total.
    parts = sum(figures[s]["mean"] * figures[s]["count"] for s in figures if s != "total")
    assert parts <= figures["total"]["mean"] * figures["total"]["count"]


def test_the_three_services_have_the_same_buckets():
    expected = (*STAGE_BUCKETS, math.inf)
    for service in SERVICE_NAMES:
        for stage, histogram in parse_scrape(_recorded(service), service).stages.items():
            assert histogram.bounds == expected, (service, stage)


def test_the_python_scrape_merges_the_workers_and_reports_each_process():
    for service in ("torch-serving", "onnx-serving"):
        pids = {line.split('pid="')[1].split('"')[0] for line in _recorded(service).splitlines() if 'pid="' in line}
        assert len(pids) >= 3, (service, pids)  # the supervisor and two workers


def test_another_services_figures_are_left_out():
    assert parse_scrape(_recorded("onnx-serving"), "torch-serving") == Scrape({}, {}, None)


def _histogram(cumulative: tuple[float, ...], total: float) -> Histogram:
    return Histogram((1.0, 2.0, 4.0, math.inf), cumulative, total, cumulative[-1])


def test_quantiles_interpolate_within_the_bucket_as_histogram_quantile_does():
    histogram = _histogram((0, 10, 20, 20), 50.0)
    assert histogram.quantile(0.5) == pytest.approx(2.0)
    assert histogram.quantile(0.25) == pytest.approx(1.5)
    assert histogram.quantile(0.99) == pytest.approx(2 + 2 * 9.8 / 10)
    assert _histogram((5, 5, 5, 5), 2.0).quantile(0.5) == pytest.approx(0.5)  # the first bucket starts at 0
    assert _histogram((0, 0, 0, 3), 30.0).quantile(0.5) == 4.0  # beyond the last bound: that bound
    assert _histogram((0, 0, 0, 0), 0.0).quantile(0.5) is None


def test_a_run_is_the_difference_of_two_scrapes():
    before = Scrape({"total": _histogram((1, 2, 2, 2), 3.0)}, {"200": 2.0}, 0.0)
    after = Scrape({"total": _histogram((1, 6, 12, 12), 33.0)}, {"200": 10.0, "422": 2.0}, 1.0)
    run = after.minus(before)
    assert run.responses == {"200": 8.0, "422": 2.0}
    assert run.stages["total"] == _histogram((0, 4, 10, 10), 30.0)
    # 4 requests within 1–2 s, 6 within 2–4 s: the median is the 1st of the 6, a sixth of the way up from 2 s.
    figures = stage_figures(run)["total"]
    assert figures == {"mean": 3000.0, "p50": pytest.approx(2333.3333), "p99": pytest.approx(3966.6667), "count": 10}
    other_buckets = Scrape({"total": Histogram((1.0, math.inf), (0, 0), 0.0, 0.0)})
    with pytest.raises(ValueError, match="different buckets"):
        after.minus(other_buckets)
