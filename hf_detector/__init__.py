"""hf-detector: tell real photos of human faces from GAN and diffusion faces."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

from .labels import ID2LABEL, LABEL2ID, LABELS
from .models.custom_cnn import CustomCNNConfig, CustomCNNForImageClassification
from .processing import FaceImageProcessor

__version__ = "0.1.0"

# The bundled default checkpoint (committed safetensors); see checkpoints/README and issue 3.
DEFAULT_MODEL: Path = Path(__file__).resolve().parent.parent / "checkpoints" / "default"

# Register our classes so that AutoConfig / AutoModel / AutoImageProcessor / pipeline() resolve them
# after `import hf_detector`, without trust_remote_code.
AutoConfig.register(CustomCNNConfig.model_type, CustomCNNConfig, exist_ok=True)
AutoModelForImageClassification.register(CustomCNNConfig, CustomCNNForImageClassification, exist_ok=True)
AutoImageProcessor.register(CustomCNNConfig, slow_image_processor_class=FaceImageProcessor,
                            fast_image_processor_class=FaceImageProcessor, exist_ok=True)


def default_model_available() -> bool:
    return (DEFAULT_MODEL / "config.json").exists() and any(DEFAULT_MODEL.glob("*.safetensors"))


def __getattr__(name: str):
    if name in ("Detector", "Prediction"):
        from . import inference

        return getattr(inference, name)
    raise AttributeError(name)


__all__ = ["DEFAULT_MODEL", "ID2LABEL", "LABEL2ID", "LABELS", "FaceImageProcessor", "Detector", "Prediction",
           "default_model_available"]
