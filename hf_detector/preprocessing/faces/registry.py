"""The face detectors by name (`FACE_DETECTORS`), chosen per checkpoint by the processor's `face_detector`:

    "mtcnn"      `facenet_pytorch.MTCNN`: three cascaded networks, five landmarks, finds small faces
    "blazeface"  MediaPipe's BlazeFace: one network at 128 px, ~7x faster; MTCNN takes over when it
                 finds no face (small faces in large scenes)

Stage: preprocessing (imports data, runtime).
"""

from __future__ import annotations

from pathlib import Path

from .blazeface import BlazeFaceDetector
from .mtcnn import FaceDetector

FACE_DETECTORS = {"mtcnn": FaceDetector, "blazeface": BlazeFaceDetector}


def make_face_detector(name: str = "mtcnn", backend: str = "pytorch", num_threads: int | None = None,
                       onnx_files: dict[str, Path] | None = None) -> FaceDetector | BlazeFaceDetector:
    """A face detector from the registry by name (`FACE_DETECTORS`); `onnx_files`: a checkpoint's verified
    exports, from which the onnx backend loads its networks (no torch)."""
    if name not in FACE_DETECTORS:
        raise ValueError(f"face_detector must be one of {', '.join(FACE_DETECTORS)}; got {name!r}")
    return FACE_DETECTORS[name](backend=backend, num_threads=num_threads, onnx_files=onnx_files)
