"""MTCNN on ONNX Runtime: facenet-pytorch's detect_face with its crops resampled in numpy.

Stage: preprocessing (imports data and runtime). facenet-pytorch's MTCNN object only supplies settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...runtime.onnx import _load_session, session_from_file

# name: (example input shape, dynamic axes, number of outputs) of MTCNN's three networks, for the export
MTCNN_NETS: dict[str, tuple[tuple[int, ...], dict[str, dict[int, str]], int]] = {
    "pnet": ((1, 3, 48, 64), {"x": {2: "height", 3: "width"}}, 2),
    "rnet": ((2, 3, 24, 24), {"x": {0: "boxes"}}, 2),
    "onet": ((2, 3, 48, 48), {"x": {0: "boxes"}}, 3),
}


@dataclass
class MTCNNSettings:
    """The facenet-pytorch MTCNN settings the face stage uses (`MTCNN(keep_all=True, post_process=False)`),
    for the light runtime, which never builds facenet-pytorch's torch object."""

    min_face_size: float = 20.0
    thresholds: list[float] = field(default_factory=lambda: [0.6, 0.7, 0.7])
    factor: float = 0.709
    select_largest: bool = True


# -- the face detector (MTCNN's P-, R- and O-Net) ---------------------------------------------------
def summed_area_table(pixels: np.ndarray) -> np.ndarray:
    """(H+1, W+1, C) integer summed-area table of uint8 (H, W, C) pixels: exact sums of any rectangle."""
    height, width, channels = pixels.shape
    if height * width * 255 < 2**31:  # int32 holds the sums up to ~2900x2900 (the detector searches <= 640 px)
        return cv2.integral(np.ascontiguousarray(pixels), sdepth=cv2.CV_32S)  # ~15x faster than two cumsums
    integral = np.zeros((height + 1, width + 1, channels), dtype=np.int64)
    np.cumsum(pixels, axis=0, dtype=np.int64, out=integral[1:, 1:])
    np.cumsum(integral[1:, 1:], axis=1, out=integral[1:, 1:])
    return integral


