import numpy as np
import pytest

from model_serving.agreement import compare, disagreements, top_margins

pytestmark = pytest.mark.unit

NAMES = ("a", "b")


def _probs(*rows):
    return np.array(rows, dtype=np.float64)


def test_identical_arrays_agree():
    p = _probs([0.7, 0.2, 0.1], [0.1, 0.3, 0.6])
    result = compare(NAMES, p, p)
    assert result.ok
    assert result.worst == 0.0


def test_difference_over_tolerance_is_reported_per_image():
    ref = _probs([0.7, 0.2, 0.1], [0.1, 0.3, 0.6])
    cand = _probs([0.7, 0.2, 0.1], [0.1, 0.302, 0.598])
    result = compare(NAMES, ref, cand)
    assert not result.ok
    assert result.over_tolerance == ("b",)
    assert result.worst == pytest.approx(0.002)
    assert "b" in result.explain()


def test_top1_flip_within_a_tiny_margin_is_allowed():
    ref = _probs([0.4002, 0.3998, 0.2], [0.1, 0.3, 0.6])
    cand = _probs([0.3998, 0.4002, 0.2], [0.1, 0.3, 0.6])
    assert compare(NAMES, ref, cand).ok


def test_top1_flip_with_a_decisive_margin_fails_even_within_tolerance():
    # A loose tolerance lets the probabilities pass, but the margin (0.02) says the flip is real.
    ref = _probs([0.51, 0.49, 0.0], [0.1, 0.3, 0.6])
    cand = _probs([0.49, 0.51, 0.0], [0.1, 0.3, 0.6])
    result = compare(NAMES, ref, cand, tolerance=0.015)
    assert result.top1_mismatches == ("a",)
    assert not result.ok


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        compare(NAMES, _probs([1.0, 0.0]), _probs([1.0, 0.0], [0.0, 1.0]))


def test_top_margins():
    assert top_margins(_probs([0.5, 0.3, 0.2], [0.1, 0.1, 0.8])) == pytest.approx([0.2, 0.7])


def test_disagreements_names_the_failing_pairs():
    reference = np.array([[0.9, 0.1], [0.2, 0.8]])
    close = reference + 1e-5
    far = np.array([[0.1, 0.9], [0.2, 0.8]])
    lines: list[str] = []
    failures = disagreements(["a", "b"], {"x": close, "y": far}, reference, report=lines.append)
    assert len(lines) == 3  # x and y against the reference, x against y
    assert [f.splitlines()[0].split(":")[0] for f in failures] == ["y vs the in-process reference", "x vs y"]
    assert disagreements(["a", "b"], {"x": close, "z": reference}, report=lines.append) == []
