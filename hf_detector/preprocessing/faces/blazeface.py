"""BlazeFace (MediaPipe's short-range face detector) in PyTorch: a face and six keypoints in ~1 ms.

Why: MTCNN's three cascaded networks take ~15 ms per photo on 2 cores, three times the classifier;
BlazeFace sees the whole image once at 128 x 128 (one network, 896 anchors) and is built for faces
that fill much of the frame, which is what face photos are.

Weights: `face_detection_short_range.tflite` (Apache-2.0) ships inside the PyPI wheel
`mediapipe==0.10.14`, installed with `--no-deps` (mediapipe itself is never imported; the Hub and the
network are never contacted). The TFLite graph (fp16 constants, 164 operators of nine kinds) is
rebuilt as a torch module by `TFLiteGraph` (`blazeface_graph`), so the same network runs on eager PyTorch and, exported,
on ONNX Runtime. Decoding follows MediaPipe's face_detection_short_range graph: SSD anchors
(strides 8, 16, 16, 16; 2 + 6 anchors per cell; fixed size), sigmoid scores, weighted NMS.

Keypoints (image coordinates): eye on the image's left, eye on the image's right, nose tip, mouth
centre, and the two ear tragions.

`BlazeFaceDetector` wraps it with the `FaceDetector` interface and MTCNN as the fallback.

Stage: preprocessing (imports data, runtime).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .base import Face
from .base import to_rgb as _to_rgb
from .mtcnn import FaceDetector

__all__ = ["BlazeFace", "BlazeFaceDetector", "anchors", "decode", "model_path", "weighted_nms"]

INPUT_SIZE = 128
MODEL_FILE = "modules/face_detection/face_detection_short_range.tflite"
# MediaPipe's face_detection_short_range options.
MIN_SCORE = 0.5
NMS_IOU = 0.3
SCORE_CLIP = 100.0

_LOCK = threading.Lock()
_CACHE: dict[str, BlazeFace] = {}


class WeightsMissing(RuntimeError):
    """The BlazeFace weights are not installed (the message says how to install them)."""


def model_path() -> Path:
    """The .tflite inside the installed mediapipe wheel, found without importing mediapipe."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            path = Path(root) / MODEL_FILE
            if path.is_file():
                return path
    raise WeightsMissing(
        "BlazeFace weights not found: pip install --no-deps mediapipe==0.10.14 (or use --face_detector mtcnn)"
    )


# -- decoding ----------------------------------------------------------------------------------------


def anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1] (x, y): MediaPipe's SSD anchors for the short-range model."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = INPUT_SIZE // stride
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


_ANCHORS = anchors()


