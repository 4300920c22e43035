"""Model artifacts: state dict → ONNX with preprocessing → offline-optimized ONNX, described by a manifest.

Derive, don't trust: the ONNX files are exported from the state dict, so every service serves the same weights,
and the graph is checked against the torch reference before the manifest is written. A prebuilt ONNX model
(``ONNX_MODEL_URI``) is taken only if it fits the input contract and gives the state dict's probabilities. The manifest
is written last; a folder without one is an unfinished export.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort
import torch

from model_core import CLASSES
from model_core.errors import ModelError
from model_core.loading import load_state_dict_file, model_id
from model_core.manifest import MANIFEST_NAME, read_manifest, sha256_file, verify_files
from model_core.mobilenet import MobileNetV3Small
from model_core.preprocessing import preprocess
from model_serving import __version__
from model_serving.host import cpu_model
from model_serving.imagegen import synthetic_photo
from model_serving.model.default import (
    CALIBRATION_IMAGES,
    DEFAULT_SEED,
    HEAD_LOGIT_STD,
    build_default_model,
)
from model_serving.model.onnx_contract import HOW_TO_DERIVE, check_served_contract, with_served_names
from model_serving.model.onnx_graph import (
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    PIXELS_NAME,
    canonicalize_names,
    served_model,
)
from model_serving.sources import ResolvedSource, resolve_model_uri

# Bump when the export recipe changes, so old artifacts are rebuilt rather than reused.
# 3: state_dict_tensors in the manifest; 4: the two sub-graphs for the in-process bench; 5: the crop-only
# preprocessing graph; 6: its normalization as one multiply-add; 7: its rows pass in parts (ROWS_CHUNKS); 8: both
# passes in those parts, window groups of 8 (BLOCK); 9: optimized offline without the layout transforms
# (OFFLINE_LEVEL).
EXPORT_FORMAT = 9
FILES = {"state_dict": "state_dict.pt", "onnx": "model.onnx", "onnx_optimized": "model.optimized.onnx"}
#: The served graph's two halves, optimized apart, so the in-process bench can time preprocessing and network
#: (the services run the whole graph as one call). Copied into a container only for the bench, never baked in.
SPLIT_FILES = {"onnx_preprocess": "preprocess.optimized.onnx", "onnx_network": "network.optimized.onnx"}
EXPORT_TOLERANCE = 1e-4  # max |Δp| between the torch reference and the exported graph on a probe image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    """Where the weights come from: the seeded default or a state dict; optionally a prebuilt served ONNX model.

    Files named by URI (``gs://…``) are resolved to local files first (:meth:`from_uris`).
    """

    state_dict: ResolvedSource | None = None
    onnx: ResolvedSource | None = None
    seed: int = DEFAULT_SEED

    @classmethod
    def from_uris(
        cls,
        state_dict_uri: str | None = None,
        onnx_uri: str | None = None,
        seed: int = DEFAULT_SEED,
        cache_dir: Path | None = None,
    ) -> ModelSource:
        """Resolve (download when remote, cached by generation) the state dict and the prebuilt ONNX model."""

        def resolve(uri: str | None) -> ResolvedSource | None:
            return resolve_model_uri(uri, cache_dir=cache_dir) if uri else None

        return cls(state_dict=resolve(state_dict_uri), onnx=resolve(onnx_uri), seed=seed)

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any]
        if self.state_dict is None:
            described = {
                "kind": "default",
                "seed": self.seed,
                "calibration_images": CALIBRATION_IMAGES,
                "head_logit_std": HEAD_LOGIT_STD,
            }
        else:
            described = {"kind": "state_dict", **{k: v for k, v in self.state_dict.describe().items() if k != "kind"}}
            described["location"] = self.state_dict.kind
        if self.onnx is not None:
            described["onnx"] = self.onnx.describe()
        return described

    def load(self) -> MobileNetV3Small:
        if self.state_dict is None:
            return build_default_model(self.seed)
        return load_state_dict_file(self.state_dict.path, origin=self.state_dict.uri)


@dataclass(frozen=True)
class Artifacts:
    """A verified artifact folder: its manifest and file paths by role."""

    directory: Path
    manifest: dict

    @classmethod
    def open(cls, directory: Path) -> Artifacts:
        manifest = read_manifest(directory)
        verify_files(directory, manifest)
        return cls(directory, manifest)

    def path(self, role: str) -> Path:
        return self.directory / self.manifest["files"][role]["path"]


def _versions() -> dict[str, str]:
    return {
        "model_serving": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
    }


def _recipe(source: ModelSource) -> dict[str, Any]:
    """Everything that decides the artifacts' content; equal recipes mean reusable artifacts."""
    return {"export_format": EXPORT_FORMAT, "source": source.describe(), "versions": _versions(), "opset": OPSET}


def _reusable(directory: Path, recipe: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        manifest = read_manifest(directory)
        if manifest.get("recipe") != recipe:
            return None
        verify_files(directory, manifest)
    except (ModelError, KeyError, TypeError):
        return None
    return manifest


#: Offline, every optimization that holds on any CPU. ORT_ENABLE_ALL adds layout transforms (NCHWc blocks as wide
#: as this CPU's vectors: 16 channels with AVX-512, 8 with AVX2), and a model saved with them fails on a CPU of
#: another width (ReorderOutput: "Input channels must match the NCHWc block-aligned channel count"), e.g. when a
#: remote engine or another node serves what was exported here. The services apply those transforms as they load
#: (ORT_ENABLE_ALL): about 7 ms more start-up, the same graph and bit-identical probabilities, and a file 92 KB
#: smaller (2026-12-05, the default model).
OFFLINE_LEVEL = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED


def optimize_onnx(source: Path, target: Path, level: ort.GraphOptimizationLevel = OFFLINE_LEVEL) -> None:
    """``source`` optimized by ONNX Runtime at ``level``, saved to ``target`` with canonical names."""
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    onnx.save(canonicalize_names(onnx.load(str(target))), str(target))


def split_served_graph(served: Path, out: Path) -> dict[str, Path]:
    """The preprocessing sub-graph (``image`` → ``pixel_values``) and the network (→ ``probabilities``) of a
    derived graph, each optimized offline; none for a prebuilt graph that has no ``pixel_values`` joint."""
    graph = onnx.load(str(served))
    if PIXELS_NAME not in {name for node in graph.graph.node for name in node.output}:
        log.info(f"the served graph has no '{PIXELS_NAME}' joint: no preprocessing/network split for the bench")
        return {}
    halves = {"onnx_preprocess": ([INPUT_NAME], [PIXELS_NAME]), "onnx_network": ([PIXELS_NAME], [OUTPUT_NAME])}
    paths = {}
    for role, (inputs, outputs) in halves.items():
        plain = out / SPLIT_FILES[role].replace(".optimized", "")
        onnx.utils.extract_model(str(served), str(plain), inputs, outputs, check_model=True)
        paths[role] = out / SPLIT_FILES[role]
        optimize_onnx(plain, paths[role])
        plain.unlink()
    return paths


def _check_export(model: MobileNetV3Small, onnx_path: Path, prebuilt_from: str | None = None) -> float:
    """max |Δp| between torch and the ONNX graph on a probe image; refuse a graph that does not serve the model."""
    image = synthetic_photo(333, 250, seed=99)
    with torch.inference_mode():
        expected = torch.softmax(model(preprocess(image)), dim=1).numpy()
    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        actual = session.run([OUTPUT_NAME], {INPUT_NAME: image[None]})[0]
    except Exception as error:  # ORT's own exception types
        raise ModelError(
            f"{prebuilt_from or onnx_path}: ONNX Runtime cannot run it on a 333x250 image: {error}"
        ) from None
    difference = float(np.abs(np.asarray(actual).reshape(expected.shape) - expected).max())
    if difference > EXPORT_TOLERANCE and prebuilt_from is not None:
        raise ModelError(
            f"{prebuilt_from}: its probabilities differ from the state dict's (torch, DESIGN §3 preprocessing) by "
            f"{difference:.2e} (> {EXPORT_TOLERANCE}) on a probe image, so the services would not serve the same "
            f"model; set the state dict it was exported from (TORCH_MODEL_URI / --state-dict), or {HOW_TO_DERIVE}"
        )
    if difference > EXPORT_TOLERANCE:
        raise ModelError(f"exported graph differs from the torch reference by {difference:.2e} (> {EXPORT_TOLERANCE})")
    return difference


def _prebuilt_onnx(source: ResolvedSource) -> onnx.ModelProto:
    """The user's ONNX model, checked against the input contract, with the names the services use."""
    try:
        model = onnx.load(str(source.path))
    except Exception as error:  # protobuf's decode errors have no common base
        raise ModelError(f"{source.uri} is not a readable ONNX model ({error.__class__.__name__}: {error})") from None
    check_served_contract(model, source.uri)
    return with_served_names(model)


def export(out: Path, source: ModelSource) -> dict[str, Any]:
    """Make (or reuse) the artifacts in ``out``; return the manifest."""
    recipe = _recipe(source)
    existing = _reusable(out, recipe)
    if existing is not None:
        log.info(f"artifacts in {out} are up to date (model_id {existing['model_id'][:12]}); nothing to do")
        return existing

    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    log.info(
        "building the default model (seeded, calibrated)"
        if source.state_dict is None
        else f"loading the state dict {source.state_dict.uri}"
    )
    model = source.load()
    state = model.state_dict()
    paths = {role: out / name for role, name in FILES.items()}
    torch.save(state, paths["state_dict"])

    if source.onnx is None:
        log.info("exporting to ONNX with preprocessing inside")
        onnx.save(served_model(model), paths["onnx"])
        difference = _check_export(model, paths["onnx"])
    else:
        log.info(f"checking the prebuilt ONNX model {source.onnx.uri} against the input contract and the state dict")
        onnx.save(_prebuilt_onnx(source.onnx), paths["onnx"])
        difference = _check_export(model, paths["onnx"], prebuilt_from=source.onnx.uri)
    log.info("optimizing offline (ORT_ENABLE_EXTENDED: the layout transforms are made as the services load)")
    optimize_onnx(paths["onnx"], paths["onnx_optimized"])
    paths.update(split_served_graph(paths["onnx"], out))

    manifest = {
        "schema_version": 1,
        "model_id": model_id(state),
        "architecture": "mobilenet_v3_small",
        "classes": list(CLASSES),
        "files": {role: {"path": path.name, "sha256": sha256_file(path)} for role, path in paths.items()},
        "input": {
            "name": INPUT_NAME,
            "dtype": "uint8",
            "shape": [1, "height", "width", 3],
            "layout": "NHWC",
            "color": "RGB",
        },
        "output": {"name": OUTPUT_NAME, "kind": "probabilities", "dtype": "float32", "shape": [1, len(CLASSES)]},
        "opset": OPSET,
        # What the architecture expects, for torch-serving's check before it imports torch (names and shapes).
        "state_dict_tensors": {name: list(tensor.shape) for name, tensor in state.items()},
        "seed": source.seed if source.state_dict is None else None,
        "source": recipe["source"],
        "versions": recipe["versions"],
        "export_check_max_abs_diff": difference,
        "optimized_on": {"machine": platform.machine(), "processor": cpu_model()},
        "recipe": recipe,
    }
    partial = out / (MANIFEST_NAME + ".partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    partial.replace(out / MANIFEST_NAME)
    log.info(f"wrote {out / MANIFEST_NAME} (model_id {manifest['model_id'][:12]})")
    return manifest
