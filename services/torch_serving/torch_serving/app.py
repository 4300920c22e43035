"""The ASGI app: ``uvicorn torch_serving.app:app``."""

from serving_common.app import create_app
from torch_serving import PORT
from torch_serving.predictor import TorchPredictor

app = create_app("torch-serving", TorchPredictor.from_settings, PORT)
