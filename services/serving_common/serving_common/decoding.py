"""Image file bytes → RGB uint8 ``H×W×3`` (DESIGN §3 step 1), within a pixel limit."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from serving_common.errors import ApiError, unprocessable

SUPPORTED_FORMATS = ("JPEG", "PNG")

#: Longer side / shorter side at most this. The model resizes the shorter side to 256 and the longer one in
#: proportion (DESIGN §3), so a 1×2000 strip of a few hundred bytes would become a 256×512,000 float tensor
#: (1.5 GB; it killed every service in a 1 GB container). 100:1 caps that at 256×25,600 (79 MB).
MAX_ASPECT_RATIO = 100


def decode_rgb(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """Decode with Pillow and ``convert("RGB")`` (alpha dropped, CMYK/palette/grayscale expanded, no EXIF turn), as
    a read-only array.

    Raises :class:`ApiError` (422) for anything that is not a decodable JPEG or PNG within ``max_pixels`` and
    :data:`MAX_ASPECT_RATIO`; the size limits are checked from the header, before any pixel is decoded.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as image:
                width, height = image.size
                if max_pixels is not None and width * height > max_pixels:
                    raise unprocessable(f"image is {width}x{height} pixels; the limit is {max_pixels} pixels")
                check_aspect_ratio(width, height)
                # An RGB image is not converted (convert("RGB") would copy it first): np.asarray makes the one copy
                # there has to be (Pillow keeps RGB as 4 bytes a pixel) and shares it; the array is read-only.
                return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)
    except ApiError:
        raise
    except UnidentifiedImageError as error:
        raise unprocessable("image is not a decodable JPEG or PNG file") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise unprocessable(f"image is too large to decode safely: {error}") from error
    except Exception as error:
        # Pillow reports truncated or corrupt data mostly as OSError/ValueError/SyntaxError, but malformed files
        # reach other exceptions too (EOFError, struct.error, IndexError, an AssertionError for a palette PNG with a
        # transparent index but no palette, ...); all of them are the input's fault.
        raise unprocessable(f"image data is corrupt or truncated: {error or type(error).__name__}") from error


def check_aspect_ratio(width: int, height: int) -> None:
    """422 for an image more than :data:`MAX_ASPECT_RATIO` times longer than it is wide, or the other way."""
    longer, shorter = max(width, height), min(width, height)
    if shorter > 0 and longer > MAX_ASPECT_RATIO * shorter:
        raise unprocessable(
            f"image is {width}x{height} pixels, an aspect ratio over {MAX_ASPECT_RATIO}:1; the model would resize "
            f"it to 256x{256 * longer // shorter} pixels"
        )
