"""``python -m onnx_serving``: log the configuration, check the model, serve."""

from onnx_serving import PORT
from serving_common.launch import main

raise SystemExit(main("onnx-serving", "onnx_serving.app:app", PORT, ("onnx_optimized",)))
