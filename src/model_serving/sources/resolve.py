"""A model URI as a local file: local paths as they are, ``gs://`` objects through the download cache."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from model_core.manifest import sha256_file
from model_serving.docker.wheels import cache_dir as default_cache_dir
from model_serving.sources.errors import ModelSourceError
from model_serving.sources.gcs import fetch_gcs_object
from model_serving.sources.uri import GcsUri, parse_model_uri


@dataclass(frozen=True)
class ResolvedSource:
    """Where a model URI's file is on this machine, and what it was."""

    kind: Literal["local", "gcs"]
    uri: str  # canonical: the absolute path, or gs://bucket/object
    path: Path
    generation: int | None = None  # the object's generation (gcs only)

    @cached_property
    def sha256(self) -> str:
        return sha256_file(self.path)

    def describe(self) -> dict[str, Any]:
        """For manifests: what the weights were, independent of where this machine cached them."""
        if self.kind == "local":
            return {"kind": "local", "uri": self.uri, "path": str(self.path), "sha256": self.sha256}
        return {"kind": "gcs", "uri": self.uri, "generation": self.generation, "sha256": self.sha256}


def resolve_model_uri(uri: str, *, cache_dir: Path | None = None) -> ResolvedSource:
    """The local file behind ``uri`` (a path, ``file:///...`` or ``gs://bucket/object``), downloading ``gs://``
    objects into ``cache_dir`` (default: the project's cache, ``$MODEL_SERVING_CACHE_DIR`` or
    ``~/.cache/model-serving``, under ``gcs/``). :class:`ModelSourceError` when it cannot be had."""
    parsed = parse_model_uri(uri)
    if isinstance(parsed, GcsUri):
        fetched = fetch_gcs_object(parsed.bucket, parsed.name, default_cache_dir() if cache_dir is None else cache_dir)
        return ResolvedSource(kind="gcs", uri=fetched.uri, path=fetched.path, generation=fetched.generation)
    path = parsed.path.absolute()
    if not path.exists():
        raise ModelSourceError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelSourceError(f"{path} is not a file: give the model file itself")
    return ResolvedSource(kind="local", uri=str(path), path=path)
