"""Exported models: a trial's weights with everything needed to score new images (bundle), scoring (score), and
portable programs of the model (portable: torch.export and ONNX)."""

FORMATS = ("torch", "onnx", "torch-export")  # here, not in portable, so the command line names them without importing torch
PROGRAMS = {"onnx": "model.onnx", "torch-export": "model.pt2"}  # the portable programs `export --format` adds
SCORE_GRAPH = "score.onnx"  # beside model.onnx: uint8 NHWC images -> the anomaly score, the whole score in-graph
