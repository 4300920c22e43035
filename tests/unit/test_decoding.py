import io

import numpy as np
import pytest
from PIL import Image

from serving_common.decoding import decode_rgb
from serving_common.errors import ApiError

pytestmark = pytest.mark.unit


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _rgb(width=40, height=30) -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_png_round_trips_exactly():
    image = _rgb()
    assert (decode_rgb(_encode(image, "PNG")) == np.asarray(image)).all()


def test_rgba_drops_alpha_like_pillow_convert():
    rgba = _rgb().convert("RGBA")
    rgba.putalpha(7)
    assert (decode_rgb(_encode(rgba, "PNG")) == np.asarray(rgba.convert("RGB"))).all()


def test_grayscale_expands_to_three_equal_channels():
    pixels = decode_rgb(_encode(_rgb().convert("L"), "PNG"))
    assert pixels.shape == (30, 40, 3)
    assert (pixels[:, :, 0] == pixels[:, :, 2]).all()


def _status(data: bytes, **kwargs) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        decode_rgb(data, **kwargs)
    return caught.value.status, caught.value.detail


def test_not_an_image():
    assert _status(b"hello world") == (422, "image is not a decodable JPEG or PNG file")


def test_unsupported_format_is_refused():
    assert _status(_encode(_rgb(), "GIF"))[0] == 422
    assert _status(_encode(_rgb(), "BMP"))[0] == 422


def test_truncated_jpeg():
    data = _encode(_rgb(200, 200), "JPEG")
    status, detail = _status(data[: len(data) // 2])
    assert status == 422
    assert "truncated" in detail


def test_pixel_limit():
    status, detail = _status(_encode(_rgb(100, 100), "PNG"), max_pixels=9_999)
    assert status == 422
    assert "100x100" in detail
