"""onnx-serving: ONNX Runtime behind FastAPI (port 8080); preprocessing runs inside the graph."""
