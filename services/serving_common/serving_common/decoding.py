"""Image file bytes → RGB uint8 ``H×W×3`` (DESIGN §3 step 1), within a pixel limit."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from serving_common.errors import ApiError, unprocessable

SUPPORTED_FORMATS = ("JPEG", "PNG")


def decode_rgb(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """Decode with Pillow and ``convert("RGB")`` (alpha dropped, CMYK/palette/grayscale expanded, no EXIF turn).

    Raises :class:`ApiError` (422) for anything that is not a decodable JPEG or PNG within ``max_pixels``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as image:
                width, height = image.size
                if max_pixels is not None and width * height > max_pixels:
                    raise unprocessable(f"image is {width}x{height} pixels; the limit is {max_pixels} pixels")
                return np.array(image.convert("RGB"), dtype=np.uint8)
    except ApiError:
        raise
    except UnidentifiedImageError as error:
        raise unprocessable("image is not a decodable JPEG or PNG file") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise unprocessable(f"image is too large to decode safely: {error}") from error
    except (OSError, ValueError, SyntaxError) as error:
        # Pillow reports truncated or corrupt data as OSError/ValueError/SyntaxError.
        raise unprocessable(f"image data is corrupt or truncated: {error}") from error