def decode(regressors: np.ndarray, logits: np.ndarray, min_score: float = MIN_SCORE) -> np.ndarray:
    """Raw outputs of one image -> (K, 17) rows [x0, y0, x1, y1, 6 x (kx, ky), score], coordinates in [0, 1]."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    keep = scores >= min_score
    raw, centre = regressors.reshape(-1, 16)[keep] / INPUT_SIZE, _ANCHORS[keep]
    cx, cy = raw[:, 0] + centre[:, 0], raw[:, 1] + centre[:, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    points = raw[:, 4:16].reshape(-1, 6, 2) + centre[:, None, :]
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    return np.concatenate([boxes, points.reshape(-1, 12), scores[keep, None]], axis=1)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(detections: np.ndarray, iou: float = NMS_IOU) -> np.ndarray:
    """MediaPipe's weighted NMS: each cluster (IoU > iou with its best) is replaced by its score-weighted
    mean box and keypoints, with the best score. Rows as `decode` gives them, best first."""
    order = np.argsort(-detections[:, -1], kind="stable")
    remaining = detections[order]
    merged = []
    while len(remaining):
        overlap = _iou(remaining[0], remaining)
        cluster = remaining[overlap > iou]
        weights = cluster[:, -1:]
        mean = (cluster[:, :-1] * weights).sum(0) / weights.sum()
        merged.append(np.append(mean, remaining[0, -1]))
        remaining = remaining[overlap <= iou]
    return np.array(merged, dtype=np.float64).reshape(-1, detections.shape[1])


# -- the detector ------------------------------------------------------------------------------------


class BlazeFace:
    """Letterbox to 128 x 128 -> network -> decode -> weighted NMS, in image pixels.

    `detect(rgb)` takes an (H, W, 3) uint8 array and returns (K, 17) rows [x0, y0, x1, y1, 6 keypoints
    (x, y), score], best first. backend "onnx" runs the exported network on ONNX Runtime (same numbers).
    """

    def __init__(self, backend: str = "pytorch", onnx_file: str | Path | None = None) -> None:
        self.backend = backend
        self.network = None
        self.session = None
        if backend == "onnx" and onnx_file is not None:
            # the checkpoint's verified export (hf_detector.inference.export): no torch at all
            from ...runtime.onnx import session_from_file

            self.session = session_from_file(onnx_file, threads=1)
            return
        from .blazeface_graph import TFLiteGraph

        self.network = TFLiteGraph(model_path().read_bytes()).eval()
        if backend == "onnx":
            self.session = self._checked_session()

    def _checked_session(self) -> Any:
        """The exported network on ONNX Runtime if it matches eager PyTorch on a random input, else None
        (eager PyTorch then runs, with a warning: slower, never wrong)."""
        import logging

        import torch

        from ...runtime.onnx import EXPORT_TOLERANCE, _load_session

        try:
            session = _load_session(self.network, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE), "blazeface", "x",
                                    ["regressors", "classificators"], {}, threads=1)
            probe = np.random.default_rng(0).uniform(-1, 1, (1, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
            with torch.inference_mode():
                expected = self.network(torch.from_numpy(probe))
            got = session.run(None, {"x": probe})
            difference = max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected, strict=True))
            if not np.isfinite(difference) or difference > EXPORT_TOLERANCE * 10:  # regressors are in pixels
                raise ValueError(f"export differs from PyTorch by {difference:.2e}")
            return session
        except Exception as error:  # noqa: BLE001 - any export/runtime failure means: run eager
            logging.getLogger(__name__).warning("BlazeFace on ONNX Runtime unavailable (%s): using PyTorch",
                                                str(error).splitlines()[0] if str(error) else type(error).__name__)
            return None

    def run(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1, 3, 128, 128) float32 in [-1, 1] -> raw (regressors, logits)."""
        if self.session is not None:
            regressors, logits = self.session.run(None, {"x": tensor})
            return regressors, logits
        import torch

        with torch.inference_mode():
            regressors, logits = self.network(torch.from_numpy(tensor))
        return regressors.numpy(), logits.numpy()

    def detect(self, rgb: np.ndarray, min_score: float = MIN_SCORE) -> np.ndarray:
        import cv2

        height, width = rgb.shape[:2]
        side = max(height, width)
        scale = INPUT_SIZE / side
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        # Letterbox: the whole image, aspect kept, centred on black (MediaPipe's keep_aspect_ratio).
        interpolation = cv2.INTER_LINEAR
        small = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
        top, left = (INPUT_SIZE - new_h) // 2, (INPUT_SIZE - new_w) // 2
        canvas[top : top + new_h, left : left + new_w] = small
        tensor = (canvas.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        regressors, logits = self.run(np.ascontiguousarray(tensor))
        found = weighted_nms(decode(regressors[0], logits[0], min_score))
        if len(found) == 0:
            return found
        # [0, 1] of the letterboxed square -> image pixels
        offset = np.array([left, top] * 8, dtype=np.float64) / INPUT_SIZE
        found[:, :16] = (found[:, :16] - offset) * side
        return found


def blazeface(backend: str = "pytorch", onnx_file: str | Path | None = None) -> BlazeFace:
    """One BlazeFace per backend (and exported file) per process."""
    key = f"{backend}:{onnx_file or ''}"
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = BlazeFace(backend, onnx_file)
        return _CACHE[key]


class BlazeFaceDetector:
    """BlazeFace first, MTCNN when BlazeFace finds no face; `detect`/`largest` answer like FaceDetector.

    BlazeFace sees the whole image at 128 x 128, so it misses faces smaller than ~1/10 of the image:
    those photos go to the MTCNN search (`fallback`), whose crops are framed the same way on average.
    """

    def __init__(self, min_score: float = 0.5, min_size: float = 20.0, backend: str = "pytorch",
                 fallback: FaceDetector | None = None, num_threads: int | None = None,
                 onnx_files: dict[str, Path] | None = None) -> None:
        self.min_score = float(min_score)  # MediaPipe's own threshold for this model
        self.min_size = float(min_size)
        self.backend = backend
        # the checkpoint's exported networks (runtime.files.validated_export), used on the onnx backend
        self.onnx_file = (onnx_files or {}).get("blazeface") if backend == "onnx" else None
        self.fallback = fallback or FaceDetector(backend=backend, num_threads=num_threads, onnx_files=onnx_files)

    def _blazeface(self, image: Image.Image) -> list[Face]:
        found = blazeface(self.backend, self.onnx_file).detect(np.asarray(_to_rgb(image)), self.min_score)
        faces = []
        for row in found:
            x0, y0, x1, y1 = (float(v) for v in row[:4])
            if min(x1 - x0, y1 - y0) < self.min_size or not np.all(np.isfinite(row)):
                continue
            landmarks = row[4:12].reshape(4, 2).astype(np.float64)  # eyes, nose, mouth (ears dropped)
            faces.append(Face(box=(x0, y0, x1, y1), score=float(row[-1]), landmarks=landmarks, scheme="blazeface"))
        faces.sort(key=lambda f: f.area * f.score, reverse=True)
        return faces

    def detect(self, image: Image.Image, max_side: int | None = None) -> list[Face]:
        return self._blazeface(image) or self.fallback.detect(image, max_side=max_side)

    def largest(self, image: Image.Image, max_side: int | None = None) -> Face | None:
        faces = self._blazeface(image)
        return faces[0] if faces else self.fallback.largest(image, max_side=max_side)
