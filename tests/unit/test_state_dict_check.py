import os
import pickle
import zipfile

import pytest
import torch

from model_core.errors import ModelError
from model_core.mobilenet import MobileNetV3Small
from model_core.state_dict_check import check_state_dict_file, tensor_shapes

pytestmark = pytest.mark.unit


def _manifest() -> dict:
    state = MobileNetV3Small().state_dict()
    return {"classes": list("abcdefghijk"), "state_dict_tensors": {k: list(v.shape) for k, v in state.items()}}


def _saved(tmp_path, value, name="weights.pt"):
    path = tmp_path / name
    torch.save(value, path)
    return path


def test_shapes_are_read_without_building_tensors(tmp_path):
    state = MobileNetV3Small().state_dict()
    shapes = tensor_shapes(_saved(tmp_path, state))
    assert shapes == {name: tuple(tensor.shape) for name, tensor in state.items()}
    assert len(shapes) == 244


def test_a_fitting_state_dict_passes(tmp_path):
    check_state_dict_file(_saved(tmp_path, MobileNetV3Small().state_dict()), _manifest())


def test_an_imagenet_head_is_a_size_mismatch(tmp_path):
    path = _saved(tmp_path, MobileNetV3Small(num_classes=1000).state_dict())
    with pytest.raises(ModelError) as caught:
        check_state_dict_file(path, _manifest())
    assert str(caught.value) == (
        f"{path} does not fit MobileNetV3-small with an 11-class head: "
        "size mismatch for classifier.3.weight: the file has [1000, 1024], the model needs [11, 1024]; "
        "size mismatch for classifier.3.bias: the file has [1000], the model needs [11]"
    )


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = MobileNetV3Small().state_dict()
    del state["features.0.0.weight"]
    state["fc.weight"] = torch.zeros(2, 2)
    with pytest.raises(ModelError, match=r"missing keys features\.0\.0\.weight; unexpected keys fc\.weight$"):
        check_state_dict_file(_saved(tmp_path, state), _manifest())


def test_a_manifest_without_tensors_skips_the_check(tmp_path):
    check_state_dict_file(_saved(tmp_path, {"x": torch.zeros(1)}), {"classes": []})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a model\n" * 64, "is not a readable torch state dict (BadZipFile"),
        (None, "holds a list, not a state dict"),
    ],
)
def test_files_that_are_no_state_dict_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    if content is None:
        torch.save([torch.zeros(1)], path)
    else:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message.replace("(", r"\(")):
        tensor_shapes(path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/model-serving-exploit-ran",))


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = "/tmp/model-serving-exploit-ran"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"x": _Exploit()}))
    with pytest.raises(ModelError, match=r"holds posix\.system, which a state dict does not"):
        tensor_shapes(path)
    assert not os.path.exists(marker)
