"""Registration of the project's classes with transformers' Auto classes (no trust_remote_code).

After `register_auto_classes()`, `AutoConfig`, `AutoModelForImageClassification`, `AutoImageProcessor`
and `pipeline()` resolve the custom CNN, EfficientNet-Lite, the local MobileNetV2 and `FaceImageProcessor` saved with every checkpoint.
Idempotent and cheap after the first call.

Stage: models (imports data, preprocessing).
"""

from __future__ import annotations

import threading

_LOCK = threading.Lock()
_DONE = False


def register_auto_classes() -> None:
    """Register CustomCNN, EfficientNet-Lite, LocalMobileNetV2 and FaceImageProcessor with the Auto classes (once per process)."""
    global _DONE
    with _LOCK:
        if _DONE:
            return
        from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

        from ..preprocessing.processor import FaceImageProcessor
        from .custom_cnn import CustomCNNConfig, CustomCNNForImageClassification
        from .efficientnet_lite import EfficientNetLiteConfig, EfficientNetLiteForImageClassification
        from .local_mobilenet_v2 import LocalMobileNetV2Config, LocalMobileNetV2ForImageClassification

        for config, model in ((CustomCNNConfig, CustomCNNForImageClassification),
                              (EfficientNetLiteConfig, EfficientNetLiteForImageClassification),
                              (LocalMobileNetV2Config, LocalMobileNetV2ForImageClassification)):
            AutoConfig.register(config.model_type, config, exist_ok=True)
            AutoModelForImageClassification.register(config, model, exist_ok=True)
            AutoImageProcessor.register(config, slow_image_processor_class=FaceImageProcessor,
                                        fast_image_processor_class=FaceImageProcessor, exist_ok=True)
        _DONE = True
