"""hf-detector: tell real photos of human faces from GAN and diffusion faces.

The package is layered by stage (docs/architecture.md); lower stages never import higher ones:
data -> runtime -> preprocessing -> models -> inference -> evaluation -> hub -> signals -> training
-> app, with `cli` and this module on top.
"""

from __future__ import annotations

from .data.checkpoints import DEFAULT_MODEL, default_model_available
from .data.labels import ID2LABEL, LABEL2ID, LABELS
from .models.custom_cnn import CustomCNNConfig, CustomCNNForImageClassification  # noqa: F401
from .models.registration import register_auto_classes
from .preprocessing.processor import FaceImageProcessor

__version__ = "0.1.0"

# Register our classes so that AutoConfig / AutoModel / AutoImageProcessor / pipeline() resolve them
# after `import hf_detector`, without trust_remote_code.
register_auto_classes()


def __getattr__(name: str):
    if name in ("Detector", "Prediction"):
        from .inference import detector

        return getattr(detector, name)
    raise AttributeError(name)


__all__ = ["DEFAULT_MODEL", "ID2LABEL", "LABEL2ID", "LABELS", "FaceImageProcessor", "Detector", "Prediction",
           "default_model_available"]
