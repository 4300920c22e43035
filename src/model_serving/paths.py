"""Where generated files go: under the project root, which is ``$MODEL_SERVING_ROOT`` or the nearest folder
above the working directory that holds a ``pyproject.toml`` (the working directory when there is none)."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    configured = os.environ.get("MODEL_SERVING_ROOT")
    if configured:
        return Path(configured).resolve()
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return cwd


ROOT = project_root()
GENERATED_IMAGES_DIR = ROOT / "images" / "generated"
ARTIFACTS_DIR = ROOT / "artifacts"
DEFAULT_MODEL_DIR = ARTIFACTS_DIR / "default"
# A user's model (TORCH_MODEL_URI / ONNX_MODEL_URI): one folder, re-exported when the source changes.
USER_MODEL_DIR = ARTIFACTS_DIR / "user"
