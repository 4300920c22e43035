"""Asking a running service for predictions, as a user of the API (DESIGN §5) would."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np

from model_core import CLASSES

_JSON = {"content-type": "application/json"}


class PredictionError(AssertionError):
    """The service answered something other than a well-formed 200."""


def predict_probabilities(base_url: str, image: bytes, client: httpx.Client, timeout: float = 60) -> np.ndarray:
    """POST one image with ``?probabilities=true``; the 11 probabilities, checked against the prediction."""
    body = json.dumps({"image": base64.b64encode(image).decode()})
    response = client.post(f"{base_url}/predict/?probabilities=true", content=body, headers=_JSON, timeout=timeout)
    if response.status_code != 200:
        raise PredictionError(f"{base_url} answered {response.status_code}: {response.text[:300]}")
    payload = response.json()
    probabilities = np.array(payload["probabilities"], dtype=np.float64)
    if payload["prediction"] != CLASSES[int(np.argmax(probabilities))]:
        raise PredictionError(
            f"{base_url}: prediction {payload['prediction']!r} is not the argmax of its probabilities"
        )
    return probabilities


def served_corpus_probabilities(base_url: str, paths: Sequence[Path]) -> np.ndarray:
    """Probabilities for every image of ``paths`` (rows in order) from the service at ``base_url``."""
    with httpx.Client() as client:
        return np.stack([predict_probabilities(base_url, path.read_bytes(), client) for path in paths])
