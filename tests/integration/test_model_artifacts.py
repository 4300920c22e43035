"""The default model and its export: deterministic, decisive, and the same in torch and ONNX Runtime."""

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from logged import model_serving_messages

from model_core import CLASSES
from model_core.loading import model_id
from model_serving.agreement import compare
from model_serving.artifacts import SPLIT_FILES, ModelSource, export, optimize_onnx
from model_serving.checks import CorpusSpread, corpus_probabilities
from model_serving.inference import onnx_classifier, torch_classifier
from model_serving.model.default import build_default_model
from onnx_serving.predictor import OnnxPredictor
from serving_common.decoding import decode_rgb

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reference(default_artifacts, corpus):
    return corpus_probabilities(torch_classifier(default_artifacts), corpus)


def test_default_model_is_deterministic(default_artifacts):
    assert model_id(build_default_model().state_dict()) == default_artifacts.manifest["model_id"]


def test_manifest_describes_the_artifacts(default_artifacts):
    manifest = default_artifacts.manifest
    assert manifest["classes"] == list(CLASSES)
    assert set(manifest["files"]) == {"state_dict", "onnx", "onnx_optimized", "onnx_preprocess", "onnx_network"}
    assert manifest["input"]["dtype"] == "uint8"
    assert manifest["input"]["shape"] == [1, "height", "width", 3]
    assert manifest["output"]["kind"] == "probabilities"
    assert manifest["opset"] >= 18
    assert set(manifest["versions"]) >= {"torch", "onnx", "onnxruntime"}
    assert manifest["seed"] is not None
    assert model_id(torch_classifier(default_artifacts).predictor.model.state_dict()) == manifest["model_id"]


def test_default_model_is_decisive_and_image_dependent(reference):
    spread = CorpusSpread.of(reference)
    print(f"distinct classes {spread.distinct_classes}, median margin {spread.median_margin:.3f}")
    assert spread.distinct_classes >= 4
    assert spread.median_margin >= 0.05


def test_optimized_onnx_agrees_with_torch_reference(default_artifacts, corpus, reference):
    names = [p.name for p in corpus]
    optimized = corpus_probabilities(onnx_classifier(default_artifacts), corpus)
    result = compare(names, reference, optimized)
    print(f"torch vs optimized ONNX: {result.explain()}")
    assert result.ok, result.explain()


def test_optimized_and_unoptimized_exports_agree(default_artifacts, corpus):
    names = [p.name for p in corpus]
    plain = corpus_probabilities(onnx_classifier(default_artifacts, "onnx"), corpus)
    optimized = corpus_probabilities(onnx_classifier(default_artifacts, "onnx_optimized"), corpus)
    result = compare(names, plain, optimized, tolerance=1e-5)
    print(f"unoptimized vs optimized ONNX: {result.explain()}")
    assert result.ok, result.explain()


def test_optimized_files_hold_no_layout_transforms(default_artifacts):
    # ORT's NCHWc nodes are sized for the exporting CPU's vectors: saved in a file they fail on another CPU.
    for name in ("model.optimized.onnx", *SPLIT_FILES.values()):
        graph = onnx.load(str(default_artifacts.directory / name)).graph
        domains = {node.domain for node in graph.node}
        assert not any("nchwc" in domain for domain in domains), f"{name}: {sorted(domains)}"


def test_layout_made_at_load_is_bit_identical_to_layout_made_offline(default_artifacts, corpus, tmp_path):
    """What the services serve (the offline file, its layout made as it loads) gives exactly the probabilities
    of the whole optimization done offline and loaded as it is, so the offline level changes no figure."""
    names = [p.name for p in corpus]
    offline = tmp_path / "all_offline.onnx"
    optimize_onnx(default_artifacts.path("onnx"), offline, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    plain_load = ort.SessionOptions()
    plain_load.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(offline), plain_load, providers=["CPUExecutionProvider"])
    all_offline = np.stack(
        [session.run(["probabilities"], {"image": decode_rgb(p.read_bytes())[None]})[0][0] for p in corpus]
    )
    served = corpus_probabilities(onnx_classifier(default_artifacts), corpus)
    assert np.array_equal(served, all_offline), compare(names, all_offline, served, tolerance=0.0).explain()


def test_second_export_reuses_the_artifacts(default_artifacts, caplog):
    before = {p.name: p.stat().st_mtime_ns for p in default_artifacts.directory.iterdir()}
    with model_serving_messages(caplog) as messages:
        manifest = export(default_artifacts.directory, ModelSource())
    after = {p.name: p.stat().st_mtime_ns for p in default_artifacts.directory.iterdir()}
    assert before == after
    assert manifest == default_artifacts.manifest
    assert any("up to date" in m for m in messages)


@pytest.fixture(scope="module")
def state_dict_export(default_artifacts, tmp_path_factory):
    """The default model's state dict file exported as a user's would be: its folder and manifest (one export for
    the tests of this module that need one)."""
    out = tmp_path_factory.mktemp("from-state-dict") / "user"
    manifest = export(out, ModelSource.from_uris(str(default_artifacts.path("state_dict"))))
    return out, manifest


def test_export_from_a_state_dict_file(state_dict_export, default_artifacts):
    # A user's state dict (here: the default model's) derives the same model_id and the same ONNX outputs.
    out, manifest = state_dict_export
    assert manifest["model_id"] == default_artifacts.manifest["model_id"]
    assert manifest["recipe"]["source"]["kind"] == "state_dict"
    # Same weights, same bytes: exports are reproducible, so image tags are too.
    for role in ("state_dict", "onnx", "onnx_optimized"):
        assert manifest["files"][role]["sha256"] == default_artifacts.manifest["files"][role]["sha256"], role
    assert json.loads((out / "manifest.json").read_text()) == manifest
    image = np.zeros((1, 300, 400, 3), dtype=np.uint8)
    ours = OnnxPredictor(out / "model.optimized.onnx").session.run(None, {"image": image})[0]
    theirs = OnnxPredictor(default_artifacts.path("onnx_optimized")).session.run(None, {"image": image})[0]
    assert np.abs(ours - theirs).max() < 1e-6


def test_export_rebuilds_after_a_file_is_damaged(tmp_path, default_artifacts, state_dict_export, caplog):
    out = tmp_path / "damaged"
    # A copy of a finished export of this very source: up to date, but for the file damaged here.
    shutil.copytree(state_dict_export[0], out)
    source = ModelSource.from_uris(str(default_artifacts.path("state_dict")))
    with model_serving_messages(caplog) as intact:
        export(out, source)
    assert any("up to date" in m for m in intact), intact  # so the damage alone is what makes it rebuild
    (out / "model.onnx").write_bytes(b"garbage")
    with model_serving_messages(caplog) as messages:
        export(out, source)
    assert not any("up to date" in m for m in messages)
    assert (out / "model.onnx").stat().st_size > 1_000_000


def test_the_graphs_two_halves_chained_are_the_served_graph(default_artifacts, corpus):
    """The in-process bench times preprocessing and network as two sessions: together they give what is served."""
    directory, files = default_artifacts.directory, default_artifacts.manifest["files"]
    served = OnnxPredictor(directory / files["onnx_optimized"]["path"], threads=1)
    halves = OnnxPredictor.split(
        directory / files["onnx_preprocess"]["path"], directory / files["onnx_network"]["path"], threads=1
    )
    for path in corpus[:6]:
        pixels = decode_rgb(path.read_bytes())
        difference = np.abs(halves.probabilities(pixels) - served.probabilities(pixels)).max()
        assert difference <= 1e-6, (path.name, difference)
