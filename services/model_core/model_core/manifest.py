"""Reading and verifying a model artifact folder (no torch or onnx needed)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from model_core.errors import ModelError

MANIFEST_NAME = "manifest.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise ModelError(f"no {MANIFEST_NAME} in {directory}: run `model-serving export --out {directory}`")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ModelError(f"{path} is not a model manifest (no 'files' mapping)")
    return manifest


def verify_files(directory: Path, manifest: Mapping[str, Any], roles: Iterable[str] | None = None) -> None:
    """The files the manifest names (all, or just ``roles``) exist and have the recorded sha256."""
    files = manifest["files"]
    for role in files if roles is None else roles:
        if role not in files:
            raise ModelError(f"the manifest in {directory} has no '{role}' file")
        path = directory / files[role]["path"]
        if not path.is_file():
            raise ModelError(f"{role} file missing: {path}")
        if sha256_file(path) != files[role]["sha256"]:
            raise ModelError(f"{role} file {path} does not match the sha256 in the manifest (corrupt or replaced)")


def model_file(directory: Path, manifest: Mapping[str, Any], role: str) -> Path:
    """The verified path of one file of the artifact folder."""
    verify_files(directory, manifest, [role])
    return directory / manifest["files"][role]["path"]
