"""The ASGI app: ``uvicorn torch_serving.app:app``."""

from serving_common.app import create_app
from torch_serving.predictor import TorchPredictor

PORT = 8081
app = create_app("torch-serving", TorchPredictor.from_settings, PORT)
