"""torch-serving: PyTorch eager behind FastAPI (port 8081)."""

PORT = 8081  # here, not in app.py: the launcher must not import the model's libraries to know it
