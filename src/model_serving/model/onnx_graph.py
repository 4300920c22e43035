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

from model_core.mobilenet import MobileNetV3Small
from model_core.preprocessing import BLOCK, CROP_SIZE, MEAN, RESIZE_SHORT_SIDE, STD

OPSET = 18  # Resize with antialias needs opset 18.
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
PIXELS_NAME = "pixel_values"  # the joint between the two graphs
# The crop is made in this many parts of its output rows (4 window groups of BLOCK rows each), each part through
# both passes before the next starts: a part's floats (about 0.9 MB gathered and 0.25 MB weighed for the 1200×727
# photo) stay in cache from one step to the next, and their memory serves the next part. Interleaved with the
# network and a decode, as a request runs, 1200×727:
# - the rows pass alone in 4 parts, BLOCK 4 (AMD EPYC): ×0.89 against one part (×0.67 at 1920×1080);
# - both passes in 4 parts, BLOCK 4 (Intel Xeon): `model-serving check`'s ratio 1.05 → 0.98–0.99 (the Concat of
#   the whole rows product and the turn of all of it are gone);
# - BLOCK 8 in 7 parts: ×0.89–0.90 against that (check: 0.87–0.88); 4 parts ×1.06, 14 ×1.04, 28 ×1.23 against
#   7; at 1920×1080 ×0.85, 4000×3000 ×0.96, but 640×480 ×1.04 and 320×240 ×1.08 (0.05 ms: more nodes).
ROWS_CHUNKS = 7


