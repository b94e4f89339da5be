"""Framing: every face, real or fake, cut out the same way (the face with its surroundings, or aligned).

Why this exists: in the training data the GAN fakes are FFHQ-aligned while many reals are tight
crops, so a classifier can learn "framing" instead of "synthetic". Two framings remove that cue:
`context_crop` (the default) cuts the square of `context` x the face box inside the image, never padded;
`crop_face` maps the landmarks of every face onto one canonical template (a similarity transform:
rotation, uniform scale and translation), so position, scale and roll are the same for both classes.
Fallbacks: no landmarks -> square box crop ("box"); no face -> centre square crop ("center").
The detectors themselves are in `hf_detector.preprocessing.faces`.

Stage: preprocessing (imports data, runtime).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from PIL import Image

from .faces.base import Face, FaceCrop
from .faces.base import to_rgb as _to_rgb
from .faces.blazeface import BlazeFaceDetector
from .faces.mtcnn import FaceDetector, default_detector

__all__ = [
    "CANONICAL_LANDMARKS",
    "BLAZEFACE_LANDMARKS",
    "center_crop",
    "context_crop",
    "crop_face",
    "landmark_transform",
]

# Canonical 5-point template (left eye, right eye, nose, mouth left, mouth right) in a unit
# "face square": the MTCNN face box made square (side = box height). Measured as the mean
# landmark position relative to the MTCNN box over all eight sources of the dev set, then made
# left/right symmetric. Because it is box-relative, the "aligned" and "box" fallbacks frame a
# face the same way. With margin 0.3 the eyes land at ~43% height, the box (brows to chin) spans
# 19%-81%, and hair/background are kept around it.
CANONICAL_LANDMARKS = np.array(
    [[0.331, 0.390], [0.669, 0.390], [0.500, 0.590], [0.346, 0.750], [0.654, 0.750]],
    dtype=np.float64,
)

# BlazeFace's alignment points (eye on the image's left, eye on its right, nose tip, mouth centre) in
# the same unit face square: the mean of BlazeFace's keypoints mapped through MTCNN's alignment over
# the 5,561 dev-set photos where both found the same face, made left/right symmetric. So a BlazeFace
# crop frames a face like an MTCNN crop on average. (Its ear points are not used: they move with yaw.)
BLAZEFACE_LANDMARKS = np.array([[0.340, 0.412], [0.660, 0.412], [0.500, 0.592], [0.500, 0.753]], dtype=np.float64)

TEMPLATES = {"mtcnn": CANONICAL_LANDMARKS, "blazeface": BLAZEFACE_LANDMARKS}

# Below this warp scale, pre-shrink with INTER_AREA: cv2.warpAffine has no real area filter
# (it treats INTER_AREA as bilinear), so big reductions would alias.
_AREA_SHRINK_BELOW = 0.8

def _umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Closed-form least-squares similarity src->dst (Umeyama 1991), as a 2x3 matrix.

    Deterministic, unlike cv2.estimateAffinePartial2D's default RANSAC.
    """
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # forbid reflections
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = float((s * d).sum() / var_src) if var_src > 0 else 0.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def _template(size: int, margin: float, scheme: str = "mtcnn") -> np.ndarray:
    """Canonical landmarks in output pixels: face square padded by `margin` on each side."""
    return (TEMPLATES[scheme] + margin) / (1.0 + 2.0 * margin) * size


def landmark_transform(landmarks: np.ndarray, size: int = 256, margin: float = 0.3,
                       scheme: str = "mtcnn") -> np.ndarray | None:
    """2x3 similarity matrix mapping image pixels to the aligned output, or None if degenerate."""
    template = TEMPLATES[scheme]
    pts = np.asarray(landmarks, dtype=np.float64).reshape(len(template), 2)
    if not np.all(np.isfinite(pts)):
        return None
    eye_distance = float(np.linalg.norm(pts[1] - pts[0]))
    if eye_distance < 2.0:  # collapsed landmarks: scale and rotation would be meaningless
        return None
    matrix = _umeyama_similarity(pts, _template(size, margin, scheme))
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if not np.isfinite(matrix).all() or scale <= 1e-6:
        return None
    return matrix


