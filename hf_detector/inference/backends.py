"""The classifier on ONNX Runtime (fp32 export or the checkpoint's validated int8), and backend choice.

See `hf_detector.runtime.onnx` for the backends; the face detector runs ONNX Runtime fp32 on both
"onnx" and "int8": a crop is never changed.

Stage: inference (imports data, runtime, preprocessing, models).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch

from ..runtime.files import validated_int8
from ..runtime.onnx import (
    EXPORT_TOLERANCE,
    BackendUnavailable,
    _load_session,
    default_threads,
    onnx_available,
    requested_backend,
    session_options,
)

logger = logging.getLogger(__name__)


def resolve_backend(backend: str | None = "auto", checkpoint: str | os.PathLike | None = None) -> str:
    """"auto" (or None, or $HF_DETECTOR_BACKEND) -> the fastest accurate one available; others as asked.

    `checkpoint`: the model's directory, where a validated int8 model may live (hf_detector.inference.int8).
    """
    name = requested_backend(backend)
    if name == "pytorch":
        return name
    if not onnx_available():
        if name == "auto":
            return "pytorch"
        raise BackendUnavailable(f"backend {name!r} needs `pip install onnxruntime onnx` (or use --backend pytorch)")
    has_int8 = validated_int8(checkpoint) is not None
    has_int8 = validated_int8(checkpoint) is not None
    if name == "auto":
        return "int8" if has_int8 else "onnx"
    if name == "int8" and not has_int8:
        raise BackendUnavailable("backend 'int8': this checkpoint has no int8 model validated for its weights "
                                 "(run `hf-detector quantize --model DIR --data FOLDER`, or use --backend onnx)")
    return name



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

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(pixel_values.detach().cpu().float().numpy())
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


class Int8Classifier:
    """`logits = Int8Classifier(path)(pixel_values)`: the checkpoint's validated int8 model on ONNX Runtime."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnx
        import onnxruntime as ort

        self.threads = int(threads or default_threads())
        graph = onnx.load(str(path), load_external_data=False).graph
        # a downloaded file must be self-contained: external tensor data would make ONNX Runtime read
        # whatever paths the file names
        if any(tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in graph.initializer):
            raise BackendUnavailable(f"{path}: refers to external tensor data; not loaded")
        self.session = ort.InferenceSession(str(path), session_options(self.threads),
                                            providers=["CPUExecutionProvider"])

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(pixel_values.detach().cpu().float().numpy())
        return torch.from_numpy(self.session.run(None, {"pixel_values": array})[0])


def int8_classifier(checkpoint: str | os.PathLike | None, threads: int | None = None) -> Int8Classifier | None:
    """The checkpoint's int8 classifier, or None (with a warning) when it is missing, stale or unloadable."""
    path = validated_int8(checkpoint)
    if path is None:
        return None
    try:
        return Int8Classifier(path, threads)
    except Exception as error:  # a damaged file: fall back, never fail a prediction
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        logger.warning("int8 model unusable (%s); using ONNX Runtime fp32", first)
        return None