def _area_bins(start: Any, extent: Any, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive average pooling's bins of `extent` pixels into `size`: [floor(i*n/size), ceil((i+1)*n/size))."""
    index = np.arange(size)
    return start + (index * extent) // size, start - ((-(index + 1) * extent) // size)  # ceil division


def area_resample_boxes(integral: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Every box of an image resampled to size x size at once, exactly as MTCNN's per-box `imresample`.

    facenet-pytorch crops each candidate box and calls `interpolate(mode="area")` (adaptive average
    pooling) one box at a time: ~60 small calls per image, a quarter of the face stage. Adaptive pooling
    averages bin [floor(i*n/size), ceil((i+1)*n/size)); with a summed-area table of the (integer-valued)
    pixels every bin sum is exact, so the result equals PyTorch's to float32 rounding.

    integral: (H+1, W+1, C) integer summed-area table; rows / cols: (K, 2) half-open pixel ranges.
    Returns (K, C, size, size) float32.
    """
    channels = integral.shape[2]
    flat = integral.ravel()
    r0, r1 = _area_bins(rows[:, :1], (rows[:, 1] - rows[:, 0])[:, None], size)
    c0, c1 = _area_bins(cols[:, :1], (cols[:, 1] - cols[:, 0])[:, None], size)
    # flat offsets, broadcast to (K, C, size, size): channel-first output without a transpose
    row_stride = integral.shape[1] * channels
    top, bottom = (r0 * row_stride)[:, None, :, None], (r1 * row_stride)[:, None, :, None]
    left, right = (c0 * channels)[:, None, None, :], (c1 * channels)[:, None, None, :]
    channel = np.arange(channels)[None, :, None, None]
    sums = (np.take(flat, bottom + right + channel) - np.take(flat, top + right + channel)
            - np.take(flat, bottom + left + channel) + np.take(flat, top + left + channel))
    counts = (r1 - r0)[:, None, :, None] * (c1 - c0)[:, None, None, :]
    return (sums / counts).astype(np.float32)


def area_resize(integral: np.ndarray, height: int, width: int) -> np.ndarray:
    """The whole image resampled to height x width, exactly as `interpolate(mode="area")` (MTCNN's pyramid).

    Same bins as `area_resample_boxes`, separably: row bands first, then columns. Pure numpy, so the
    face stage runs no torch intra-op parallel kernels and two threads can detect at once.
    Returns (C, height, width) float32.
    """
    r0, r1 = _area_bins(0, integral.shape[0] - 1, height)
    c0, c1 = _area_bins(0, integral.shape[1] - 1, width)
    bands = integral[r1] - integral[r0]  # (height, W+1, C): sums over each row bin
    sums = bands[:, c1] - bands[:, c0]  # (height, width, C)
    counts = ((r1 - r0)[:, None] * (c1 - c0)[None, :])[:, :, None]
    return np.ascontiguousarray((sums / counts).astype(np.float32).transpose(2, 0, 1))


def _normalise(pixels: np.ndarray) -> np.ndarray:
    """MTCNN's input scaling, (x - 127.5) / 128, in numpy: no torch intra-op kernel on the face stage."""
    return (pixels - np.float32(127.5)) * np.float32(0.0078125)


def _box_ranges(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """facenet-pytorch's `pad`: boxes clipped to the image, as half-open row/column ranges (+ a validity mask)."""
    whole = np.trunc(boxes[:, :4]).astype(np.int64)
    x, y = np.maximum(whole[:, 0], 1), np.maximum(whole[:, 1], 1)
    ex, ey = np.minimum(whole[:, 2], width), np.minimum(whole[:, 3], height)
    rows = np.stack([y - 1, ey], axis=1)
    cols = np.stack([x - 1, ex], axis=1)
    valid = (rows[:, 1] > rows[:, 0]) & (cols[:, 1] > cols[:, 0])
    rows[~valid] = (0, 1)  # never used downstream (facenet-pytorch fails on such boxes; we score them 0)
    cols[~valid] = (0, 1)
    return rows, cols, valid


# facenet-pytorch's box helpers (generateBoundingBox, rerec, bbreg), in float32 numpy: the same operations
# in the same order, so the same numbers, without ~100 tiny torch ops per image.
def _window_boxes(reg: np.ndarray, probs: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """P-Net windows scoring >= threshold: (N, 9) = x0, y0, x1, y1, score, 4 regressions (row-major order)."""
    ys, xs = np.nonzero(probs >= threshold)
    corner = np.stack([xs, ys], axis=1).astype(np.float32)
    q1 = np.floor((2 * corner + 1) / np.float32(scale))
    q2 = np.floor((2 * corner + 12) / np.float32(scale))
    return np.concatenate([q1, q2, probs[ys, xs][:, None], reg[:, ys, xs].T], axis=1)


def _square(boxes: np.ndarray) -> np.ndarray:
    """rerec: each box made square around its centre (side = the longer edge)."""
    boxes = boxes.copy()
    h, w = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    boxes[:, 0] = boxes[:, 0] + w * np.float32(0.5) - side * np.float32(0.5)
    boxes[:, 1] = boxes[:, 1] + h * np.float32(0.5) - side * np.float32(0.5)
    boxes[:, 2:4] = boxes[:, :2] + side[:, None]
    return boxes


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """bbreg: boxes moved by the network's regression, relative to their (inclusive) size."""
    boxes = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] = np.stack([boxes[:, 0] + reg[:, 0] * w, boxes[:, 1] + reg[:, 1] * h,
                             boxes[:, 2] + reg[:, 2] * w, boxes[:, 3] + reg[:, 3] * h], axis=1)
    return boxes


def _nms(boxes: np.ndarray, threshold: float) -> np.ndarray:
    """torchvision's NMS (what facenet-pytorch's batched_nms runs for one image) on (N, >=5) boxes, in numpy.

    The same float32 operations as torchvision's CPU kernel: boxes by descending score (stable), areas
    (x1 - x0) * (y1 - y0), a box dropped when its IoU with a kept one is > threshold.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    corners = np.ascontiguousarray(boxes[:, :4], dtype=np.float32)
    x0, y0, x1, y1 = corners.T
    areas = (x1 - x0) * (y1 - y0)
    order = np.argsort(-np.asarray(boxes[:, 4], dtype=np.float32), kind="stable")
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for position, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[position + 1:]
        w = np.maximum(np.float32(0), np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        h = np.maximum(np.float32(0), np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = w * h
        suppressed[rest[inter / (areas[i] + areas[rest] - inter) > np.float32(threshold)]] = True
    return np.array(keep, dtype=np.int64)


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """facenet-pytorch's `nms_numpy(..., method="Min")` (its O-Net step), the same operations in order:
    overlap over the smaller (inclusive-pixel) area, highest score kept first."""
    x1, y1, x2, y2 = (boxes[:, i].copy() for i in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    pick = []
    while order.size > 0:
        i = order[-1]
        pick.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = (w * h) / np.minimum(area[i], area[rest])
        order = rest[overlap <= threshold]
    return np.array(pick, dtype=np.int64)


def detect_one(mtcnn: Any, sessions: dict[str, Any], image: Any, min_window: float = 0.0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """facenet-pytorch's `detect_face` for one RGB image, with every R-/O-Net crop resampled in one step.

    `mtcnn` gives the settings (thresholds, factor, min_face_size); `sessions` its "pnet", "rnet" and
    "onet" networks on ONNX Runtime.

    Same pyramid, thresholds, NMS and regressions as facenet-pytorch (its box arithmetic redone in
    float32 numpy, its NMS calls kept), so boxes, scores and landmarks match `MTCNN.detect`.
    Returns (boxes (N, 4), scores (N,), landmarks (N, 5, 2)).

    min_window > 0 skips the pyramid levels whose P-Net window (12 px / scale) is smaller than that many
    pixels: the finest levels, which cost most (the first is ~half of all P-Net pixels) and only find
    small faces. The levels kept are the same scales as a full search.
    """
    pixels = np.asarray(image, dtype=np.uint8)
    height, width = pixels.shape[:2]
    integral = summed_area_table(pixels)
    thresholds, factor = mtcnn.thresholds, mtcnn.factor
    pnet, rnet, onet = (sessions[name] for name in ("pnet", "rnet", "onet"))
    empty = (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))

    # Stage 1: P-Net over the scale pyramid.
    scale = 12.0 / mtcnn.min_face_size
    shortest = min(height, width) * scale
    levels = []
    while shortest >= 12:
        if 12.0 / scale >= min_window:
            level = area_resize(integral, int(height * scale + 1), int(width * scale + 1))
            reg, probs = pnet.run(None, {"x": _normalise(level)[None]})
            found = _window_boxes(reg[0], probs[0, 1], scale, thresholds[0])
            levels.append(found[_nms(found, 0.5)])
        scale *= factor
        shortest *= factor
    boxes = np.concatenate(levels) if levels else np.zeros((0, 9), np.float32)
    boxes = boxes[_nms(boxes, 0.7)]
    if len(boxes) == 0:
        return empty
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = _square(np.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                              boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], axis=1))

    # Stage 2: R-Net on every candidate, resampled together.
    rows, cols, valid = _box_ranges(boxes, width, height)
    reg, probs = rnet.run(None, {"x": _normalise(area_resample_boxes(integral, rows, cols, 24))})
    score = probs[:, 1] * valid
    keep = score > thresholds[1]
    boxes, reg = np.concatenate([boxes[keep, :4], score[keep, None]], axis=1), reg[keep]
    pick = _nms(boxes, 0.7)
    if len(pick) == 0:
        return empty
    boxes = _square(_regress(boxes[pick], reg[pick]))

    # Stage 3: O-Net: final boxes, scores and the five landmarks.
    rows, cols, valid = _box_ranges(boxes, width, height)
    reg, points, probs = onet.run(None, {"x": _normalise(area_resample_boxes(integral, rows, cols, 48))})
    score = probs[:, 1] * valid
    keep = score > thresholds[2]
    if not keep.any():
        return empty
    boxes, reg, points = np.concatenate([boxes[keep, :4], score[keep, None]], axis=1), reg[keep], points[keep].T
    w_i, h_i = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    points_x = w_i[None] * points[:5] + boxes[:, 0][None] - 1
    points_y = h_i[None] * points[5:10] + boxes[:, 1][None] - 1
    points = np.stack([points_x, points_y]).transpose(2, 1, 0)
    boxes = _regress(boxes, reg)
    pick = _nms_min(boxes[:, :4], boxes[:, 4], 0.7)
    boxes, points = boxes[pick], points[pick]
    return boxes[:, :4].astype(np.float64), boxes[:, 4].astype(np.float64), points.astype(np.float64)


class FastMTCNN:
    """MTCNN on ONNX Runtime with vectorised crops; `detect` answers like facenet-pytorch's MTCNN.detect."""

    def __init__(self, mtcnn: Any, sessions: dict[str, Any]) -> None:
        self.mtcnn = mtcnn  # facenet-pytorch's MTCNN: its settings (its torch networks are not run)
        self.sessions = sessions

    def detect(self, image: Any, landmarks: bool = True, min_window: float = 0.0) -> tuple:
        boxes, scores, points = detect_one(self.mtcnn, self.sessions, image, min_window)
        if getattr(self.mtcnn, "select_largest", False):  # MTCNN.detect's order: largest box first
            order = np.argsort((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[::-1]
            boxes, scores, points = boxes[order], scores[order], points[order]
        if len(boxes) == 0:
            return (None, [None], None) if landmarks else (None, [None])
        return (boxes, scores, points) if landmarks else (boxes, scores)


def onnx_mtcnn(mtcnn: Any) -> FastMTCNN:
    """facenet-pytorch's MTCNN with its three networks on ONNX Runtime (1 thread each) and batched crops."""
    import torch

    sessions = {name: _load_session(getattr(mtcnn, name).eval(), torch.zeros(*shape), f"mtcnn-{name}", "x",
                                    [f"out{i}" for i in range(outputs)], axes, threads=1)
                for name, (shape, axes, outputs) in MTCNN_NETS.items()}
    return FastMTCNN(mtcnn, sessions)


def mtcnn_from_files(files: dict[str, Path]) -> FastMTCNN:
    """MTCNN from a checkpoint's exported networks ("pnet", "rnet", "onet" -> .onnx): numpy + onnxruntime only."""
    return FastMTCNN(MTCNNSettings(), {name: session_from_file(files[name], threads=1) for name in MTCNN_NETS})
