"""Image file bytes → RGB uint8 ``H×W×3``, the way every service must decode (DESIGN §3 step 1)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def decode_rgb(data: bytes) -> np.ndarray:
    """Decode with Pillow and convert to RGB (alpha dropped, CMYK/palette/grayscale expanded; no EXIF turn)."""
    with Image.open(io.BytesIO(data)) as image:
        return np.array(image.convert("RGB"), dtype=np.uint8)
