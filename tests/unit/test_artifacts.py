import pytest
import torch

from model_core.errors import ModelError
from model_core.loading import load_state_dict_file, model_id
from model_core.manifest import read_manifest, verify_files
from model_core.mobilenet import MobileNetV3Small

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def state():
    torch.manual_seed(0)
    return MobileNetV3Small().state_dict()


def test_model_id_depends_on_values_not_on_the_file(tmp_path, state):
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save(state, first)
    torch.save(state, second)
    assert model_id(load_state_dict_file(first).state_dict()) == model_id(state)
    assert model_id(load_state_dict_file(second).state_dict()) == model_id(state)


def test_model_id_changes_with_one_value(state):
    changed = {k: v.clone() for k, v in state.items()}
    changed["classifier.3.bias"][0] += 1e-6
    assert model_id(changed) != model_id(state)


def test_model_id_changes_with_dtype(state):
    changed = dict(state)
    changed["classifier.3.bias"] = state["classifier.3.bias"].double()
    assert model_id(changed) != model_id(state)


def test_missing_state_dict(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_state_dict_file(tmp_path / "nope.pt")


def test_corrupt_state_dict(tmp_path):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(ModelError, match="not a readable torch state dict"):
        load_state_dict_file(path)


def test_state_dict_of_another_head(tmp_path):
    path = tmp_path / "imagenet.pt"
    torch.save(MobileNetV3Small(num_classes=1000).state_dict(), path)
    with pytest.raises(ModelError, match="does not fit MobileNetV3-small with an 11-class head"):
        load_state_dict_file(path)


def test_whole_model_object_is_refused(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ModelError, match="not a state dict"):
        load_state_dict_file(path)


def test_folder_without_manifest(tmp_path):
    with pytest.raises(ModelError, match="model-serving export"):
        read_manifest(tmp_path)


def test_verify_files_detects_a_changed_file(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"abc")
    manifest = {"files": {"onnx": {"path": "m.onnx", "sha256": "0" * 64}}}
    with pytest.raises(ModelError, match="does not match the sha256"):
        verify_files(tmp_path, manifest)
