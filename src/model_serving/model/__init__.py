"""The harness's side of the model: the default weights and the ONNX export (the definition, the preprocessing
reference and state dict loading are in ``model_core``, which the services use too)."""
