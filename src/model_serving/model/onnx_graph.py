"""The served ONNX model: preprocessing (DESIGN §3 steps 2–4) in plain opset-18 operators, then the network
and a softmax exported from torch.

Input ``image``: uint8 ``[1, H, W, 3]`` with dynamic H and W. Output ``probabilities``: float32 ``[1, 11]``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, compose, helper, numpy_helper

from model_serving.model.mobilenet import MobileNetV3Small
from model_serving.model.preprocessing import CROP_SIZE, MEAN, RESIZE_SHORT_SIDE, STD

OPSET = 18  # Resize with antialias needs opset 18.
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
PIXELS_NAME = "pixel_values"  # the joint between the two graphs


def _constant(name: str, values: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(values, name=name)


def preprocessing_graph(ir_version: int) -> onnx.ModelProto:
    """uint8 NHWC image of any size → normalized float32 ``[1, 3, 224, 224]``."""
    initializers = [
        _constant("hw_indices", np.array([1, 2], dtype=np.int64)),
        _constant("short_side", np.array(RESIZE_SHORT_SIDE, dtype=np.int64)),
        _constant("batch_channels", np.array([1, 3], dtype=np.int64)),
        _constant("crop", np.array(CROP_SIZE, dtype=np.int64)),
        _constant("two", np.array(2.0, dtype=np.float32)),
        _constant("crop_axes", np.array([2, 3], dtype=np.int64)),
        _constant("max_value", np.array(255.0, dtype=np.float32)),
        _constant("mean", np.array(MEAN, dtype=np.float32).reshape(1, 3, 1, 1)),
        _constant("std", np.array(STD, dtype=np.float32).reshape(1, 3, 1, 1)),
    ]
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["image_f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["image_f"], ["nchw"], perm=[0, 3, 1, 2]),
        # Target size: shorter side 256, longer side floor(256 * long / short), in integers.
        helper.make_node("Shape", [INPUT_NAME], ["shape"]),
        helper.make_node("Gather", ["shape", "hw_indices"], ["hw"]),
        helper.make_node("ReduceMin", ["hw"], ["short"], keepdims=1),
        helper.make_node("Mul", ["hw", "short_side"], ["hw_scaled"]),
        helper.make_node("Div", ["hw_scaled", "short"], ["resized_hw"]),
        helper.make_node("Concat", ["batch_channels", "resized_hw"], ["sizes"], axis=0),
        helper.make_node(
            "Resize",
            ["nchw", "", "", "sizes"],
            ["resized"],
            mode="linear",
            antialias=1,
            coordinate_transformation_mode="half_pixel",
            exclude_outside=1,
        ),
        # Centre crop: offsets round((size - 224) / 2), half to even.
        helper.make_node("Sub", ["resized_hw", "crop"], ["margin"]),
        helper.make_node("Cast", ["margin"], ["margin_f"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["margin_f", "two"], ["half_margin"]),
        helper.make_node("Round", ["half_margin"], ["start_f"]),
        helper.make_node("Cast", ["start_f"], ["start"], to=TensorProto.INT64),
        helper.make_node("Add", ["start", "crop"], ["end"]),
        helper.make_node("Slice", ["resized", "start", "end", "crop_axes"], ["cropped"]),
        # Normalize: (x / 255 - mean) / std.
        helper.make_node("Div", ["cropped", "max_value"], ["unit"]),
        helper.make_node("Sub", ["unit", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], [PIXELS_NAME]),
    ]
    graph = helper.make_graph(
        nodes,
        "preprocess",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, [1, "height", "width", 3])],
        [helper.make_tensor_value_info(PIXELS_NAME, TensorProto.FLOAT, [1, 3, CROP_SIZE, CROP_SIZE])],
        initializer=initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=ir_version)


class _WithSoftmax(torch.nn.Module):
    def __init__(self, network: MobileNetV3Small) -> None:
        super().__init__()
        self.network = network

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(pixels), dim=1)


def network_graph(model: MobileNetV3Small) -> onnx.ModelProto:
    """The network plus softmax, exported from torch with a static ``[1, 3, 224, 224]`` input."""
    model.eval()
    example = (torch.zeros(1, 3, CROP_SIZE, CROP_SIZE),)
    # The exporter prints progress and warns about torchvision ops we do not use; the CLI prints its own.
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                _WithSoftmax(model).eval(),
                example,
                dynamo=True,
                opset_version=OPSET,
                input_names=[PIXELS_NAME],
                output_names=[OUTPUT_NAME],
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    assert program is not None
    return program.model_proto


def served_model(model: MobileNetV3Small) -> onnx.ModelProto:
    """Preprocessing joined to the network: uint8 ``[1, H, W, 3]`` → probabilities ``[1, 11]``."""
    network = network_graph(model)
    joined = compose.merge_models(
        preprocessing_graph(network.ir_version),
        network,
        io_map=[(PIXELS_NAME, PIXELS_NAME)],
        prefix2="net_",
    )
    joined.graph.name = "mobilenet_v3_small_weather"
    # merge_models prefixes the second graph's outputs; keep the contract's name.
    for output in joined.graph.output:
        if output.name == f"net_{OUTPUT_NAME}":
            output.name = OUTPUT_NAME
    for node in joined.graph.node:
        node.output[:] = [OUTPUT_NAME if name == f"net_{OUTPUT_NAME}" else name for name in node.output]
    _strip_provenance(joined)
    onnx.checker.check_model(joined, full_check=True)
    return joined


def _strip_provenance(model: onnx.ModelProto) -> None:
    """Drop the exporter's stack traces and doc strings: they hold source paths (so the same weights exported
    from two clones gave different bytes, and different image tags) and serve no one at inference."""
    model.doc_string = ""
    del model.metadata_props[:]
    model.graph.doc_string = ""
    for node in model.graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
    for value in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        value.doc_string = ""
        del value.metadata_props[:]


def canonicalize_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rename nodes and intermediate values by position.

    ONNX Runtime's layout transforms name what they add from counters that differ between runs, so two
    optimizations of the same graph gave different bytes (and different image tags). Inputs, outputs and
    initializers keep their names.
    """
    graph = model.graph
    kept = {v.name for v in (*graph.input, *graph.output)} | {t.name for t in graph.initializer} | {""}
    renamed: dict[str, str] = {}
    for index, node in enumerate(graph.node):
        node.name = f"node_{index}"
        for name in node.output:
            if name not in kept and name not in renamed:
                renamed[name] = f"value_{len(renamed)}"
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    for value in graph.value_info:
        value.name = renamed.get(value.name, value.name)
    return model
