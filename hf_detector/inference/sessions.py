"""The classifier from ONNX files (the checkpoint's fp32 export or its validated int8) and the backend choice,
in numpy + onnxruntime only: what the light runtime runs.

Stage: inference (imports data, runtime).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.files import validated_int8
from ..runtime.onnx import (
    BackendUnavailable,
    default_threads,
    onnx_available,
    requested_backend,
    session_from_file,
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
    if name == "auto":
        return "int8" if has_int8 else "onnx"
    if name == "int8" and not has_int8:
        raise BackendUnavailable("backend 'int8': this checkpoint has no int8 model validated for its weights "
                                 "(run `hf-detector quantize --model DIR --data FOLDER`, or use --backend onnx)")
    return name


def refuse_external_data(path: str | os.PathLike) -> None:
    """A downloaded file must be self-contained: external tensor data would make ONNX Runtime read whatever
    paths the file names. Raises BackendUnavailable for such a file."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    if any(tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in graph.initializer):
        raise BackendUnavailable(f"{path}: refers to external tensor data; not loaded")


def _as_array(pixel_values: Any) -> np.ndarray:
    if hasattr(pixel_values, "detach"):  # a torch tensor (the PyTorch-side processor)
        pixel_values = pixel_values.detach().cpu().float().numpy()
    return np.ascontiguousarray(pixel_values, dtype=np.float32)


class FileClassifier:
    """`logits = FileClassifier(path)(pixel_values)`: an exported classifier on ONNX Runtime (numpy in and out)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, check_external: bool = False) -> None:
        self.threads = int(threads or default_threads())
        if check_external:
            refuse_external_data(path)
        self.session = session_from_file(path, self.threads)

    def __call__(self, pixel_values: Any) -> np.ndarray:
        return self.session.run(None, {"pixel_values": _as_array(pixel_values)})[0]


class Int8Classifier(FileClassifier):
    """The checkpoint's validated int8 model (always checked for external data: it may come from the Hub)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        super().__init__(path, threads, check_external=True)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def int8_classifier(checkpoint: str | os.PathLike | None, threads: int | None = None) -> Int8Classifier | None:
    """The checkpoint's int8 classifier, or None (with a warning) when it is missing, stale or unloadable."""
    path = validated_int8(checkpoint)
    if path is None:
        return None
    try:
        return Int8Classifier(path, threads)
    except Exception as error:  # a damaged file: fall back, never fail a prediction
        logger.warning("int8 model unusable (%s); using ONNX Runtime fp32", _first_line(error))
        return None


def exported_classifier(path: Path, threads: int | None = None, check_external: bool = False
                        ) -> FileClassifier | None:
    """The checkpoint's fp32 export, or None (with a warning) when it cannot be loaded."""
    try:
        return FileClassifier(path, threads, check_external)
    except Exception as error:  # a damaged file: fall back to PyTorch, never fail a prediction
        logger.warning("ONNX export unusable (%s); using PyTorch", _first_line(error))
        return None
