"""What the services and the harness both need to know about the model: its classes, the artifact folder's
manifest, the MobileNetV3-small definition, the torch preprocessing reference and state dicts.

At the bottom of the dependency graph: it imports neither the services nor the harness. ``manifest``, ``errors``
and ``state_dict_check`` need only the standard library (onnx-serving, which has no torch, reads its model folder
with them); ``mobilenet``, ``preprocessing`` and ``loading`` need torch.
"""

#: The weather classes in the order of the model's outputs.
CLASSES: tuple[str, ...] = (
    "dew",
    "fogsmog",
    "frost",
    "glaze",
    "hail",
    "lightning",
    "rain",
    "rainbow",
    "rime",
    "sandstorm",
    "snow",
)
