import base64
import io
import json

import pytest
from PIL import Image, JpegImagePlugin

from model_serving.corpus import CORPUS, benchmark_jpeg, request_body
from model_serving.imagegen import synthetic_photo
from serving_common.decoding import decode_rgb

pytestmark = pytest.mark.unit


def test_synthetic_photo_is_deterministic_and_seed_dependent():
    a = synthetic_photo(120, 80, seed=5)
    assert a.shape == (80, 120, 3)
    assert (a == synthetic_photo(120, 80, seed=5)).all()
    assert (a != synthetic_photo(120, 80, seed=6)).any()


def test_corpus_covers_the_required_variety():
    assert len(CORPUS) >= 20
    assert len({entry.name for entry in CORPUS}) == len(CORPUS)
    sizes = {(e.width, e.height) for e in CORPUS}
    assert (32, 32) in sizes
    assert (4000, 3000) in sizes
    ratios = [e.width / e.height for e in CORPUS]
    assert max(ratios) >= 8
    assert min(ratios) <= 1 / 8
    formats = {e.format for e in CORPUS}
    assert formats == {"JPEG", "PNG"}


def _decoded_kinds() -> set[str]:
    """Encode the small corpus entries and report what is really in the files."""
    kinds = set()
    for entry in CORPUS:
        if entry.width * entry.height > 1_000_000:
            continue
        with Image.open(io.BytesIO(entry.encode())) as image:
            kinds.add(f"{image.format}:{image.mode}")
            if image.format == "JPEG":
                kinds.add("progressive" if image.info.get("progressive") else "baseline")
                if image.mode in ("RGB", "YCbCr"):
                    kinds.add({0: "4:4:4", 2: "4:2:0"}.get(JpegImagePlugin.get_sampling(image), "other"))
    return kinds


def test_encoded_files_have_the_required_modes_and_encodings():
    kinds = _decoded_kinds()
    required = {
        "JPEG:RGB",
        "JPEG:L",
        "JPEG:CMYK",
        "PNG:RGB",
        "PNG:L",
        "PNG:P",
        "PNG:RGBA",
        "progressive",
        "baseline",
        "4:2:0",
        "4:4:4",
    }
    assert required <= kinds, required - kinds


def test_encoding_is_deterministic():
    entry = next(e for e in CORPUS if e.name.startswith("tiny"))
    assert entry.encode() == entry.encode()


def test_every_mode_decodes_to_rgb():
    for entry in CORPUS:
        if entry.width * entry.height > 300_000:
            continue
        pixels = decode_rgb(entry.encode())
        assert pixels.shape == (entry.height, entry.width, 3), entry.name
        assert pixels.dtype.name == "uint8"


def test_benchmark_payload_is_about_upstream_size():
    jpeg = benchmark_jpeg()
    body = request_body(jpeg)
    assert 280_000 <= len(body) <= 330_000  # upstream: 304 KB
    decoded = base64.b64decode(json.loads(body)["image"])
    assert decoded == jpeg
    with Image.open(io.BytesIO(decoded)) as image:
        assert (image.format, image.size, image.mode) == ("JPEG", (1200, 727), "RGB")