def _box_transform(box: tuple[float, float, float, float], size: int, margin: float) -> np.ndarray:
    """Scale+translation mapping the box, made square (side = longer edge) and padded, to the output."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0, 1.0) * (1.0 + 2.0 * margin)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    s = size / side
    return np.array([[s, 0.0, size / 2.0 - s * cx], [0.0, s, size / 2.0 - s * cy]])


def _reflect_range(lo: float, hi: float, n: int) -> tuple[int, int]:
    """Source index range needed to sample [lo, hi] with BORDER_REFLECT101 (one reflection)."""
    lo_i, hi_i = int(np.floor(lo)) - 2, int(np.ceil(hi)) + 2
    if lo_i < 0:
        hi_i = max(hi_i, -lo_i)
    if hi_i > n - 1:
        lo_i = min(lo_i, 2 * (n - 1) - hi_i)
    return max(0, lo_i), min(n - 1, hi_i)


_BORDERS = {
    "reflect": cv2.BORDER_REFLECT_101,
    "replicate": cv2.BORDER_REPLICATE,
    "constant": cv2.BORDER_CONSTANT,
}


def _outside_fraction(matrix: np.ndarray, size: int, width: int, height: int, grid: int = 32) -> float:
    """Share of output pixels whose source lies outside the image (sampled on a grid x grid lattice)."""
    inverse = cv2.invertAffineTransform(matrix)
    coords = (np.arange(grid) + 0.5) * size / grid - 0.5
    xs, ys = np.meshgrid(coords, coords)
    sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    outside = (sx < -0.5) | (sx > width - 0.5) | (sy < -0.5) | (sy > height - 0.5)
    return float(outside.mean())


def _warp(rgb: np.ndarray, matrix: np.ndarray, size: int, border: str = "reflect") -> np.ndarray:
    """warpAffine with reflected borders; pre-shrinks the needed region with INTER_AREA when reducing."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    height, width = rgb.shape[:2]
    if scale < _AREA_SHRINK_BELOW and min(height, width) > 1:
        # Footprint of the output square in the source, cropped first so a 6000x4000 photo costs
        # no more than its face region.
        inverse = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
        src = corners @ inverse.T
        ax0, ax1 = _reflect_range(src[:, 0].min(), src[:, 0].max(), width)
        ay0, ay1 = _reflect_range(src[:, 1].min(), src[:, 1].max(), height)
        roi = rgb[ay0 : ay1 + 1, ax0 : ax1 + 1]
        new_w = max(1, round(roi.shape[1] * scale))
        new_h = max(1, round(roi.shape[0] * scale))
        shrunk = cv2.resize(roi, (new_w, new_h), interpolation=cv2.INTER_AREA)
        fx, fy = new_w / roi.shape[1], new_h / roi.shape[0]
        # pixel-centre convention: x' = (x + 0.5) * f - 0.5
        to_shrunk = np.array([[fx, 0.0, (0.5 - ax0) * fx - 0.5], [0.0, fy, (0.5 - ay0) * fy - 0.5]])
        inv_to_shrunk = cv2.invertAffineTransform(to_shrunk)
        matrix = matrix @ np.vstack([inv_to_shrunk, [0.0, 0.0, 1.0]])
        rgb = shrunk
    mode = _BORDERS[border]
    if mode == cv2.BORDER_REFLECT_101 and min(rgb.shape[:2]) < 2:
        mode = cv2.BORDER_REPLICATE  # reflect-101 needs two pixels per axis
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=0)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """Central square of the shorter side, resized to size x size (RGB)."""
    image = _to_rgb(image)
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    if side == size:
        return square
    resample = Image.Resampling.BOX if side > size else Image.Resampling.BILINEAR
    return square.resize((size, size), resample)


def largest_face(image: Image.Image, detector: Any = None, detect_size: int | None = None) -> Face | None:
    """The largest face of an RGB image (None if none), from `detector` (default: the shared MTCNN)."""
    detector = detector or default_detector()
    # only pass the size when set: any object with `detect(image)` can stand in for the detector
    options = {} if detect_size is None else {"max_side": detect_size}
    if hasattr(detector, "largest"):
        return detector.largest(image, **options)
    faces = detector.detect(image, **options)
    return faces[0] if faces else None


def context_square(box: tuple[float, float, float, float], width: int, height: int,
                   context: float) -> tuple[int, int, int, int]:
    """The square around a face box with side `context` x its longer edge, moved to lie inside the image
    and at most its shorter side: (left, top, right, bottom) in whole pixels."""
    x0, y0, x1, y1 = box
    side = min(max(x1 - x0, y1 - y0, 1.0) * context, width, height)
    side = max(1, int(round(side)))
    left = int(round(min(max((x0 + x1 - side) / 2.0, 0.0), width - side)))
    top = int(round(min(max((y0 + y1 - side) / 2.0, 0.0), height - side)))
    return left, top, left + side, top + side


def context_crop(image: Image.Image, detector: FaceDetector | BlazeFaceDetector | None = None, size: int = 256,
                 context: float = 2.5, detect_size: int | None = None) -> FaceCrop:
    """The largest face with its surroundings, cut from the image itself: never padded, never aligned.

    The square is `context` x the face box (hair, ears, background: where generators slip most), kept
    inside the image, so no border fill exists to tell tight-crop photos from wide ones. A portrait whose
    face fills the frame becomes its central square; a wide press photo becomes the region around the
    face. No face found: the central square ("center").
    """
    if size < 1 or not context > 0:
        raise ValueError(f"need size >= 1 and context > 0, got size={size}, context={context}")
    image = _to_rgb(image)
    face = largest_face(image, detector, detect_size)
    if face is None:
        return FaceCrop(image=center_crop(image, size), face=None, method="center")
    left, top, right, bottom = context_square(face.box, image.width, image.height, context)
    square = image.crop((left, top, right, bottom))
    if square.width != size:
        resample = Image.Resampling.BOX if square.width > size else Image.Resampling.BILINEAR
        square = square.resize((size, size), resample)
    return FaceCrop(image=square, face=face, method="context")


