"""The usual implementation of each serving strategy, measured beside the suite's own (issue 12's comparison).

``graph``: the ONNX graph the usual ONNX implementations serve; ``build``: their images (sources in ``usual/``);
``compare``: the paired ab rounds.
"""
