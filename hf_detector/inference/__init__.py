"""Stage 5, inference: `Detector` (load a checkpoint, score files, folders and PIL images), the classifier on
ONNX Runtime (`backends`), the checkpoint's static int8 model (`int8`).

May import: data, runtime, preprocessing, models. Lower stages never import higher ones (tests/test_layers.py).
"""