def crop_face(
    image: Image.Image,
    detector: FaceDetector | None = None,
    size: int = 256,
    margin: float = 0.3,
    align: bool = True,
    *,
    border: str = "reflect",
    detect_size: int | None = None,
) -> FaceCrop:
    """Largest face framed canonically: "aligned" (landmarks), else "box", else "center" crop.

    `margin` is the context kept around the face square on each side, as a fraction of its side
    (negative = tighter than the face box: less border fill needed for tight-crop photos).
    `border` fills what lies outside the image: "reflect" (default, no black corners),
    "replicate" or "constant" (black). `detect_size`: longest side of the copy the detector searches
    (None = the detector's own, 640); the crop itself is always cut from the full-resolution image.
    Always returns an RGB size x size image, for any input size.
    """
    if border not in _BORDERS:
        raise ValueError(f"border must be one of {sorted(_BORDERS)}, got {border!r}")
    if size < 1 or not -0.4 < margin < 10:  # margin <= -0.5 would collapse the face square
        raise ValueError(f"need size >= 1 and -0.4 < margin < 10, got size={size}, margin={margin}")
    image = _to_rgb(image)
    face = largest_face(image, detector, detect_size)
    if face is None:
        return FaceCrop(image=center_crop(image, size), face=None, method="center")
    rgb = np.asarray(image)
    matrix: Any = None
    method = "box"
    if align and face.landmarks is not None:
        matrix = landmark_transform(face.landmarks, size, margin, face.scheme)
        if matrix is not None:
            method = "aligned"
    if matrix is None:
        matrix = _box_transform(face.box, size, margin)
    outside = _outside_fraction(matrix, size, image.width, image.height)
    out = _warp(rgb, matrix, size, border)
    return FaceCrop(
        image=Image.fromarray(np.ascontiguousarray(out)), face=face, method=method, outside=outside
    )


def ffhq_eyes_mouth(face: Face) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(eye on the image's left, eye on its right, mouth centre) of a face with landmarks, else None."""
    if face.landmarks is None:
        return None
    points = np.asarray(face.landmarks, dtype=np.float64)
    mouth = points[3] if face.scheme == "blazeface" else (points[3] + points[4]) / 2  # MTCNN: mouth corners
    return points[0], points[1], mouth


def ffhq_align(image: Image.Image, eye_left: np.ndarray, eye_right: np.ndarray, mouth: np.ndarray,
               size: int = 256) -> Image.Image:
    """The face framed the way the FFHQ dataset framed its photos (Karras et al., 2019, `recreate_aligned_images`):
    an oriented square of max(2 x eye distance, 1.8 x eye-to-mouth) on either side of a point just below the eyes;
    where it leaves the picture, reflected pixels blurred and faded to the median colour, as FFHQ padded.

    Why: almost every FFHQ-framed face in the training data is a GAN's. Real photos put in that frame (the
    `real_ffhq_reframe` augmentation) stop the frame itself from meaning "fake".
    """
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = mouth - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x = x / max(np.hypot(*x), 1e-6)
    x = x * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    centre = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])
    qsize = float(np.hypot(*x) * 2)
    rgb = np.asarray(_to_rgb(image), dtype=np.float32)
    height, width = rgb.shape[:2]
    # padding as FFHQ's `enable_padding` branch: reflect, then blur and fade the padded band to the median colour
    border = max(int(np.rint(qsize * 0.1)), 3)
    pad = np.maximum([border - np.floor(quad[:, 0].min()), border - np.floor(quad[:, 1].min()),
                      np.ceil(quad[:, 0].max()) - width + border, np.ceil(quad[:, 1].max()) - height + border], 0)
    if pad.max() > border - 4:
        left, top, right, bottom = (int(v) for v in np.maximum(pad, int(np.rint(qsize * 0.3))))
        rgb = cv2.copyMakeBorder(rgb, top, bottom, left, right, cv2.BORDER_REFLECT_101)
        h, w = rgb.shape[:2]
        yy, xx = np.ogrid[:h, :w]
        mask = np.maximum(1.0 - np.minimum(xx / left, (w - 1 - xx) / right),
                          1.0 - np.minimum(yy / top, (h - 1 - yy) / bottom)).astype(np.float32)[..., None]
        blurred = cv2.GaussianBlur(rgb, (0, 0), max(qsize * 0.02, 0.5))
        rgb = rgb + (blurred - rgb) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        rgb = rgb + (np.median(rgb, axis=(0, 1)) - rgb) * np.clip(mask, 0.0, 1.0)
        quad = quad + [left, top]
    source = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
    out = source.transform((size * 2, size * 2), Image.Transform.QUAD, tuple((quad + 0.5).flatten()),
                           Image.Resampling.BILINEAR)
    return out.resize((size, size), Image.Resampling.LANCZOS)
