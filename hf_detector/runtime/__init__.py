"""Stage 2, runtime: ONNX Runtime plumbing shared by the face detectors and the classifier (sessions,
threads, cached exports) and the checkpoint's ONNX files, valid only for the weights they were built from.

May import: data. Lower stages never import higher ones (tests/test_layers.py).
"""
