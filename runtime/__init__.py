"""How a generator runs at test time: padding and tiling (inference), backends, precision,
Winograd convolutions and ONNX export. Imports nothing of the repository but util/."""
