"""The model: architecture, preprocessing reference, default weights and ONNX export."""

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
