"""The benchmark payload and the correctness corpus, generated deterministically on demand.

Files are written once into a cache folder (``images/generated`` by default) and reused; nothing here is
committed, since every byte can be made again from the specs below.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from model_serving.imagegen import synthetic_photo
from model_serving.paths import GENERATED_IMAGES_DIR

log = logging.getLogger(__name__)

BENCHMARK_SIZE = (1200, 727)
# Chosen so that the JSON body is about upstream's 304 KB (1200×727 JPEG, base64).
BENCHMARK_JPEG_QUALITY = 89
BENCHMARK_SEED = 20240611


@dataclass(frozen=True)
class CorpusImage:
    """One corpus entry: a synthetic scene, the PIL mode it is stored in, and how it is encoded."""

    name: str
    width: int
    height: int
    seed: int
    mode: str = "RGB"
    format: str = "JPEG"
    save_options: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[Image.Image], Image.Image] | None = None

    @property
    def filename(self) -> str:
        suffix = {"JPEG": "jpg", "PNG": "png"}[self.format]
        return f"{self.name}.{suffix}"

    def encode(self) -> bytes:
        image = Image.fromarray(synthetic_photo(self.width, self.height, self.seed))
        image = self.prepare(image) if self.prepare else image.convert(self.mode)
        buffer = io.BytesIO()
        image.save(buffer, format=self.format, **self.save_options)
        return buffer.getvalue()


def _with_alpha(image: Image.Image) -> Image.Image:
    """RGBA with a radial alpha ramp, so that dropping alpha (as ``convert("RGB")`` does) is visible."""
    width, height = image.size
    yy, xx = np.mgrid[0:height, 0:width]
    radius = np.hypot((xx - width / 2) / width, (yy - height / 2) / height)
    alpha = np.clip(255 - radius * 400, 0, 255).astype(np.uint8)
    rgba = image.convert("RGBA")
    rgba.putalpha(Image.fromarray(alpha, mode="L"))
    return rgba


def _palette(image: Image.Image) -> Image.Image:
    return image.quantize(colors=64, method=Image.Quantize.MEDIANCUT)


_Q90_420 = {"quality": 90, "subsampling": "4:2:0"}
_Q95_444 = {"quality": 95, "subsampling": "4:4:4"}

CORPUS: tuple[CorpusImage, ...] = (
    CorpusImage("landscape_640x427_420", 640, 427, 1, save_options=_Q90_420),
    CorpusImage("portrait_427x640_444", 427, 640, 2, save_options=_Q95_444),
    CorpusImage("square_512_progressive", 512, 512, 3, save_options={"quality": 85, "progressive": True}),
    CorpusImage(
        "landscape_800x533_progressive_444",
        800,
        533,
        4,
        save_options={"quality": 92, "progressive": True, "subsampling": "4:4:4"},
    ),
    CorpusImage("photo_451x300", 451, 300, 5, save_options=_Q90_420),
    CorpusImage("benchmark_like_1200x727", 1200, 727, 6, save_options=_Q90_420),
    CorpusImage("tiny_32x32", 32, 32, 7, format="PNG"),
    CorpusImage("small_100x80_upscaled", 100, 80, 8, save_options=_Q95_444),
    CorpusImage("small_150x120", 150, 120, 9, format="PNG"),
    CorpusImage("wide_800x100", 800, 100, 10, save_options=_Q90_420),
    CorpusImage("tall_100x800", 100, 800, 11, format="PNG"),
    CorpusImage("wide_2400x300", 2400, 300, 12, save_options={"quality": 88, "progressive": True}),
    CorpusImage("odd_333x217_420", 333, 217, 13, save_options=_Q90_420),
    # Resized widths 257 and 259 put the crop's left edge at 16.5 and 17.5: half-to-even rounding.
    CorpusImage("crop_half_even_down_257x256", 257, 256, 14, format="PNG"),
    CorpusImage("crop_half_even_up_259x256", 259, 256, 15, format="PNG"),
    CorpusImage("grayscale_640x480", 640, 480, 16, mode="L", save_options={"quality": 90}),
    CorpusImage("grayscale_300x400", 300, 400, 17, mode="L", format="PNG"),
    CorpusImage("palette_500x375", 500, 375, 18, format="PNG", prepare=_palette),
    CorpusImage("rgba_400x300", 400, 300, 19, format="PNG", prepare=_with_alpha),
    CorpusImage("cmyk_600x400", 600, 400, 20, mode="CMYK", save_options={"quality": 90}),
    CorpusImage("bilevel_320x240", 320, 240, 21, mode="1", format="PNG"),
    CorpusImage("rgb_1411x1411", 1411, 1411, 22, format="PNG"),
    CorpusImage("large_4000x3000", 4000, 3000, 23, save_options=_Q90_420),
)


def corpus_paths(directory: Path = GENERATED_IMAGES_DIR) -> list[Path]:
    """Write every corpus image that is not there yet; return all paths in corpus order."""
    target = directory / "corpus"
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry in CORPUS:
        path = target / entry.filename
        if not path.exists():
            log.info(f"generating {entry.filename}")
            _write_atomically(path, entry.encode())
        paths.append(path)
    return paths


def photo_jpeg(width: int, height: int) -> bytes:
    """A photo-like baseline JPEG of the benchmark's kind (seed and quality) at any size."""
    buffer = io.BytesIO()
    Image.fromarray(synthetic_photo(width, height, BENCHMARK_SEED)).save(
        buffer, format="JPEG", quality=BENCHMARK_JPEG_QUALITY
    )
    return buffer.getvalue()


def benchmark_jpeg() -> bytes:
    """The benchmark image: a photo-like 1200×727 baseline JPEG."""
    return photo_jpeg(*BENCHMARK_SIZE)


def request_body(image: bytes) -> bytes:
    """The ``POST /predict/`` body for an image file (DESIGN §5)."""
    return json.dumps({"image": base64.b64encode(image).decode("ascii")}).encode("ascii")


def _payload_files(jpeg_path: Path, body_path: Path, make: Callable[[], bytes]) -> tuple[Path, Path]:
    """Write (once) the JPEG ``make`` encodes and its JSON request body; return both paths."""
    jpeg_path.parent.mkdir(parents=True, exist_ok=True)
    if not jpeg_path.exists() or not body_path.exists():
        jpeg = make()
        _write_atomically(jpeg_path, jpeg)
        _write_atomically(body_path, request_body(jpeg))
    return jpeg_path, body_path


def benchmark_payload_paths(directory: Path = GENERATED_IMAGES_DIR) -> tuple[Path, Path]:
    """The benchmark JPEG and its request body, written once."""
    return _payload_files(directory / "benchmark_1200x727.jpg", directory / "benchmark_payload.json", benchmark_jpeg)


def sized_payload_paths(width: int, height: int, directory: Path = GENERATED_IMAGES_DIR) -> tuple[Path, Path]:
    """A photo-like JPEG of ``width``×``height`` and its request body, written once (the payload-size runs)."""
    name = f"photo_{width}x{height}"
    return _payload_files(directory / f"{name}.jpg", directory / f"{name}.json", lambda: photo_jpeg(width, height))


def _write_atomically(path: Path, data: bytes) -> None:
    # A run interrupted half-way must not leave a truncated image that later runs would trust.
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
