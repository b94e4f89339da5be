"""MTCNN (`facenet_pytorch.MTCNN`): three cascaded networks, five landmarks, finds small faces.

Weights ship inside the facenet-pytorch wheel (offline; the Hub is never contacted). backend "onnx"
runs the same networks on ONNX Runtime (`mtcnn_onnx`), identical boxes/landmarks.

Stage: preprocessing (imports data, runtime).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .base import Face
from .base import to_rgb as _to_rgb

if TYPE_CHECKING:  # pragma: no cover
    from facenet_pytorch import MTCNN

NETS = ("pnet", "rnet", "onet")  # MTCNN's three networks, in the order they run
_MTCNN_CACHE: dict[str, MTCNN] = {}
_MTCNN_LOCK = threading.Lock()
_THREADS_LOCK = threading.Lock()
_DEFAULT_DETECTOR: FaceDetector | None = None


def import_mtcnn() -> type:
    """facenet-pytorch's MTCNN class, without running the package's `__init__`.

    That `__init__` also imports InceptionResnetV1 and with it `requests` (~0.2 s per process here, on the
    first photo BlazeFace finds no face in; we never download its weights). The package is registered
    bare just while its MTCNN module loads, then removed, so a later `import facenet_pytorch` anywhere
    runs the real `__init__` (reusing the submodules loaded here).
    """
    import importlib
    import importlib.util
    import sys
    import types

    loaded = sys.modules.get("facenet_pytorch.models.mtcnn")
    if loaded is not None:
        return loaded.MTCNN
    if "facenet_pytorch" in sys.modules:
        return importlib.import_module("facenet_pytorch.models.mtcnn").MTCNN
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("facenet-pytorch is not installed (pip install --no-deps facenet-pytorch==2.6.0)")
    package = types.ModuleType("facenet_pytorch")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["facenet_pytorch"] = package
    try:
        return importlib.import_module("facenet_pytorch.models.mtcnn").MTCNN
    finally:
        if sys.modules.get("facenet_pytorch") is package:
            del sys.modules["facenet_pytorch"]


def _get_mtcnn(device: str = "cpu", backend: str = "pytorch", onnx_files: dict[str, Path] | None = None) -> MTCNN:
    """One MTCNN per device (and backend) per process: building it loads three weight files (~50 ms).

    backend "onnx": the same networks on ONNX Runtime (mtcnn_onnx), identical boxes/landmarks; with
    `onnx_files` (a checkpoint's verified export) straight from those files, without torch or facenet-pytorch.
    """
    if backend == "onnx" and device == "cpu" and onnx_files and all(f"mtcnn-{n}" in onnx_files for n in NETS):
        key = "onnx-files:" + ",".join(str(onnx_files[f"mtcnn-{n}"]) for n in NETS)
        with _MTCNN_LOCK:
            if key not in _MTCNN_CACHE:
                from .mtcnn_onnx import mtcnn_from_files

                _MTCNN_CACHE[key] = mtcnn_from_files({n: onnx_files[f"mtcnn-{n}"] for n in NETS})
            return _MTCNN_CACHE[key]
    with _MTCNN_LOCK:
        model = _MTCNN_CACHE.get(device)
        if model is None:
            model = import_mtcnn()(keep_all=True, device=device, post_process=False)
            model.eval()
            _MTCNN_CACHE[device] = model
        if backend == "onnx" and device == "cpu":
            key = f"{device}:onnx"
            if key not in _MTCNN_CACHE:
                from .mtcnn_onnx import onnx_mtcnn

                _MTCNN_CACHE[key] = onnx_mtcnn(model)
            model = _MTCNN_CACHE[key]
        return model


class FaceDetector:
    """MTCNN face detector; `detect` returns faces largest (area x score) first, `largest` the first one."""

    def __init__(
        self,
        min_score: float = 0.9,
        min_size: float = 20.0,
        max_side: int = 640,
        device: str = "cpu",
        num_threads: int | None = None,
        backend: str = "pytorch",
        large_face_fraction: float = 0.2,
        onnx_files: dict[str, Path] | None = None,
    ) -> None:
        # num_threads: torch intra-op threads while detecting (restored afterwards). On a busy
        # 2-core machine 1 thread was ~15x faster than 2 (64 ms vs ~1.1 s per image).
        self.num_threads = num_threads
        self.min_score = float(min_score)
        self.min_size = float(min_size)
        self.max_side = int(max_side)
        self.device = device
        self.backend = backend  # "pytorch" | "onnx" (same results, see mtcnn_onnx)
        self.onnx_files = onnx_files  # the checkpoint's exported networks, for the onnx backend
        # `largest` on the onnx backend first searches only for faces at least this fraction of the
        # searched copy's shorter side (the coarse pyramid levels, ~1/5 of P-Net's work), and does the
        # full search only when none is found. The chosen face matched the full search's on all 1,000
        # photos compared (docs/performance.md); 0 = always the full search.
        self.large_face_fraction = float(large_face_fraction)

    @property
    def model(self) -> MTCNN:
        return _get_mtcnn(self.device, self.backend, self.onnx_files)

    def detect(self, image: Image.Image, max_side: int | None = None) -> list[Face]:
        """Faces of `image`, searched on a copy whose longer side is <= max_side (default self.max_side)."""
        return self._search(image, max_side)

    def largest(self, image: Image.Image, max_side: int | None = None) -> Face | None:
        """The face `detect` would list first (None if none), found faster when it is large (see __init__)."""
        if self.backend == "onnx" and self.large_face_fraction > 0:
            faces = self._search(image, max_side, self.large_face_fraction)
            if faces:
                return faces[0]
        faces = self.detect(image) if max_side is None else self.detect(image, max_side=max_side)
        return faces[0] if faces else None

    def _search(self, image: Image.Image, max_side: int | None = None, min_fraction: float = 0.0) -> list[Face]:
        image = _to_rgb(image)
        width, height = image.size
        # Detect on a copy whose longer side is <= max_side: MTCNN's pyramid cost grows with pixels
        # and faces in face photos are large anyway.
        scale = min(1.0, (max_side or self.max_side) / max(width, height))
        small = image
        if scale < 1.0:
            small = image.resize(
                (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR
            )
            sx, sy = width / small.width, height / small.height
        else:
            sx = sy = 1.0
        # MTCNN's first stage needs at least a 12 px window; below ~20 px no real face is findable.
        if min(small.size) < 20:
            return []
        model = self.model
        options = {"min_window": min_fraction * min(small.size)} if min_fraction > 0 else {}
        # The onnx face stage (mtcnn_onnx) runs numpy and 1-thread ONNX Runtime sessions, no torch at all,
        # so it needs no thread setting and detections may run concurrently.
        if self.backend == "onnx" and self.device == "cpu":
            boxes, scores, points = model.detect(small, landmarks=True, **options)
        elif self.num_threads is None:
            import torch

            with torch.inference_mode():
                boxes, scores, points = model.detect(small, landmarks=True, **options)
        else:
            import torch

            # torch's thread count is process-global: serialise the detections that change it.
            with _THREADS_LOCK, torch.inference_mode():
                before = torch.get_num_threads()
                torch.set_num_threads(self.num_threads)
                try:
                    boxes, scores, points = model.detect(small, landmarks=True, **options)
                finally:
                    torch.set_num_threads(before)
        if boxes is None or scores is None:
            return []
        # facenet-pytorch returns object-dtype arrays; make them plain floats.
        boxes = np.array([np.asarray(b, dtype=np.float64).reshape(4) for b in boxes])
        scores = np.array([np.nan if s is None else float(s) for s in scores])
        faces: list[Face] = []
        for i, (box, score) in enumerate(zip(boxes, scores, strict=True)):
            if not np.isfinite(score) or score < self.min_score or not np.all(np.isfinite(box)):
                continue
            x0, x1 = box[0] * sx, box[2] * sx
            y0, y1 = box[1] * sy, box[3] * sy
            if min(x1 - x0, y1 - y0) < self.min_size:
                continue
            landmarks = None
            if points is not None and points[i] is not None:
                pts = np.asarray(points[i], dtype=np.float64).reshape(5, 2)
                if np.all(np.isfinite(pts)):
                    landmarks = pts * np.array([sx, sy])
            faces.append(
                Face(
                    box=(float(x0), float(y0), float(x1), float(y1)), score=float(score), landmarks=landmarks
                )
            )
        faces.sort(key=lambda f: f.area * f.score, reverse=True)
        return faces


def default_detector() -> FaceDetector:
    """Shared FaceDetector with default settings (the MTCNN itself is cached per device)."""
    global _DEFAULT_DETECTOR
    if _DEFAULT_DETECTOR is None:
        _DEFAULT_DETECTOR = FaceDetector()
    return _DEFAULT_DETECTOR
