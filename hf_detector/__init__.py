"""hf-detector: tell real photos of human faces from GAN and diffusion faces.

The package is layered by stage (docs/architecture.md); lower stages never import higher ones:
data -> runtime -> preprocessing -> models -> inference -> evaluation -> hub -> signals -> training
-> app, with `cli` and this module on top.

`import hf_detector` is light (no torch, no transformers): the torch-backed names load on first access
(module `__getattr__`). The project's CNN and `FaceImageProcessor` are registered with transformers' Auto
classes as soon as transformers is imported, before or after this package, so `pipeline()` resolves them.
"""

from __future__ import annotations

import importlib.abc
import logging
import sys
from typing import Any

from .data.checkpoints import DEFAULT_MODEL, default_model_available
from .data.labels import ID2LABEL, LABEL2ID, LABELS

__version__ = "0.1.0"

_LAZY = {
    "Detector": "hf_detector.inference.detector",
    "Prediction": "hf_detector.inference.detector",
    "FaceImageProcessor": "hf_detector.preprocessing.processor",
    "CustomCNNConfig": "hf_detector.models.custom_cnn",
    "CustomCNNForImageClassification": "hf_detector.models.custom_cnn",
    "EfficientNetLiteConfig": "hf_detector.models.efficientnet_lite",
    "EfficientNetLiteForImageClassification": "hf_detector.models.efficientnet_lite",
    "LocalMobileNetV2Config": "hf_detector.models.local_mobilenet_v2",
    "LocalMobileNetV2ForImageClassification": "hf_detector.models.local_mobilenet_v2",
    "register_auto_classes": "hf_detector.models.registration",
}


def _register() -> None:
    from .models.registration import register_auto_classes

    register_auto_classes()


def _initializing() -> bool:
    """True while transformers or a module of this package is still executing (registering then would
    import a half-made module)."""
    return any(getattr(getattr(module, "__spec__", None), "_initializing", False)
               for name, module in list(sys.modules.items())
               if name == "transformers" or name.startswith("hf_detector."))


class _RegisterWithTransformers(importlib.abc.MetaPathFinder):
    """Registers the project's classes with transformers' Auto classes once transformers is loaded, so
    `pipeline()` resolves them after `import hf_detector` without this package importing transformers.

    A meta-path finder sees every import of a module not loaded yet. After `import transformers` completes,
    the next such import (the first use of `pipeline`, `AutoImageProcessor`... imports its submodule)
    runs the registration first, then the finder removes itself. It never finds anything itself.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if "transformers" in sys.modules and not _initializing():
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            try:
                _register()
            except Exception as error:  # never break the user's import
                logging.getLogger(__name__).warning("hf_detector: Auto-class registration failed: %s", error)
        return None


if "transformers" in sys.modules and not _initializing():
    _register()
elif not any(isinstance(finder, _RegisterWithTransformers) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWithTransformers())


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = ["DEFAULT_MODEL", "ID2LABEL", "LABEL2ID", "LABELS", "FaceImageProcessor", "Detector", "Prediction",
           "default_model_available"]
