"""The preprocessing graph alone, in ONNX Runtime, against the torch reference."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from model_core.preprocessing import preprocess
from model_serving.imagegen import synthetic_photo
from model_serving.model.onnx_graph import INPUT_NAME, preprocessing_graph

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    model = preprocessing_graph(ir_version=10)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(
    ("width", "height"),
    [(451, 300), (300, 451), (32, 32), (100, 800), (800, 100), (257, 256), (259, 256), (256, 261), (1411, 1411)],
)
def test_graph_matches_torch_reference(session, width, height):
    image = synthetic_photo(width, height, seed=width * 7 + height)
    expected = preprocess(image).numpy()
    (actual,) = session.run(None, {INPUT_NAME: image[None]})
    assert actual.shape == (1, 3, 224, 224)
    # Normalized units: 1e-4 is about 0.006 on the 0..255 scale.
    assert np.abs(actual - expected).max() < 1e-4


def test_graph_accepts_dynamic_sizes_in_one_session(session):
    for width, height in ((640, 480), (480, 640)):
        image = np.zeros((1, height, width, 3), dtype=np.uint8)
        (out,) = session.run(None, {INPUT_NAME: image})
        assert out.shape == (1, 3, 224, 224)
        assert torch.allclose(torch.from_numpy(out), preprocess(image[0]), atol=1e-5)
