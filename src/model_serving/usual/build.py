"""Images of the usual implementations (``usual/`` in the repository), tagged by content like the services' own.

The two Python ones are a layer over the suite's image of the same strategy (same Python, same libraries, same
model files; only the application differs); the Rust one is a binary on scratch like rust-onnx-serving, with the
same ONNX Runtime library. The ONNX ones serve :func:`model_serving.usual.graph.usual_graph`, made from the export's
network sub-graph.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from model_core.manifest import model_file, read_manifest, verify_files
from model_serving.docker.build import (
    ORT_WHEEL_SOURCE,
    BuiltImage,
    build_service_image,
    image_from_context,
    pack_rust_binary,
    staged_context,
)
from model_serving.docker.engine import client
from model_serving.docker.wheels import ensure_wheels
from model_serving.services import REPOSITORY_ROOT, SERVICES
from model_serving.usual.graph import USUAL_GRAPH_NAME, usual_graph

USUAL_DIR = REPOSITORY_ROOT / "usual"


class UsualUnavailable(Exception):
    """The usual implementation cannot be made for these artifacts (the message says why)."""


@dataclass(frozen=True)
class UsualSpec:
    name: str
    directory: Path  # Dockerfile and sources
    description: str
    kind: str  # "python": a layer over the strategy's image; "rust": a binary on scratch
    usual_graph: bool  # serves usual.onnx
    binary: str = ""


USUAL: dict[str, UsualSpec] = {
    "torch-serving": UsualSpec(
        "torch-usual",
        USUAL_DIR / "torch_usual",
        "torchvision-style PIL transforms (resize, crop, to tensor, normalize), eager model, async def, 1 worker",
        "python",
        usual_graph=False,
    ),
    "onnx-serving": UsualSpec(
        "onnx-usual",
        USUAL_DIR / "onnx_usual",
        "Pillow decode, float32 CHW in numpy, graph with a plain 256×256 resize, default session, async def",
        "python",
        usual_graph=True,
    ),
    "rust-onnx-serving": UsualSpec(
        "rust-usual",
        USUAL_DIR / "rust_usual",
        "image crate decode, ndarray f32 CHW, graph with a plain 256×256 resize, one shared session, 3 threads",
        "rust",
        usual_graph=True,
        binary="rust-usual",
    ),
}


def write_usual_graph(model_dir: Path, manifest: dict[str, Any], target: Path) -> None:
    """usual.onnx from the export's network sub-graph (a prebuilt served graph has none: no usual graph)."""
    if "onnx_network" not in manifest["files"]:
        raise UsualUnavailable(
            "the artifacts have no network sub-graph (a prebuilt ONNX model was given): no usual ONNX graph to serve"
        )
    verify_files(model_dir, manifest, ("onnx_network",))
    network = onnx.load(str(model_file(model_dir, manifest, "onnx_network")))
    onnx.save(usual_graph(network), str(target))


def build_usual_image(strategy: str, model_dir: Path, service_image: BuiltImage | None = None) -> BuiltImage:
    """The image of the usual implementation of ``strategy`` (a service name), built unless its hash is tagged.

    ``service_image``: the suite's image of the strategy, when already built (the Python ones build on it).
    """
    spec = USUAL.get(strategy)
    if spec is None:
        raise ValueError(f"no usual implementation of {strategy!r}; known: {', '.join(USUAL)}")
    engine, manifest = client(), read_manifest(model_dir)
    with staged_context(spec.name) as context:
        shutil.copy2(spec.directory / "Dockerfile", context / "Dockerfile")
        model = context / "model"
        model.mkdir()
        if spec.usual_graph:
            write_usual_graph(model_dir, manifest, model / USUAL_GRAPH_NAME)
        if spec.kind == "python":
            base = service_image or build_service_image(strategy, model_dir, tag_latest=False)
            base_id, buildargs = base.image_id, {"BASE_IMAGE": base.tag}
            for source in sorted(spec.directory.glob("*.py")):
                shutil.copy2(source, context / source.name)
        else:
            base_id, buildargs = "scratch", {}
            shutil.copy2(model_dir / "manifest.json", model / "manifest.json")
            wheels = ensure_wheels(SERVICES[ORT_WHEEL_SOURCE].directory / "requirements.txt")
            pack_rust_binary(spec.directory, spec.binary, wheels, context)
        model_id = str(manifest["model_id"])
        return image_from_context(engine, context, spec.name, base_id, buildargs, model_id)
