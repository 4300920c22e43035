"""The ASGI app: ``uvicorn onnx_serving.app:app``."""

from onnx_serving import PORT
from onnx_serving.predictor import OnnxPredictor
from serving_common.app import create_app

app = create_app("onnx-serving", OnnxPredictor.from_settings, PORT)
