"""Import and export of int8 .tflite models (docs/tflite.md): read a model with LiteRT's flatbuffers schema
(graph.py), run it with TFLite's integer semantics (quantization.py, kernels/, interpret.py), write one (write.py)."""
