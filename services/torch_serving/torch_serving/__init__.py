"""torch-serving: PyTorch eager behind FastAPI (port 8081)."""
