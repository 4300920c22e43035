import numpy as np
import pytest
import torch

from model_core.preprocessing import MEAN, STD, crop_offsets, preprocess, resized_size

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (727, 1200, (256, 422)),  # landscape: 256 * 1200 / 727 = 422.56
        (1200, 727, (422, 256)),  # portrait
        (500, 500, (256, 256)),  # square
        (32, 32, (256, 256)),  # smaller than 224: upscaled
        (100, 800, (256, 2048)),  # 8:1
        (800, 100, (2048, 256)),  # 1:8
        (3000, 4000, (256, 341)),  # 341.33
        (217, 333, (256, 392)),  # 392.85: floored, not rounded
    ],
)
def test_resized_size(height, width, expected):
    assert resized_size(height, width) == expected


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (256, 256, (16, 16)),
        (256, 422, (16, 99)),
        (256, 257, (16, 16)),  # 16.5 rounds to even: 16
        (256, 259, (16, 18)),  # 17.5 rounds to even: 18
        (261, 256, (18, 16)),  # 18.5 → 18
        (2048, 256, (912, 16)),
    ],
)
def test_crop_offsets_round_half_to_even(height, width, expected):
    assert crop_offsets(height, width) == expected


def test_resized_size_rejects_empty_images():
    with pytest.raises(ValueError, match="positive"):
        resized_size(0, 10)


def test_constant_image_normalizes_exactly():
    image = np.full((300, 400, 3), 128, dtype=np.uint8)
    out = preprocess(image)
    assert out.shape == (1, 3, 224, 224)
    assert out.dtype == torch.float32
    for channel in range(3):
        expected = (128 / 255 - MEAN[channel]) / STD[channel]
        assert torch.allclose(out[0, channel], torch.tensor(expected, dtype=torch.float32), atol=1e-6)


def test_crop_window_position_without_resize():
    # 256×259: the shorter side is already 256, so the resize is the identity and the crop is visible:
    # red holds the column index and green the row index; the window starts at row 16 and column 18.
    height, width = 256, 259
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = np.arange(width)[None, :] % 256
    image[:, :, 1] = np.arange(height)[:, None]
    out = preprocess(image)
    red = out[0, 0] * STD[0] + MEAN[0]
    green = out[0, 1] * STD[1] + MEAN[1]
    assert torch.allclose(red[0, :3] * 255, torch.tensor([18.0, 19.0, 20.0]), atol=1e-3)
    assert torch.allclose(green[:3, 0] * 255, torch.tensor([16.0, 17.0, 18.0]), atol=1e-3)


def test_downscale_averages_with_antialiasing():
    # A one-pixel checkerboard halved: plain bilinear would sample single pixels, antialiasing averages them.
    board = (np.indices((448, 448)).sum(axis=0) % 2 * 255).astype(np.uint8)
    image = np.repeat(board[:, :, None], 3, axis=2)
    out = preprocess(image)
    values = out[0, 0] * STD[0] + MEAN[0]
    assert torch.allclose(values * 255, torch.full_like(values, 127.5), atol=1.0)


def test_rejects_wrong_layout():
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        preprocess(np.zeros((3, 224, 224), dtype=np.uint8))
