"""model-serving: a benchmark suite comparing three ways to serve one image classifier."""

__version__ = "0.1.0"
