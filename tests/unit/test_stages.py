"""Stage timings of the Python services: the clock, the Server-Timing header, the in-process bench's figures."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from serving_common.bench import measure, stage_summary_ms
from serving_common.stages import StageTimes, server_timing

pytestmark = pytest.mark.unit


def test_a_stage_is_timed_even_when_it_raises():
    stages = StageTimes()
    with stages.timing("decode"):
        time.sleep(0.01)
    with pytest.raises(ValueError, match="bad"), stages.timing("parse"):
        raise ValueError("bad")
    assert set(stages.ns) == {"decode", "parse"}
    assert stages.ns["decode"] >= 10_000_000
    assert stages.seconds()["decode"] == pytest.approx(stages.ns["decode"] / 1e9)


def test_server_timing_is_in_request_order_in_milliseconds():
    timing = server_timing({"total": 41_600_000, "inference": 27_210_400, "parse": 1_904_000, "queue": 12_000})
    assert timing == "queue;dur=0.012, parse;dur=1.904, inference;dur=27.210, total;dur=41.600"
    assert server_timing({"total": 5}) == "total;dur=0.000"


def test_stage_summary_mean_median_and_nearest_rank_p99():
    assert stage_summary_ms([3_000_000, 1_000_000, 2_000_000, 10_000_000]) == {"mean": 4.0, "p50": 2.5, "p99": 10.0}
    hundred = [i * 1_000_000 for i in range(1, 101)]
    assert stage_summary_ms(hundred)["p99"] == 99.0


class _Sleepy:
    """Sleeps 2 ms as 'inference' (the ONNX way), or 1 ms 'preprocess' + 3 ms 'model' when split."""

    def __init__(self, split: bool = False) -> None:
        self.split = split

    def probabilities(self, pixels: np.ndarray, stages: StageTimes | None = None) -> np.ndarray:
        assert stages is not None
        assert pixels.shape == (6, 8, 3)
        for stage, seconds in (("preprocess", 0.001), ("model", 0.003)) if self.split else (("inference", 0.002),):
            with stages.timing(stage):
                time.sleep(seconds)
        return np.ones(11) / 11


def test_the_bench_times_every_stage_and_the_split_apart():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 200, 30)).save(buffer, format="PNG")
    figures = measure(_Sleepy(), buffer.getvalue(), 0.2, split=_Sleepy(split=True))
    assert set(figures["stages_ms"]) == {"parse", "decode", "inference", "preprocess", "model"}
    assert figures["iterations"] >= 10
    ms = {stage: f["mean"] for stage, f in figures["stages_ms"].items()}
    assert ms["inference"] >= 2.0
    assert ms["model"] >= 3.0 > ms["preprocess"] >= 1.0
    # seconds is the decode-and-infer part of the loop: parse and the split runs are not in it
    expected = figures["iterations"] * (ms["decode"] + ms["inference"]) / 1e3
    assert figures["seconds"] == pytest.approx(expected, rel=0.01)
