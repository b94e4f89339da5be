"""FaceImageProcessor: the one preprocessing path, saved with every checkpoint.

`pipeline("image-classification")`, `hf-detector predict/evaluate`, the app and the Trainer's
evaluation all run this class, so a probability is the same wherever it is computed. It is split in
two stages so that training can cache the expensive face stage once and augment in between:

    crop(image)   face detection + landmark alignment (or centre crop) -> canonical crop_size square
    finish(crops) optional Kalman denoising -> resize to the model size -> tensor -> normalise
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import BaseImageProcessor
from transformers.image_processing_base import BatchFeature

from .images import load_image

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

_detector_lock = threading.Lock()
_detectors: dict[str, Any] = {}


def shared_face_detector(backend: str | None = None):
    """One face detector per process (per backend, see hf_detector.fast): MTCNN weights load once.

    backend None = "auto": ONNX Runtime when installed (same boxes within 1e-3 px), so `pipeline()`,
    training crops and `Detector` (default backend) run the same face stage.
    """
    if backend in (None, "auto"):
        from .fast import resolve_backend

        backend = resolve_backend("auto")
    with _detector_lock:
        if backend not in _detectors:
            from .faces import FaceDetector

            # 2 torch threads on 2 busy cores made it 10x slower
            _detectors[backend] = FaceDetector(num_threads=1, backend=backend)
        return _detectors[backend]


class FaceImageProcessor(BaseImageProcessor):
    """Detect, align and crop the face, then resize and normalise for the classifier."""

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        do_face_crop: bool = True,
        face_align: bool = True,
        face_margin: float = -0.25,
        crop_size: int = 128,
        face_detect_size: int = 640,
        size: dict[str, int] | int | None = None,
        resample: int = Image.Resampling.BILINEAR,
        do_kalman: bool = False,
        kalman_process_noise: float = 1e-3,
        kalman_measurement_noise: float = 1e-2,
        do_normalize: bool = True,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(size, int):
            size = {"height": size, "width": size}
        self.do_face_crop = do_face_crop
        self.face_align = face_align
        self.face_margin = float(face_margin)
        self.crop_size = int(crop_size)
        # Longest side of the copy MTCNN searches (the crop is cut from full resolution). Smaller is
        # faster but moves landmarks by a pixel or two: see docs/performance.md before lowering it.
        self.face_detect_size = int(face_detect_size)
        if self.face_detect_size < 32:
            raise ValueError(f"face_detect_size must be >= 32 pixels, got {face_detect_size}")
        self.size = dict(size or {"height": 128, "width": 128})
        self.resample = int(resample)
        self.do_kalman = do_kalman
        self.kalman_process_noise = float(kalman_process_noise)
        self.kalman_measurement_noise = float(kalman_measurement_noise)
        self.do_normalize = do_normalize
        self.image_mean = list(image_mean or IMAGENET_MEAN)
        self.image_std = list(image_std or IMAGENET_STD)

    # -- stage 1: the face -------------------------------------------------------------------
    def crop(self, image: Image.Image | str | bytes, detector: Any = None):
        """Return a `faces.FaceCrop` (canonical square crop + the face found, if any).

        `detector`: a `faces.FaceDetector` to use instead of the shared one (e.g. the ONNX one).
        """
        from .faces import FaceCrop, center_crop, crop_face

        rgb = load_image(image)
        if not self.do_face_crop:
            return FaceCrop(image=center_crop(rgb, self.crop_size), face=None, method="center")
        return crop_face(rgb, detector or shared_face_detector(), size=self.crop_size, margin=self.face_margin,
                         align=self.face_align, detect_size=self.face_detect_size)

    # -- stage 2: pixels for the model -----------------------------------------------------------
    def finish_one(self, crop: Image.Image) -> torch.Tensor:
        height, width = self.size["height"], self.size["width"]
        image = crop.convert("RGB")
        if self.do_kalman:
            from .transforms import kalman_denoise_pil

            image = kalman_denoise_pil(image, self.kalman_process_noise, self.kalman_measurement_noise)
        if image.size != (width, height):
            image = image.resize((width, height), resample=Image.Resampling(self.resample))
        array = np.asarray(image, dtype=np.float32) / 255.0
        if self.do_normalize:
            array = (array - np.asarray(self.image_mean, np.float32)) / np.asarray(self.image_std, np.float32)
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))

    def finish(self, crops: list[Image.Image]) -> torch.Tensor:
        return torch.stack([self.finish_one(c) for c in crops])

    def preprocess(self, images: Any, return_tensors: str | None = "pt", **kwargs: Any) -> BatchFeature:
        if not isinstance(images, (list, tuple)):
            images = [images]
        pixel_values = self.finish([self.crop(image).image for image in images])
        if return_tensors == "np":
            return BatchFeature({"pixel_values": pixel_values.numpy()}, tensor_type="np")
        return BatchFeature({"pixel_values": pixel_values}, tensor_type="pt")

    def __call__(self, images: Any, *args: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, *args, **kwargs)
