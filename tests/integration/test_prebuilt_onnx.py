"""ONNX_MODEL_URI: a prebuilt ONNX model is served only if it fits the input contract and the state dict."""

from __future__ import annotations

import onnx
import pytest

from model_core.loading import load_state_dict_file
from model_serving.artifacts import ModelSource, export
from model_serving.cli import main
from model_serving.model.onnx_graph import network_graph, served_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def upstream_style_onnx(default_artifacts, tmp_path_factory) -> str:
    """The network alone, float32 NCHW [1, 3, 224, 224], as upstream's training pipeline exports it."""
    model = load_state_dict_file(default_artifacts.path("state_dict"))
    path = tmp_path_factory.mktemp("upstream") / "weather_classifier.onnx"
    onnx.save(network_graph(model), path)
    return str(path)


def test_a_fitting_prebuilt_model_is_served_and_recorded(tmp_path, default_artifacts):
    state_dict = str(default_artifacts.path("state_dict"))
    # A fitting model: the unoptimized graph of the same weights (what another machine's export would give).
    prebuilt = tmp_path / "prebuilt.onnx"
    prebuilt.write_bytes(default_artifacts.path("onnx").read_bytes())
    manifest = export(tmp_path / "out", ModelSource.from_uris(state_dict, str(prebuilt)))
    assert manifest["model_id"] == default_artifacts.manifest["model_id"]
    assert manifest["source"]["onnx"]["uri"] == str(prebuilt)
    assert manifest["export_check_max_abs_diff"] < 1e-4
    assert (tmp_path / "out" / "model.optimized.onnx").is_file()


def test_upstreams_float32_nchw_model_is_refused_with_how_to_derive_one(tmp_path, upstream_style_onnx, capsys):
    code = main(["export", "--out", str(tmp_path / "out"), "--onnx-model", upstream_style_onnx])
    error = capsys.readouterr().err
    assert code == 2
    assert f"{upstream_style_onnx}: its input is " in error
    assert "float [1, 3, 224, 224]" in error
    assert "model-serving export --state-dict" in error
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_prebuilt_model_of_other_weights_is_refused(tmp_path, default_artifacts, user_weights):
    other = tmp_path / "other.onnx"
    onnx.save(served_model(load_state_dict_file(user_weights.path)), other)
    source = ModelSource.from_uris(str(default_artifacts.path("state_dict")), str(other))
    with pytest.raises(Exception, match="probabilities differ from the state dict's") as caught:
        export(tmp_path / "out", source)
    assert "TORCH_MODEL_URI" in str(caught.value)


def test_a_file_that_is_no_onnx_model_is_refused(tmp_path, default_artifacts):
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"\x00not a protobuf\xff" * 10)
    source = ModelSource.from_uris(None, str(junk))
    with pytest.raises(Exception, match="is not a readable ONNX model"):
        export(tmp_path / "out", source)
