"""What the serving_common unit tests build a service from: test settings and a small valid request body."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from serving_common.app import Predictor, Service
from serving_common.config import Settings


def settings(**overrides: Any) -> Settings:
    """One worker, one thread, 1 CPU, a 1 MiB body, a 1 Mpx image, a 5 s timeout, unless overridden."""
    values: dict[str, Any] = {
        "model_dir": Path("/m"),
        "port": 8080,
        "workers": 1,
        "threads": 1,
        "cpu_limit": 1.0,
        "max_body_bytes": 1 << 20,
        "max_pixels": 1_000_000,
        "request_timeout_s": 5.0,
    }
    return Settings(**{**values, **overrides})


def service(predictor: Predictor, **overrides: Any) -> Service:
    """A service named ``test`` with the classes ``a`` and ``b``."""
    return Service("test", settings(**overrides), {"classes": ["a", "b"]}, predictor)


def png_body() -> bytes:
    """The JSON body of a 4×3 PNG."""
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (1, 2, 3)).save(out, format="PNG")
    return json.dumps({"image": base64.b64encode(out.getvalue()).decode()}).encode()
