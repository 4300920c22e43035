import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from model_core.errors import ModelError
from model_serving.model.onnx_contract import check_served_contract, with_served_names

pytestmark = pytest.mark.unit


def _model(input_type: int, input_shape: list, output_shape: list, input_name: str = "x") -> onnx.ModelProto:
    """A tiny graph: cast the input to float, reduce to a mean, tile it to the output width, softmax."""
    nodes = [
        helper.make_node("Cast", [input_name], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["as_float"], ["mean"], keepdims=0),
        helper.make_node("Reshape", ["mean", "one_by_one"], ["scalar"]),
        helper.make_node("Tile", ["scalar", "repeats"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(input_name, input_type, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        initializer=[
            helper.make_tensor("one_by_one", TensorProto.INT64, [2], [1, 1]),
            helper.make_tensor("repeats", TensorProto.INT64, [2], [1, 11]),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize(
    "shape",
    [[1, "height", "width", 3], ["batch", "h", "w", 3], [None, None, None, 3]],
    ids=["named", "batch", "unknown"],
)
def test_uint8_nhwc_of_any_size_fits(shape):
    check_served_contract(_model(TensorProto.UINT8, shape, [1, 11]), "m.onnx")


def test_upstreams_float32_nchw_model_is_refused_with_how_to_derive_one():
    with pytest.raises(ModelError) as caught:
        check_served_contract(_model(TensorProto.FLOAT, [1, 3, 224, 224], [1, 11], "input"), "gs://b/model.onnx")
    message = str(caught.value)
    assert message.startswith("gs://b/model.onnx: its input is 'input' float [1, 3, 224, 224]")
    assert "uint8 [1, height, width, 3]" in message
    assert "model-serving export --state-dict" in message


@pytest.mark.parametrize(
    ("input_type", "shape", "output", "expected"),
    [
        (TensorProto.UINT8, [1, 224, 224, 3], [1, 11], "its input is 'x' uint8 [1, 224, 224, 3]"),
        (TensorProto.UINT8, [1, "h", "w", 4], [1, 11], "its input is 'x' uint8 [1, h, w, 4]"),
        (TensorProto.UINT8, [2, "h", "w", 3], [1, 11], "its input is 'x' uint8 [2, h, w, 3]"),
        (TensorProto.UINT8, [1, "h", "w", 3], [1, 10], "its output is 'y' float [1, 10]"),
    ],
)
def test_other_misfits_are_refused(input_type, shape, output, expected):
    with pytest.raises(ModelError, match=r"^m\.onnx: " + expected.replace("[", r"\[").replace("]", r"\]")):
        check_served_contract(_model(input_type, shape, output), "m.onnx")


def test_two_inputs_are_refused():
    model = _model(TensorProto.UINT8, [1, "h", "w", 3], [1, 11])
    model.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1]))
    with pytest.raises(ModelError, match="one input and one output; the model has 2 input"):
        check_served_contract(model, "m.onnx")


def test_renamed_model_runs_under_the_served_names():
    model = with_served_names(_model(TensorProto.UINT8, [1, "h", "w", 3], [1, 11], "pixels"))
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    (result,) = session.run(["probabilities"], {"image": np.zeros((1, 5, 7, 3), np.uint8)})
    assert result.shape == (1, 11)
    assert result.sum() == pytest.approx(1.0)
