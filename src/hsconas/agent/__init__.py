"""The device agent: a small authenticated HTTP service that times ONNX models on its device."""
