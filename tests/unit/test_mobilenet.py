import pytest
import torch

from model_core.mobilenet import MobileNetV3Small, make_divisible

pytestmark = pytest.mark.unit


def test_state_dict_has_torchvision_keys_and_shapes():
    state = MobileNetV3Small().state_dict()
    assert len(state) == 244
    expected = {
        "features.0.0.weight": (16, 3, 3, 3),
        "features.1.block.1.fc1.weight": (8, 16, 1, 1),
        "features.1.block.1.fc2.bias": (16,),
        "features.4.block.2.fc1.weight": (24, 96, 1, 1),
        "features.9.block.3.0.weight": (96, 288, 1, 1),
        "features.12.0.weight": (576, 96, 1, 1),
        "features.12.1.running_var": (576,),
        "features.12.1.num_batches_tracked": (),
        "classifier.0.weight": (1024, 576),
        "classifier.3.weight": (11, 1024),
        "classifier.3.bias": (11,),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key


def test_parameter_count_matches_torchvision_with_11_classes():
    assert sum(p.numel() for p in MobileNetV3Small().parameters()) == 1_529_131


def test_batchnorm_settings_match_torchvision():
    norm = MobileNetV3Small().features[0][1]
    assert isinstance(norm, torch.nn.BatchNorm2d)
    assert norm.eps == pytest.approx(0.001)
    assert norm.momentum == pytest.approx(0.01)


def test_strict_load_rejects_a_1000_class_head():
    state = MobileNetV3Small(num_classes=1000).state_dict()
    with pytest.raises(RuntimeError, match=r"classifier\.3\.weight"):
        MobileNetV3Small().load_state_dict(state, strict=True)


def test_forward_gives_11_logits():
    model = MobileNetV3Small().eval()
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 224, 224)).shape == (2, 11)


@pytest.mark.parametrize(("value", "expected"), [(16, 16), (72 // 4, 24), (96 // 4, 24), (576 // 4, 144), (20, 24)])
def test_make_divisible(value, expected):
    assert make_divisible(value) == expected
