"""The graph the usual ONNX implementations serve: the suite's network behind the preprocessing most ONNX exports
carry — a plain (not antialiased) bilinear resize of the whole image to 256×256, the centre 224×224, normalize.

Input ``image``: float32 ``[1, 3, H, W]`` in [0, 1] (what the usual client code makes in numpy or ndarray).
Output ``probabilities``: float32 ``[1, 11]``. It does not keep the preprocessing contract (DESIGN §3): the aspect
ratio is not kept and downscaling aliases, which is the point of comparing against it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model_core.preprocessing import CROP_SIZE, MEAN, RESIZE_SHORT_SIDE, STD
from model_serving.model.onnx_graph import INPUT_NAME, OPSET, PIXELS_NAME, join_to_network

USUAL_GRAPH_NAME = "usual.onnx"


def _preprocessing(ir_version: int) -> onnx.ModelProto:
    margin = (RESIZE_SHORT_SIDE - CROP_SIZE) // 2
    constants = {
        "sizes": np.array([1, 3, RESIZE_SHORT_SIDE, RESIZE_SHORT_SIDE], dtype=np.int64),
        "crop_starts": np.array([margin, margin], dtype=np.int64),
        "crop_ends": np.array([margin + CROP_SIZE, margin + CROP_SIZE], dtype=np.int64),
        "crop_axes": np.array([2, 3], dtype=np.int64),
        "mean": np.array(MEAN, dtype=np.float32).reshape(1, 3, 1, 1),
        "std": np.array(STD, dtype=np.float32).reshape(1, 3, 1, 1),
    }
    nodes = [
        # torch's F.interpolate(size=(256, 256), mode="bilinear") as the exporter writes it.
        helper.make_node("Resize", [INPUT_NAME, "", "", "sizes"], ["resized"], mode="linear"),
        helper.make_node("Slice", ["resized", "crop_starts", "crop_ends", "crop_axes"], ["cropped"]),
        helper.make_node("Sub", ["cropped", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], [PIXELS_NAME]),
    ]
    graph = helper.make_graph(
        nodes,
        "usual_preprocessing",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info(PIXELS_NAME, TensorProto.FLOAT, [1, 3, CROP_SIZE, CROP_SIZE])],
        initializer=[numpy_helper.from_array(values, name=name) for name, values in constants.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=ir_version)


def usual_graph(network: onnx.ModelProto) -> onnx.ModelProto:
    """The usual preprocessing joined to ``network`` (``pixel_values`` → ``probabilities``)."""
    joined = join_to_network(_preprocessing(network.ir_version), network, "usual_mobilenet_v3_small_weather")
    onnx.checker.check_model(joined, full_check=True)
    return joined
