"""FaceImageProcessor: the one preprocessing path, saved with every checkpoint.

`pipeline("image-classification")`, `hf-detector predict/evaluate`, the app and the Trainer's
evaluation all run this preprocessing, so a probability is the same wherever it is computed. It is split in
two stages so that training can cache the expensive face stage once and augment in between:

    crop(image)   cap the resolution at the training images' (max_short_side) -> face detection +
                  framing (context crop, alignment or centre crop) -> canonical crop_size square
    finish(crops) optional Kalman denoising -> resize to the model size -> optional high-pass residual ->
                  tensor -> normalise

The work itself is `core.FaceProcessing` (numpy + Pillow); this class makes it a transformers image
processor (torch tensors, `save_pretrained`, `AutoImageProcessor`). `core.LightProcessor` is the same
without transformers, for the light runtime.

Stage: preprocessing (imports data, runtime).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import BaseImageProcessor
from transformers.image_processing_base import BatchFeature

from .core import (  # noqa: F401  (the checks and the shared detector are part of this module's interface)
    IMAGENET_MEAN,
    IMAGENET_STD,
    FaceProcessing,
    checked_detect_size,
    checked_face_detector,
    checked_short_side,
    shared_face_detector,
)


class FaceImageProcessor(FaceProcessing, BaseImageProcessor):
    """Detect and frame the face, then resize and normalise for the classifier."""

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        do_face_crop: bool = True,
        face_align: bool = True,
        face_margin: float = -0.25,
        face_context: float = 0.0,
        crop_size: int = 128,
        face_detect_size: int = 640,
        face_detector: str = "mtcnn",
        max_short_side: int = 256,
        reduced_jpeg_quality: int = 95,
        size: dict[str, int] | int | None = None,
        resample: int = Image.Resampling.BILINEAR,
        do_kalman: bool = False,
        kalman_process_noise: float = 1e-3,
        kalman_measurement_noise: float = 1e-2,
        do_normalize: bool = True,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        highpass_gain: float = 0.0,
        highpass_beside: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.configure(
            do_face_crop=do_face_crop, face_align=face_align, face_margin=face_margin, face_context=face_context,
            crop_size=crop_size, face_detect_size=face_detect_size, face_detector=face_detector,
            max_short_side=max_short_side, reduced_jpeg_quality=reduced_jpeg_quality, size=size, resample=resample,
            do_kalman=do_kalman, kalman_process_noise=kalman_process_noise,
            kalman_measurement_noise=kalman_measurement_noise, do_normalize=do_normalize, image_mean=image_mean,
            image_std=image_std, highpass_gain=highpass_gain, highpass_beside=highpass_beside)

    # -- stage 2: pixels for the model -----------------------------------------------------------
    def finish_one(self, crop: Image.Image) -> torch.Tensor:
        return torch.from_numpy(self.finish_array(crop))

    def finish(self, crops: list[Image.Image]) -> torch.Tensor:
        return torch.stack([self.finish_one(c) for c in crops])

    def preprocess(self, images: Any, return_tensors: str | None = "pt", **kwargs: Any) -> BatchFeature:
        if not isinstance(images, (list, tuple)):
            images = [images]
        pixel_values = self.finish([self.crop(image).image for image in images])
        if return_tensors == "np":
            return BatchFeature({"pixel_values": np.asarray(pixel_values.numpy())}, tensor_type="np")
        return BatchFeature({"pixel_values": pixel_values}, tensor_type="pt")

    def __call__(self, images: Any, *args: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, *args, **kwargs)