def _constant(name: str, values: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(values, name=name)


class _Nodes:
    """A graph under construction: ``add`` appends a node and returns its output's name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []

    def constant(self, name: str, values: np.ndarray) -> str:
        self.initializers.append(_constant(name, values))
        return name

    def add(self, op: str, inputs: list[str], output: str, **attributes: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def split(self, value: str, parts: int, name: str) -> list[str]:
        """``value`` cut into ``parts`` equal pieces along its first axis."""
        outputs = [f"{name}_{index}" for index in range(parts)]
        self.nodes.append(helper.make_node("Split", [value], outputs, axis=0, num_outputs=parts))
        return outputs


def _crop_windows(g: _Nodes, sizes: str, resized: str, starts: str) -> tuple[str, str]:
    """Nodes for :func:`model_core.preprocessing.crop_windows` along both axes at once (rows, columns:
    ``sizes``, ``resized`` and ``starts`` are int64 ``[2]``), the same operations in the same order. The two axes
    share the window length (the longer; the other's extra taps weigh 0): indices ``[2, groups * length]``
    (clamped), weights ``[2, groups, BLOCK, length]``."""

    def add(op: str, inputs: list[str], name: str, **attributes: object) -> str:
        return g.add(op, inputs, f"windows_{name}", **attributes)

    def cast(value: str, to: int, name: str) -> str:
        return add("Cast", [value], name, to=to)

    def column(value: str, name: str) -> str:  # [2] → [2, 1]
        return add("Unsqueeze", [value, "axis1"], name)

    grouped = g.constant("windows_grouped_shape", np.array([2, CROP_SIZE // BLOCK, BLOCK, 1], np.int64))
    offsets = g.constant("windows_outputs", np.arange(CROP_SIZE, dtype=np.float32))
    scale = column(
        add("Div", [cast(sizes, TensorProto.FLOAT, "in_f"), cast(resized, TensorProto.FLOAT, "out_f")], "scale_1"),
        "scale",
    )
    support = add("Max", [scale, "one"], "support")
    positions = add("Add", [column(cast(starts, TensorProto.FLOAT, "starts_f"), "starts_col"), offsets], "positions")
    centre = add("Mul", [scale, add("Add", [positions, "half"], "mid")], "centre")
    low_f = add("Add", [add("Sub", [centre, support], "centre_low"), "half"], "low_f")
    low = add("Max", [cast(low_f, TensorProto.INT64, "low_t"), "zero_i"], "low")  # Cast truncates, as C++
    high_f = add("Add", [add("Add", [centre, support], "centre_high"), "half"], "high_f")
    high = add("Min", [cast(high_f, TensorProto.INT64, "high_t"), column(sizes, "sizes_col")], "high")
    low, high, centre = (add("Reshape", [value, grouped], f"{value}_grouped") for value in (low, high, centre))
    first = add("Slice", [low, "first", "one_1", "axis2"], "first")  # [2, groups, 1, 1]
    last = add("Slice", [high, "block_last", "block", "axis2"], "last")
    length = add("ReduceMax", [add("Sub", [last, first], "spans")], "length", keepdims=0)
    window = add("Add", [first, add("Range", ["zero_i", length, "one_i"], "offsets")], "window")  # [2, groups, 1, L]
    support = add(
        "Reshape", [support, g.constant("windows_support_shape", np.array([2, 1, 1, 1], np.int64))], "support_4"
    )
    shifted = add("Add", [add("Sub", [cast(window, TensorProto.FLOAT, "window_f"), centre], "shifted"), "half"], "mid2")
    distance = add("Div", [shifted, support], "distance")
    tent = add("Max", [add("Sub", ["one", add("Abs", [distance], "abs")], "tent_raw"), "zero"], "tent")
    inside = add(
        "And", [add("GreaterOrEqual", [window, low], "from_low"), add("Less", [window, high], "below_high")], "inside"
    )
    raw = add("Where", [inside, tent, "zero"], "raw")
    weights = add("Div", [raw, add("ReduceSum", [raw, "axis3"], "total", keepdims=1)], "weights")
    flat = add("Reshape", [window, g.constant("windows_flat_shape", np.array([2, -1], np.int64))], "window_flat")
    index = add("Min", [flat, column(add("Sub", [sizes, "one_i"], "last_index"), "last_col")], "index")
    return index, weights


def preprocessing_graph(ir_version: int) -> onnx.ModelProto:
    """uint8 NHWC image of any size → normalized float32 ``[1, 3, 224, 224]``.

    The antialiased resize is computed for the crop's pixels only, as ``preprocessing.preprocess_crop`` does it
    (equal to ``Resize(antialias=1)`` then ``Slice`` up to float rounding; a full ``Resize`` cost three times the
    network): the input region the crop reads, then in :data:`ROWS_CHUNKS` parts of the output rows: rows pass
    over windows of input rows (gathered as uint8, made float only then), turned, columns pass, turned; the parts
    joined, normalized.
    """
    g = _Nodes()
    for name, value, dtype in (
        ("hw_indices", [1, 2], np.int64),
        ("short_side", RESIZE_SHORT_SIDE, np.int64),
        ("crop", [CROP_SIZE], np.int64),
        ("two", 2.0, np.float32),
        ("one", 1.0, np.float32),
        ("half", 0.5, np.float32),
        ("zero", 0.0, np.float32),
        ("one_i", 1, np.int64),
        ("zero_i", 0, np.int64),
        ("axis1", [1], np.int64),
        ("axis2", [2], np.int64),
        ("axis3", [3], np.int64),
        ("flat", [-1], np.int64),
        ("first", [0], np.int64),
        ("one_1", [1], np.int64),
        ("last_1", [-1], np.int64),
        ("end_1", [np.iinfo(np.int64).max], np.int64),
        ("block", [BLOCK], np.int64),
        ("block_last", [BLOCK - 1], np.int64),
        # (x / 255 - mean) / std as one multiply and one add per value: x * scale + shift.
        ("scale", 1.0 / (255.0 * np.reshape(STD, (3, 1, 1))), np.float32),
        ("shift", -np.reshape(MEAN, (3, 1, 1)) / np.reshape(STD, (3, 1, 1)), np.float32),
    ):
        g.constant(name, np.array(value, dtype=dtype))
    # Resized size: shorter side 256, longer side floor(256 * long / short), in integers; crop offsets
    # round((size - 224) / 2), half to even.
    hw = g.add("Gather", [g.add("Shape", [INPUT_NAME], "shape"), "hw_indices"], "hw")
    short = g.add("ReduceMin", [hw], "short", keepdims=1)
    resized_hw = g.add("Div", [g.add("Mul", [hw, "short_side"], "hw_scaled"), short], "resized_hw")
    margin = g.add("Cast", [g.add("Sub", [resized_hw, "crop"], "margin")], "margin_f", to=TensorProto.FLOAT)
    start_hw = g.add(
        "Cast",
        [g.add("Round", [g.add("Div", [margin, "two"], "half_margin")], "start_f")],
        "start_hw",
        to=TensorProto.INT64,
    )

    index, weights = _crop_windows(g, hw, resized_hw, start_hw)
    row_index, col_index = (
        g.add("Gather", [index, axis], f"{name}_index") for axis, name in (("zero_i", "rows"), ("one_i", "cols"))
    )
    row_weight, col_weight = (
        g.add("Gather", [weights, axis], f"{name}_weight") for axis, name in (("zero_i", "rows"), ("one_i", "cols"))
    )
    # The input region the crop reads: from each axis's first index to its last.
    first_index = g.add("Slice", [index, "first", "one_1", "axis1"], "index_first")
    region_from = g.add("Reshape", [first_index, "flat"], "region_from")
    region_to = g.add(
        "Add",
        [
            g.add(
                "Reshape", [g.add("Slice", [index, "last_1", "end_1", "axis1"], "index_last"), "flat"], "region_last"
            ),
            "one_i",
        ],
        "region_to",
    )
    region = g.add("Slice", [INPUT_NAME, region_from, region_to, "hw_indices"], "region_4")
    region = g.add("Squeeze", [region, "first"], "region")  # [rows, columns, 3]
    row0, col0 = (
        g.add("Gather", [region_from, axis], f"{name}_origin") for axis, name in (("zero_i", "rows"), ("one_i", "cols"))
    )

    def windows(index: str, origin: str, weight: str, name: str, parts: int) -> tuple[list[str], list[str], str]:
        # The window indices local to the region and the weights, cut into `parts` equal runs of window groups,
        # and the [groups in a part, window length, -1] shape of a part's gathered lines.
        local = g.add("Sub", [index, origin], f"{name}_local")
        length = g.add("Shape", [weight], f"{name}_window_len", start=2)
        groups, rest = divmod(CROP_SIZE // BLOCK, parts)
        if rest:
            raise ValueError(f"{CROP_SIZE // BLOCK} window groups do not split into {parts} equal parts")
        group_count = g.constant(f"{name}_part_groups", np.array([groups], np.int64))
        shape = g.add("Concat", [group_count, length, "flat"], f"{name}_shape", axis=0)
        if parts == 1:
            return [local], [weight], shape
        by_part = g.add(
            "Reshape", [local, g.constant(f"{name}_parts", np.array([parts, -1], np.int64))], f"{name}_by_part"
        )
        indices = [
            g.add("Reshape", [part, "flat"], f"{part}_flat") for part in g.split(by_part, parts, f"{name}_index")
        ]
        return indices, g.split(weight, parts, f"{name}_weight"), shape

    def weighed(lines: str, index: str, weight: str, shape: str, name: str, cast: bool = False) -> str:
        # Every window's input lines gathered ([groups, length, line]) and weighed in batched products; uint8
        # lines are cast after the gather (fewer values).
        gathered = g.add("Gather", [lines, index], f"{name}_lines", axis=0)
        if cast:
            gathered = g.add("Cast", [gathered], f"{name}_f", to=TensorProto.FLOAT)
        grouped = g.add("Reshape", [gathered, shape], f"{name}_grouped")
        return g.add("MatMul", [weight, grouped], f"{name}_product")

    # The crop is made in ROWS_CHUNKS parts of its output rows, each carried from the input's rows to its pixels
    # before the next starts: rows pass → [rows, columns, 3]; turned to [columns, 3, rows] (ORT moves the first or
    # the last axis fast, a middle one slowly); columns pass → [224 columns, 3, rows]; turned to [3, rows, 224
    # columns]. The parts are joined along the rows, then normalized.
    row_locals, row_weights, rows_shape = windows(row_index, row0, row_weight, "rows", ROWS_CHUNKS)
    (col_local,), (col_weight,), cols_shape = windows(col_index, col0, col_weight, "cols", 1)
    part_rows = CROP_SIZE // ROWS_CHUNKS
    vertical_shape = g.constant("vertical_shape", np.array([part_rows, -1, 3], np.int64))
    horizontal_shape = g.constant("horizontal_shape", np.array([CROP_SIZE, 3, part_rows], np.int64))
    parts = []
    for part, (part_local, part_weight) in enumerate(zip(row_locals, row_weights, strict=True)):
        rows = weighed(region, part_local, part_weight, rows_shape, f"rows_{part}", cast=True)
        vertical = g.add("Reshape", [rows, vertical_shape], f"vertical_{part}")
        turned = g.add("Transpose", [vertical], f"turned_{part}", perm=[1, 2, 0])
        columns = weighed(turned, col_local, col_weight, cols_shape, f"cols_{part}")
        horizontal = g.add("Reshape", [columns, horizontal_shape], f"horizontal_{part}")
        parts.append(g.add("Transpose", [horizontal], f"cropped_{part}", perm=[1, 2, 0]))
    cropped = parts[0] if ROWS_CHUNKS == 1 else g.add("Concat", parts, "cropped", axis=1)  # [3, 224, 224]
    # Normalize, (x / 255 - mean) / std as x * scale + shift.
    normalized = g.add("Add", [g.add("Mul", [cropped, "scale"], "scaled"), "shift"], "normalized")
    g.add("Unsqueeze", [normalized, "first"], PIXELS_NAME)
    graph = helper.make_graph(
        g.nodes,
        "preprocess",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, [1, "height", "width", 3])],
        [helper.make_tensor_value_info(PIXELS_NAME, TensorProto.FLOAT, [1, 3, CROP_SIZE, CROP_SIZE])],
        initializer=g.initializers,
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


def join_to_network(preprocessing: onnx.ModelProto, network: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """``preprocessing`` (→ ``pixel_values``) feeding ``network`` (``pixel_values`` → ``probabilities``), unchecked."""
    joined = compose.merge_models(preprocessing, network, io_map=[(PIXELS_NAME, PIXELS_NAME)], prefix2="net_")
    joined.graph.name = name
    # merge_models prefixes the second graph's outputs; keep the contract's name.
    for output in joined.graph.output:
        if output.name == f"net_{OUTPUT_NAME}":
            output.name = OUTPUT_NAME
    for node in joined.graph.node:
        node.output[:] = [OUTPUT_NAME if name == f"net_{OUTPUT_NAME}" else name for name in node.output]
    return joined


def served_model(model: MobileNetV3Small) -> onnx.ModelProto:
    """Preprocessing joined to the network: uint8 ``[1, H, W, 3]`` → probabilities ``[1, 11]``."""
    network = network_graph(model)
    joined = join_to_network(preprocessing_graph(network.ir_version), network, "mobilenet_v3_small_weather")
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
