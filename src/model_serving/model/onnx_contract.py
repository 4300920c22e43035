"""Whether a prebuilt ONNX model (``ONNX_MODEL_URI``) can be served: the input contract of DESIGN §3.

The services feed the decoded image, uint8 ``[1, H, W, 3]`` RGB of any size, and read 11 probabilities; the
preprocessing (resize, crop, normalize) must be inside the graph. Pure functions over the ``ModelProto``.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto

from model_core import CLASSES
from model_core.errors import ModelError
from model_serving.model.onnx_graph import INPUT_NAME, OUTPUT_NAME

HOW_TO_DERIVE = (
    "derive a fitting one from the state dict instead: leave ONNX_MODEL_URI unset and run "
    "`model-serving export --state-dict <state dict URI>` (or set TORCH_MODEL_URI for the benchmark)"
)


def _dims(value: onnx.ValueInfoProto) -> list[int | str | None]:
    """Each dimension as a number, a symbolic name, or None when unknown."""
    shape = value.type.tensor_type.shape
    if not value.type.tensor_type.HasField("shape"):
        return []
    dims: list[int | str | None] = []
    for dim in shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        elif dim.HasField("dim_param"):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return dims


def _describe(value: onnx.ValueInfoProto) -> str:
    element = value.type.tensor_type.elem_type
    dtype = TensorProto.DataType.Name(element).lower() if element else "unknown type"
    shown = ", ".join("?" if d is None else str(d) for d in _dims(value))
    return f"'{value.name}' {dtype} [{shown}]"


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    # Older exporters list initializers as inputs too; those are weights, not inputs.
    weights = {tensor.name for tensor in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in weights]


def check_served_contract(model: onnx.ModelProto, origin: str) -> None:
    """Refuse, with what is wrong and how to get a fitting model, anything the services cannot feed."""
    inputs, outputs = _graph_inputs(model), list(model.graph.output)
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(
            f"{origin}: the services need one input and one output; the model has "
            f"{len(inputs)} input(s) ({', '.join(_describe(v) for v in inputs) or 'none'}) and "
            f"{len(outputs)} output(s); {HOW_TO_DERIVE}"
        )
    image, result = inputs[0], outputs[0]
    dims = _dims(image)
    fits = (
        image.type.tensor_type.elem_type == TensorProto.UINT8
        and len(dims) == 4
        and (dims[0] == 1 or not isinstance(dims[0], int))
        and not isinstance(dims[1], int)
        and not isinstance(dims[2], int)
        and dims[3] == 3
    )
    if not fits:
        raise ModelError(
            f"{origin}: its input is {_describe(image)}, but the services feed the decoded image as uint8 "
            "[1, height, width, 3] (RGB, any size) and expect resizing, cropping and normalization inside the graph "
            f"(a float32 [1, 3, 224, 224] model expects preprocessing done outside); {HOW_TO_DERIVE}"
        )
    out_dims = _dims(result)
    if result.type.tensor_type.elem_type != TensorProto.FLOAT or (out_dims and out_dims[-1] != len(CLASSES)):
        raise ModelError(
            f"{origin}: its output is {_describe(result)}; the services read float32 [1, {len(CLASSES)}] "
            f"probabilities in class order; {HOW_TO_DERIVE}"
        )


def with_served_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose input and output carry the names the services use (``image``, ``probabilities``)."""
    renamed = onnx.ModelProto()
    renamed.CopyFrom(model)
    graph = renamed.graph
    names = {_graph_inputs(renamed)[0].name: INPUT_NAME, graph.output[0].name: OUTPUT_NAME}
    taken = {n for node in graph.node for n in [*node.input, *node.output]} - set(names)
    clash = taken & set(names.values())
    if clash:
        raise ModelError(f"the model already uses {sorted(clash)} for an inner value; rename it before serving")
    for value in [*graph.input, *graph.output]:
        value.name = names.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
    return renamed
