"""Reading what the in-process benches print (Python's serving_common.bench, Rust's --bench)."""

import pytest

from model_serving.perf.measure import MeasurementError, bench_figures

pytestmark = pytest.mark.unit


def test_the_last_line_is_the_figures_whatever_was_logged_before():
    stdout = 'loading model\nwarming up\n{"iterations": 12, "seconds": 1.5, "stages_ms": {"parse": {"mean": 0.3}}}\n'
    assert bench_figures(stdout) == {"iterations": 12, "seconds": 1.5, "stages_ms": {"parse": {"mean": 0.3}}}


def test_no_output_is_a_measurement_error():
    with pytest.raises(MeasurementError, match="printed nothing"):
        bench_figures("\n  \n")
