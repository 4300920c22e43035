"""onnx-serving: ONNX Runtime behind FastAPI (port 8080); preprocessing runs inside the graph."""

PORT = 8080  # here, not in app.py: the launcher must not import the model's libraries to know it
