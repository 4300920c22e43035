"""Shared pytest wiring: thin fixtures over the library."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_serving.artifacts import ModelSource, export
from model_serving.checks import Artifacts
from model_serving.corpus import benchmark_payload_paths, corpus_paths
from model_serving.paths import DEFAULT_MODEL_DIR


def _progress(message: str) -> None:
    print(f"[model-serving] {message}")


@pytest.fixture(scope="session")
def default_artifacts() -> Artifacts:
    """The default model's artifacts, exported once (and reused across runs while the recipe is unchanged)."""
    export(DEFAULT_MODEL_DIR, ModelSource(), progress=_progress)
    return Artifacts.open(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="session")
def corpus() -> list[Path]:
    return corpus_paths(progress=_progress)


@pytest.fixture(scope="session")
def benchmark_jpeg() -> Path:
    return benchmark_payload_paths()[0]
