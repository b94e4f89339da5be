"""Stage models: the classifier architectures (a registry, one file per family) and their Auto-class registration.

May import: data, runtime, preprocessing. A new architecture is one new file here plus one import line below.
"""

from __future__ import annotations

from . import custom_cnn, efficientnet_lite, local_mobilenet_v2, mobilenet_v2, resnet  # noqa: F401  (each family registers itself)
from .registry import (
           MODEL_REGISTRY,
           Builder,
           ModelSpec,
           available_models,
           create_model,
           label_kwargs,
           register_model,
)

__all__ = ["MODEL_REGISTRY", "Builder", "ModelSpec", "available_models", "create_model", "label_kwargs",
           "register_model"]
