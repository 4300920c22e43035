"""Deterministic, photo-like synthetic images.

There is no data set to download here, so the suite paints its own: a sky gradient, a horizon, blurred
shapes, fractal noise and sensor grain. That gives JPEG a realistic amount of detail to encode (the benchmark
payload lands near upstream's 300 KB) and gives the model image-dependent inputs.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _fractal_noise(rng: np.random.Generator, height: int, width: int, octaves: int = 5) -> np.ndarray:
    """Sum of upsampled random grids, coarse to fine, in roughly [-1, 1]."""
    total = np.zeros((height, width), dtype=np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        cells = 2 ** (octave + 2)
        grid = rng.standard_normal((cells, cells)).astype(np.float32)
        layer = Image.fromarray(grid, mode="F").resize((width, height), Image.Resampling.BICUBIC)
        total += amplitude * np.asarray(layer, dtype=np.float32)
        amplitude *= 0.55
    return total / 2.0


def synthetic_photo(width: int, height: int, seed: int) -> np.ndarray:
    """An RGB uint8 ``height×width×3`` scene, the same for the same arguments."""
    rng = np.random.default_rng(seed)
    sky_top, sky_bottom, ground = (rng.uniform(0, 255, 3).astype(np.float32) for _ in range(3))
    horizon = rng.uniform(0.3, 0.75)

    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = sky_top + (sky_bottom - sky_top) * np.clip(rows / horizon, 0, 1)
    canvas = np.where(rows < horizon, sky, ground).astype(np.float32)
    canvas = np.broadcast_to(canvas, (height, width, 3)).copy()

    # Shapes drawn at a manageable size, then scaled: cheap even for 4000×3000.
    scale = max(1, max(width, height) // 800)
    small = Image.fromarray(np.clip(canvas[::scale, ::scale], 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(small)
    sw, sh = small.size
    for _ in range(int(rng.integers(4, 12))):
        x0, y0 = rng.uniform(0, sw), rng.uniform(0, sh)
        rx, ry = rng.uniform(0.03, 0.3) * sw, rng.uniform(0.03, 0.3) * sh
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0 - rx, y0 - ry, x0 + rx, y0 + ry), fill=colour)
        else:
            draw.polygon([(x0 + rng.uniform(-rx, rx), y0 + rng.uniform(-ry, ry)) for _ in range(5)], fill=colour)
    small = small.filter(ImageFilter.GaussianBlur(radius=max(1.0, sw / 300)))
    shapes = np.asarray(small.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)

    texture = _fractal_noise(rng, height, width)[:, :, None] * rng.uniform(20, 60, 3).astype(np.float32)
    grain = rng.normal(0.0, rng.uniform(4, 10), (height, width, 1)).astype(np.float32)
    return np.clip(shapes + texture + grain, 0, 255).astype(np.uint8)
