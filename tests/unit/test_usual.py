"""The usual implementations' graph, and the pure parts of the side-by-side comparison."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from model_core.preprocessing import MEAN, STD
from model_serving.imagegen import synthetic_photo
from model_serving.model.onnx_graph import INPUT_NAME, OPSET, OUTPUT_NAME, PIXELS_NAME
from model_serving.perf.rounds import rotated
from model_serving.usual.graph import usual_graph

pytestmark = pytest.mark.unit

WEIGHTS = np.random.default_rng(3).normal(size=(3, 11)).astype(np.float32)


def tiny_network() -> onnx.ModelProto:
    """pixel_values → the mean of each channel → a [3, 11] matrix: enough to see the preprocessing through it."""
    nodes = [
        helper.make_node("ReduceMean", [PIXELS_NAME, "axes"], ["means"], keepdims=0),
        helper.make_node("MatMul", ["means", "weights"], [OUTPUT_NAME]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(PIXELS_NAME, TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [1, 11])],
        initializer=[
            numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes"),
            numpy_helper.from_array(WEIGHTS, "weights"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=10)


def plain_resize_reference(chw: torch.Tensor) -> torch.Tensor:
    """What the usual export computes: torch's non-antialiased bilinear resize to 256×256, centre 224, normalize."""
    resized = torch.nn.functional.interpolate(chw[None], size=(256, 256), mode="bilinear", align_corners=False)
    cropped = resized[:, :, 16:240, 16:240]
    return (cropped - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


@pytest.mark.parametrize(("width", "height"), [(1200, 727), (300, 451), (256, 256), (224, 224)])
def test_usual_graph_is_a_plain_resize_of_the_whole_image(width, height):
    session = ort.InferenceSession(usual_graph(tiny_network()).SerializeToString(), providers=["CPUExecutionProvider"])
    pixels = torch.from_numpy(synthetic_photo(width, height, seed=width + height)).permute(2, 0, 1).float() / 255
    (actual,) = session.run(None, {INPUT_NAME: pixels[None].numpy()})
    expected = plain_resize_reference(pixels).mean(dim=(2, 3)).numpy() @ WEIGHTS
    assert actual.shape == (1, 11)
    np.testing.assert_allclose(actual, expected, atol=1e-4)


def test_rounds_rotate_who_goes_first():
    sides = ["ours", "usual", "usual_tuned"]
    assert [rotated(sides, i)[0] for i in range(4)] == ["ours", "usual", "usual_tuned", "ours"]
    assert all(sorted(rotated(sides, i)) == sides for i in range(3))
    assert rotated([], 3) == ()
