"""The crop-only preprocessing (torch-serving's ``preprocess_crop`` and the ONNX graph's gathers) against the torch
reference ``preprocess`` (a full antialiased ``F.interpolate``, then the crop): equal up to float rounding."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from model_core import preprocessing
from model_core.preprocessing import crop_windows, preprocess, preprocess_crop
from model_serving.imagegen import synthetic_photo
from model_serving.model import onnx_graph
from model_serving.model.onnx_graph import INPUT_NAME, preprocessing_graph
from serving_common.decoding import decode_rgb

pytestmark = pytest.mark.unit

# Normalized units: 1e-5 is about 0.0006 on the 0..255 scale (what is left is float rounding: the sums run in
# another order). The old Resize graph was held to 1e-4.
TOLERANCE = 1e-5

# (width, height): short side exactly 256 (scale 1, both ways), 257, a 224×224 input (upscaled), 8:1 both ways
# (shrunk and upscaled), the benchmark's size, and a large photograph.
BORDER_SIZES = [
    (256, 256),
    (300, 256),
    (256, 300),
    (257, 400),
    (400, 257),
    (257, 257),
    (224, 224),
    (2048, 256),
    (256, 2048),
    (800, 100),
    (100, 800),
    (1200, 727),
    (727, 1200),
    (3000, 4000),
]


@pytest.fixture(scope="module")
def graph() -> ort.InferenceSession:
    model = preprocessing_graph(ir_version=10)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _both(graph: ort.InferenceSession, pixels: np.ndarray) -> tuple[float, float]:
    expected = preprocess(pixels)
    torch_error = float((preprocess_crop(pixels) - expected).abs().max())
    (onnx_out,) = graph.run(None, {INPUT_NAME: pixels[None]})
    assert onnx_out.shape == (1, 3, 224, 224)
    return torch_error, float(np.abs(onnx_out - expected.numpy()).max())


@pytest.mark.parametrize(("width", "height"), BORDER_SIZES)
def test_crop_only_preprocessing_matches_reference_at_the_borders(graph, width, height):
    torch_error, onnx_error = _both(graph, synthetic_photo(width, height, seed=width * 3 + height))
    assert torch_error < TOLERANCE
    assert onnx_error < TOLERANCE


def test_crop_only_preprocessing_matches_reference_on_the_corpus(graph, corpus: list[Path]):
    errors = {path.name: _both(graph, decode_rgb(path.read_bytes())) for path in corpus}
    worst = {name: error for name, error in errors.items() if max(error) >= TOLERANCE}
    assert not worst, f"(torch, onnx) error above {TOLERANCE}: {worst}"


@pytest.mark.parametrize(
    ("in_size", "out_size", "start"), [(727, 256, 16), (1200, 422, 99), (256, 256, 16), (100, 256, 16)]
)
def test_crop_windows_are_the_resize_matrix_rows(in_size, out_size, start):
    """Each output pixel's window weights, scattered into a dense row, are that row of the resize as a matrix: the
    reference applied to unit impulses (one column of the matrix each)."""
    indices, weights = crop_windows(in_size, out_size, start)
    groups, block, length = weights.shape
    assert groups * block == 224
    rows = weights.reshape(224, length)
    columns = indices.view(groups, 1, length).expand(groups, block, length).reshape(224, length)
    dense = torch.zeros(224, in_size).scatter_add_(1, columns, rows)
    impulses = torch.eye(in_size).view(in_size, 1, in_size, 1).expand(in_size, 1, in_size, 2)
    resized = torch.nn.functional.interpolate(
        impulses, size=(out_size, 2), mode="bilinear", align_corners=False, antialias=True
    )
    reference = resized[:, 0, start : start + 224, 0].T  # [output pixel, input pixel]
    assert torch.allclose(dense, reference, atol=1e-6)
    assert torch.allclose(rows.sum(dim=1), torch.ones(224))
    assert int(indices.min()) >= 0
    assert int(indices.max()) <= in_size - 1


@pytest.mark.parametrize("chunks", [1, 4, 14])
def test_crop_in_parts_gives_the_same_bits(graph, monkeypatch, chunks):
    """The crop's parts (ROWS_CHUNKS) only order the work: any count that splits the window groups gives the
    default graph's output bit for bit, also where a part holds the image's first or last rows."""
    monkeypatch.setattr(onnx_graph, "ROWS_CHUNKS", chunks)
    other = ort.InferenceSession(
        preprocessing_graph(ir_version=10).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    for width, height in ((1200, 727), (256, 2048), (224, 224)):
        image = synthetic_photo(width, height, seed=width + height)[None]
        (expected,) = graph.run(None, {INPUT_NAME: image})
        (actual,) = other.run(None, {INPUT_NAME: image})
        assert np.array_equal(actual, expected)


def test_crop_refuses_parts_that_do_not_split_the_groups(monkeypatch):
    monkeypatch.setattr(onnx_graph, "ROWS_CHUNKS", 3)  # 28 window groups
    with pytest.raises(ValueError, match="do not split into 3 equal parts"):
        preprocessing_graph(ir_version=10)


@pytest.mark.parametrize("parts", [1, 3, 28])
def test_torch_crop_in_parts_gives_the_same_bits(monkeypatch, parts):
    """preprocess_crop's parts (CROP_PARTS) only order the work: any count, even one that leaves a shorter last
    part, gives the default's output bit for bit, also where a part holds the image's first or last rows."""
    images = [synthetic_photo(width, height, seed=width + height) for width, height in ((1200, 727), (256, 2048))]
    expected = [preprocess_crop(image) for image in images]
    monkeypatch.setattr(preprocessing, "CROP_PARTS", parts)
    monkeypatch.setattr(preprocessing, "PART_BYTES", 2**62)  # CROP_PARTS alone decides
    for image, default in zip(images, expected, strict=True):
        assert torch.equal(preprocess_crop(image), default)


def _parts_of(width: int, height: int) -> tuple[int, int]:
    """(parts, the largest part's float bytes) of preprocess_crop for an image of this size."""
    plan = preprocessing.crop_plan(height, width)
    groups, _, window = plan.row_weight.shape
    line_floats = (int(plan.col_index[-1]) - int(plan.col_index[0]) + 1) * 3
    return plan.parts, -(-groups // plan.parts) * window * line_floats * 4


def test_torch_crop_parts_grow_with_the_image():
    """Up to 1920×1080 the crop keeps CROP_PARTS; a 4000×3000 photograph is cut into parts within PART_BYTES (two
    would be 55 MB each, mapped and page-faulted afresh on every request); at most one window group a part."""
    for width, height in ((1200, 727), (727, 1200), (1920, 1080), (256, 256)):
        assert _parts_of(width, height)[0] == preprocessing.CROP_PARTS
    parts, largest = _parts_of(4000, 3000)
    assert parts > preprocessing.CROP_PARTS
    assert largest <= preprocessing.PART_BYTES
    assert preprocessing.crop_parts(groups=28, window=100, line_floats=10**6) == 28


def test_torch_crop_in_more_parts_gives_the_same_bits(monkeypatch):
    """The parts a large image adds change nothing but the order of the work."""
    image = synthetic_photo(4000, 3000, seed=7)
    adaptive = preprocess_crop(image)
    monkeypatch.setattr(preprocessing, "PART_BYTES", 2**62)
    assert torch.equal(preprocess_crop(image), adaptive)
