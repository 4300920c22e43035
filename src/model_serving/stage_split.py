"""Where each service's request path spends its time in-process (``model-serving check``): parse, decode,
preprocess and network, one thread, one run, each service's own code (the Rust service's ``--bench``).

The two ratios the services are held to (issue 12) come from the same loops: the ONNX graph's preprocessing half
÷ its network half (the two halves run one after the other on each iteration), and torch-serving's preprocessing
÷ its eager network.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime

from model_serving.artifacts import SPLIT_FILES, Artifacts
from model_serving.docker.rust_context import RustBuildError, release_binary
from model_serving.inference import torch_classifier
from model_serving.paths import ROOT
from model_serving.perf.measure import bench_figures
from serving_common import allocator, bench

log = logging.getLogger(__name__)

#: Targets on preprocessing ÷ network (issue 12): the graph's preprocessing costs no more than its network, and
#: torch-serving's no more than half the eager network.
TARGETS = {"onnx graph": 1.0, "torch": 0.5}


@dataclass(frozen=True)
class StageSplit:
    """Mean milliseconds per request of one service's stages in-process."""

    service: str
    parse: float
    decode: float
    preprocess: float
    network: float

    @property
    def total(self) -> float:
        return self.parse + self.decode + self.preprocess + self.network

    @property
    def preprocess_over_network(self) -> float:
        return self.preprocess / self.network

    @classmethod
    def of(cls, service: str, stages_ms: Mapping[str, Mapping[str, float]]) -> StageSplit:
        """From a bench's ``stages_ms`` (``model`` is the network: the eager model, or the graph's second half)."""
        mean = {stage: figures["mean"] for stage, figures in stages_ms.items()}
        return cls(service, mean["parse"], mean["decode"], mean["preprocess"], mean["model"])


def _python_split(service: str, predictor: Any, split: Any, image: bytes, seconds: float) -> StageSplit:
    return StageSplit.of(service, bench.measure(predictor, image, seconds, split)["stages_ms"])


def _ort_library() -> Path:
    """The ONNX Runtime library of the installed wheel: the one rust-onnx-serving's image carries."""
    found = sorted((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so.*"))
    if not found:
        raise RustBuildError("the onnxruntime wheel has no libonnxruntime.so.*")
    return found[-1]


def _rust_split(model_dir: Path, manifest: Mapping[str, Any], image: bytes, seconds: float) -> StageSplit:
    binary = release_binary(ROOT / "rust_onnx_serving")
    halves = [str(model_dir / manifest["files"][role]["path"]) for role in SPLIT_FILES]
    environment = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "ORT_DYLIB_PATH": str(_ort_library()),
        "THREADS": "1",
        "WORKERS": "1",
        **allocator.ENVIRONMENT,
    }
    with tempfile.NamedTemporaryFile(suffix=".jpg") as payload:
        payload.write(image)
        payload.flush()
        done = subprocess.run(
            [str(binary), "--bench", payload.name, str(seconds), *halves],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise RustBuildError(f"rust-onnx-serving --bench failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return StageSplit.of("rust-onnx-serving", bench_figures(done.stdout)["stages_ms"])


def stage_splits(artifacts: Artifacts, image: bytes, seconds: float) -> list[StageSplit]:
    """The three services' splits, one after the other (each ratio is within one service's loop)."""
    from onnx_serving.predictor import OnnxPredictor

    halves = [artifacts.path(role) for role in SPLIT_FILES]
    if not allocator.apply_in_process():  # as the images run
        log.warning("glibc's mallopt is not available: the Python stages run with this allocator's defaults")
    log.info("torch-serving: in-process stages")
    splits = [_python_split("torch-serving", torch_classifier(artifacts, threads=1).predictor, None, image, seconds)]
    log.info("onnx-serving: in-process stages")
    onnx = OnnxPredictor(artifacts.path("onnx_optimized"), threads=1)
    splits.append(_python_split("onnx-serving", onnx, OnnxPredictor.split(*halves, threads=1), image, seconds))
    log.info("rust-onnx-serving: in-process stages (its --bench)")
    try:
        splits.append(_rust_split(artifacts.directory, artifacts.manifest, image, seconds))
    except RustBuildError as error:
        log.warning(f"rust-onnx-serving: not measured: {error}")
    return splits


def format_stage_splits(splits: list[StageSplit], payload: str) -> str:
    """The table and the two ratios against their targets."""
    lines = [
        f"in-process stages on {payload}, one thread, mean ms per request:",
        f"  {'service':18s} {'parse':>7s} {'decode':>7s} {'preprocess':>10s} {'network':>8s} {'total':>7s}",
    ]
    for s in splits:
        lines.append(
            f"  {s.service:18s} {s.parse:7.2f} {s.decode:7.2f} {s.preprocess:10.2f} {s.network:8.2f} {s.total:7.2f}"
        )
    by_service = {s.service: s for s in splits}
    graph = [by_service[name] for name in ("onnx-serving", "rust-onnx-serving") if name in by_service]
    if graph:
        measured = ", ".join(f"{s.preprocess_over_network:.2f} ({s.service})" for s in graph)
        held = all(s.preprocess_over_network <= TARGETS["onnx graph"] for s in graph)
        lines.append(
            f"ONNX graph preprocessing ÷ network: {measured}; target ≤ {TARGETS['onnx graph']:.2f}: "
            f"{'holds' if held else 'DOES NOT HOLD'}"
        )
    if "torch-serving" in by_service:
        ratio = by_service["torch-serving"].preprocess_over_network
        lines.append(
            f"torch-serving preprocessing ÷ eager network: {ratio:.2f}; target ≤ {TARGETS['torch']:.2f}: "
            f"{'holds' if ratio <= TARGETS['torch'] else 'DOES NOT HOLD'}"
        )
    return "\n".join(lines)
