"""Stage 3, preprocessing: what the model sees. `faces/` (one module per face detector: MTCNN, its ONNX
Runtime pipeline, BlazeFace; the registry), `framing` (context crop / landmark alignment), `augmentation`,
`kalman`, and `processor` (FaceImageProcessor, the image processor saved with every checkpoint).

May import: data, runtime. Lower stages never import higher ones (tests/test_layers.py).
"""
