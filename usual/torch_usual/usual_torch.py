"""The usual PyTorch + FastAPI service, for comparison only (not one of the suite's services).

Written the way this strategy is usually written: a pydantic body, torchvision-style transforms on the PIL image
(resize the short side to 256 with PIL's bilinear filter, centre-crop 224, to tensor, normalize), the eager model
under ``torch.no_grad()`` in an ``async def`` endpoint, one uvicorn worker. ``THREADS`` sets torch's threads (the
harness passes the CPU limit: torch's default, one per core, runs 2 threads on a 1-CPU limit and gets half the
throughput). torchvision is not installed here, so its four transforms are spelled out as torchvision computes them.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
from pathlib import Path

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel

from model_core.mobilenet import MobileNetV3Small

MODEL_DIR = Path(os.environ.get("MODEL_DIR", "/opt/model"))
MANIFEST = json.loads((MODEL_DIR / "manifest.json").read_text())
CLASSES: list[str] = MANIFEST["classes"]
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

if "THREADS" in os.environ:
    torch.set_num_threads(int(os.environ["THREADS"]))
model = MobileNetV3Small(num_classes=len(CLASSES))
model.load_state_dict(torch.load(MODEL_DIR / MANIFEST["files"]["state_dict"]["path"], map_location="cpu"))
model.eval()

app = FastAPI()


class Item(BaseModel):
    image: str


def transform(image: Image.Image) -> torch.Tensor:
    # Resize(256): the short side to 256, the long side int(256 * long / short).
    width, height = image.size
    size = (256, int(256 * height / width)) if width <= height else (int(256 * width / height), 256)
    image = image.resize(size, Image.BILINEAR)
    # CenterCrop(224).
    left = round((size[0] - 224) / 2.0)
    top = round((size[1] - 224) / 2.0)
    image = image.crop((left, top, left + 224, top + 224))
    # ToTensor() and Normalize(mean, std).
    tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div(255)
    return (tensor - MEAN) / STD


@app.get("/")
async def health() -> dict[str, str]:
    return {"status": "healthy", "message": "usual torch + FastAPI"}


@app.post("/predict/")
async def predict(item: Item, probabilities: bool = False) -> dict[str, object]:
    try:
        image = Image.open(io.BytesIO(base64.b64decode(item.image))).convert("RGB")
    except (binascii.Error, UnidentifiedImageError, OSError) as error:
        raise HTTPException(status_code=400, detail=f"bad image: {error}") from error
    with torch.no_grad():
        output = torch.softmax(model(transform(image).unsqueeze(0)), dim=1)[0]
    answer: dict[str, object] = {"prediction": CLASSES[int(output.argmax())]}
    if probabilities:
        answer["probabilities"] = output.tolist()
    return answer


if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=int(os.environ.get("PORT", "8081")), workers=1)
