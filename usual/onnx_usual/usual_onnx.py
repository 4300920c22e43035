"""The usual ONNX Runtime + FastAPI service, for comparison only (not one of the suite's services).

Written the way this strategy is usually written: a pydantic body, Pillow decode, the image as float32 CHW in [0, 1]
made in numpy, an ONNX graph with a plain 256×256 resize inside (usual.onnx, model_serving.usual.graph), one
``InferenceSession`` with default options but ``THREADS`` intra-op threads (the harness passes the CPU limit), an
``async def`` endpoint, one uvicorn worker.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, HTTPException
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel

MODEL_DIR = Path(os.environ.get("MODEL_DIR", "/opt/model"))
CLASSES: list[str] = json.loads((MODEL_DIR / "manifest.json").read_text())["classes"]

options = ort.SessionOptions()
if "THREADS" in os.environ:
    options.intra_op_num_threads = int(os.environ["THREADS"])
session = ort.InferenceSession(str(MODEL_DIR / "usual.onnx"), options, providers=["CPUExecutionProvider"])
app = FastAPI()


class Item(BaseModel):
    image: str


@app.get("/")
async def health() -> dict[str, str]:
    return {"status": "healthy", "message": "usual ONNX Runtime + FastAPI"}


@app.post("/predict/")
async def predict(item: Item, probabilities: bool = False) -> dict[str, object]:
    try:
        image = Image.open(io.BytesIO(base64.b64decode(item.image))).convert("RGB")
    except (binascii.Error, UnidentifiedImageError, OSError) as error:
        raise HTTPException(status_code=400, detail=f"bad image: {error}") from error
    pixels = (np.asarray(image, dtype=np.float32) / 255.0).transpose(2, 0, 1)[np.newaxis]
    output = session.run(["probabilities"], {"image": np.ascontiguousarray(pixels)})[0][0]
    answer: dict[str, object] = {"prediction": CLASSES[int(output.argmax())]}
    if probabilities:
        answer["probabilities"] = output.tolist()
    return answer


if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=int(os.environ.get("PORT", "8080")), workers=1)
