"""Stage 8, signals: what the app shows beside the verdict: metadata hints (EXIF, PNG text, XMP, C2PA) and
Grad-CAM over the crop the model saw. Neither changes a prediction.

May import: data, runtime, preprocessing, models, inference, evaluation, hub. Lower stages never import higher ones (tests/test_layers.py).
"""
