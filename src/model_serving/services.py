"""The suite's services, listed once: what each is called, where it listens, how it is built and benched, and how
reports show it. Everything else (images, containers, perf runs, ratios, plots) reads this list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# src/model_serving/services.py → the repository holding services/.
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
SERVICES_DIR = REPOSITORY_ROOT / "services"


def _package(name: str) -> Path:
    """A Python package of ``services/``: ``services/<name>/<name>``."""
    return SERVICES_DIR / name / name


@dataclass(frozen=True)
class Service:
    name: str  # the container's, the image repository's and the report's name for it
    label: str  # its short name in ratio names ("onnx_over_torch")
    port: int
    directory: Path  # holds its Dockerfile (and requirements.txt for a Python service)
    packages: tuple[Path, ...]  # Python packages copied whole to /app/<package name> in its image
    model_roles: tuple[str, ...]  # manifest["files"] roles it reads
    bench_command: tuple[str, ...]  # its request path in-process, without HTTP, inside its image
    colour: str  # in the report's plots
    kind: str = "python"  # "python": wheels + packages on a Python base; "rust": a binary on scratch


def _python_service(
    name: str, label: str, port: int, package: str, model_role: str, predictor: str, colour: str
) -> Service:
    """A FastAPI service: its package beside the two shared ones, benched through ``serving_common.bench``."""
    return Service(
        name=name,
        label=label,
        port=port,
        directory=SERVICES_DIR / package,
        packages=(_package(package), _package("serving_common"), _package("model_core")),
        model_roles=(model_role,),
        bench_command=("python", "-m", "serving_common.bench", f"{package}.predictor:{predictor}"),
        colour=colour,
    )


#: In the order reports show them; a later service is the one a ratio puts on top (:func:`ratio_pairs`).
REGISTRY: tuple[Service, ...] = (
    _python_service("torch-serving", "torch", 8081, "torch_serving", "state_dict", "TorchPredictor", "#d62728"),
    _python_service("onnx-serving", "onnx", 8080, "onnx_serving", "onnx_optimized", "OnnxPredictor", "#1f77b4"),
    Service(
        name="rust-onnx-serving",
        label="rust",
        port=8082,
        directory=REPOSITORY_ROOT / "rust_onnx_serving",
        packages=(),
        model_roles=("onnx_optimized",),
        bench_command=("/rust-onnx-serving", "--bench"),
        colour="#2ca02c",
        kind="rust",
    ),
)

SERVICES: dict[str, Service] = {service.name: service for service in REGISTRY}
SERVICE_NAMES: tuple[str, ...] = tuple(SERVICES)
COLOURS: dict[str, str] = {service.name: service.colour for service in REGISTRY}


def ratio_pairs(registry: tuple[Service, ...] = REGISTRY) -> dict[str, tuple[str, str]]:
    """``<label>_over_<label>`` → (numerator, denominator): each service over each one before it, nearest first."""
    pairs = {}
    for index, top in enumerate(registry):
        for bottom in reversed(registry[:index]):
            pairs[f"{top.label}_over_{bottom.label}"] = (top.name, bottom.name)
    return pairs


#: The ratios reports compute and thresholds name: onnx_over_torch, rust_over_onnx, rust_over_torch.
RATIO_PAIRS: dict[str, tuple[str, str]] = ratio_pairs()
