"""In-process checks of an artifact folder: torch reference vs the served ONNX graph on the corpus, and the
per-request cost of each path on the benchmark payload (one thread)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_core import CLASSES
from model_serving.agreement import Agreement, compare, disagreements, top_margins
from model_serving.artifacts import Artifacts
from model_serving.client import served_corpus_probabilities
from model_serving.corpus import benchmark_payload_paths, corpus_paths
from model_serving.inference import Classifier, onnx_classifier, torch_classifier
from model_serving.stage_split import format_stage_splits, stage_splits

log = logging.getLogger(__name__)


def corpus_probabilities(classifier: Classifier, paths: Sequence[Path]) -> np.ndarray:
    return np.stack([classifier.probabilities(path.read_bytes()) for path in paths])


def served_disagreements(artifacts: Artifacts, base_urls: Mapping[str, str], corpus: Sequence[Path]) -> list[str]:
    """Running services (name → base URL) on the corpus, against the in-process torch reference of ``artifacts``
    and against each other; the explanations of every comparison that fails (empty: all agree)."""
    names = [path.name for path in corpus]
    reference = corpus_probabilities(torch_classifier(artifacts), corpus)
    served = {name: served_corpus_probabilities(url, corpus) for name, url in base_urls.items()}
    return disagreements(names, served, reference)


@dataclass(frozen=True)
class CorpusSpread:
    """Is the model decisive and image-dependent on the corpus?"""

    distinct_classes: int
    median_margin: float

    @classmethod
    def of(cls, probabilities: np.ndarray) -> CorpusSpread:
        return cls(len(set(probabilities.argmax(axis=1).tolist())), float(np.median(top_margins(probabilities))))


def run_check(model_dir: Path, image_dir: Path, seconds: float) -> int:
    artifacts = Artifacts.open(model_dir)
    paths = corpus_paths(image_dir)
    names = [p.name for p in paths]
    log.info(f"running {len(paths)} corpus images through torch and ONNX Runtime")
    reference = corpus_probabilities(torch_classifier(artifacts), paths)
    optimized = corpus_probabilities(onnx_classifier(artifacts), paths)
    agreement: Agreement = compare(names, reference, optimized)
    spread = CorpusSpread.of(reference)
    counts = np.bincount(reference.argmax(axis=1), minlength=len(CLASSES))
    print(f"model_id {artifacts.manifest['model_id']}")
    print(f"torch vs optimized ONNX: {agreement.explain()}")
    print(
        f"predicted classes: {spread.distinct_classes} distinct; median top-1/top-2 margin {spread.median_margin:.3f}"
    )
    print("  " + ", ".join(f"{c}={n}" for c, n in zip(CLASSES, counts, strict=True) if n))

    jpeg, _ = benchmark_payload_paths(image_dir)
    log.info(f"in-process stages on {jpeg.name}, one thread, about {seconds * 1.5:.0f} s per service")
    splits = stage_splits(artifacts, jpeg.read_bytes(), seconds)
    print(format_stage_splits(splits, jpeg.name))
    return 0 if agreement.ok else 1
