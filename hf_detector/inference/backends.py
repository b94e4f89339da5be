"""The classifier exported from PyTorch on ONNX Runtime (cached per weights), for checkpoints without an export.

See `hf_detector.runtime.onnx` for the backends; the face detector runs ONNX Runtime fp32 on both
"onnx" and "int8": a crop is never changed.

Stage: inference (imports data, runtime, preprocessing, models).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from ..runtime.onnx import EXPORT_TOLERANCE, BackendUnavailable, _load_session, default_threads
from .sessions import (  # noqa: F401  (the file-based classifiers and the backend choice, re-exported)
    FileClassifier,
    Int8Classifier,
    int8_classifier,
    onnx_available,
    resolve_backend,
)

logger = logging.getLogger(__name__)


# -- the classifier ----------------------------------------------------------------------------------
class _LogitsOnly(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


def input_shape(model: torch.nn.Module, processor: Any = None) -> tuple[int, int, int]:
    """(channels, height, width) the model is fed: from the processor's size, else the config."""
    size = getattr(processor, "size", None) or {}
    height = size.get("height") if isinstance(size, dict) else None
    width = size.get("width") if isinstance(size, dict) else None
    if not (height and width):
        side = int(getattr(model.config, "image_size", 224) or 224)
        height = width = side
    return int(getattr(model.config, "num_channels", 3) or 3), int(height), int(width)


class OnnxClassifier:
    """`logits = OnnxClassifier(model, shape)(pixel_values)`: the model's forward on ONNX Runtime."""

    def __init__(self, model: torch.nn.Module, shape: tuple[int, int, int], threads: int | None = None) -> None:
        self.threads = int(threads or default_threads())
        example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
        wrapped = _LogitsOnly(model).eval()
        self.session = _load_session(wrapped, example, f"classifier-{type(model).__name__}", "pixel_values",
                                     ["logits"], {"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
                                     self.threads)
        with torch.no_grad():
            reference = wrapped(example).float()
        difference = float((self(example) - reference).abs().max())
        if not np.isfinite(difference) or difference > EXPORT_TOLERANCE:
            raise BackendUnavailable(f"ONNX export differs from PyTorch by {difference:.2e} (> {EXPORT_TOLERANCE})")

    def __call__(self, pixel_values: torch.Tensor | np.ndarray) -> torch.Tensor:
        array = np.ascontiguousarray(torch.as_tensor(pixel_values).detach().cpu().float().numpy())
        return torch.from_numpy(self.session.run(None, {"pixel_values": array})[0])


def onnx_classifier(model: torch.nn.Module, processor: Any = None, threads: int | None = None
                    ) -> OnnxClassifier | None:
    """The ONNX Runtime classifier, or None (with a warning) when this model cannot use it."""
    try:
        return OnnxClassifier(model, input_shape(model, processor), threads)
    except Exception as error:  # any export/runtime failure: stay on PyTorch, never fail a prediction
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        logger.warning("ONNX Runtime unavailable for this model (%s); using PyTorch", first)
        return None
