"""The face stage and the pixel stage of every checkpoint's preprocessing, in numpy and Pillow only.

`FaceProcessing` holds the settings saved in `preprocessor_config.json` and does the work:

    crop(image)   cap the resolution at the training images' (max_short_side) -> face detection +
                  framing (context crop, alignment or centre crop) -> canonical crop_size square
    finish_array  optional Kalman denoising -> resize to the model size -> normalise -> (C, H, W) float32

`processor.FaceImageProcessor` is it as a transformers image processor (what `pipeline()` and the Trainer
run); `LightProcessor` is it without transformers (the light runtime: numpy + Pillow + onnxruntime).
Both produce the same pixels.

Stage: preprocessing (imports data, runtime).
"""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.images import FULL_SIZE_KEY, NOTES_KEY, load_image

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

_detector_lock = threading.Lock()
_detectors: dict[str, Any] = {}


def shared_face_detector(backend: str | None = None, name: str = "mtcnn", onnx_files: dict[str, Path] | None = None):
    """One face detector per process per (name, backend) (see hf_detector.preprocessing.faces): weights load once.

    backend None = "auto": ONNX Runtime when installed (same boxes within 1e-3 px), so `pipeline()`,
    training crops and `Detector` (default backend) run the same face stage. `onnx_files`: the checkpoint's
    verified exports (runtime.files.validated_export): the networks load from them, without torch.
    """
    from ..runtime.onnx import face_backend

    backend = face_backend(backend)
    with _detector_lock:
        files = onnx_files if backend == "onnx" else None
        key = f"{name}:{backend}:{sorted((k, str(v)) for k, v in (files or {}).items())}"
        if key not in _detectors:
            from .faces.registry import make_face_detector

            # 2 torch threads on 2 busy cores made MTCNN 10x slower
            _detectors[key] = make_face_detector(name, backend=backend, num_threads=1, onnx_files=files)
        return _detectors[key]


def checked_face_detector(name: str) -> str:
    """A valid `face_detector` name (see hf_detector.preprocessing.faces.registry.FACE_DETECTORS)."""
    from .faces.registry import FACE_DETECTORS

    if name not in FACE_DETECTORS:
        raise ValueError(f"face_detector must be one of {', '.join(FACE_DETECTORS)}; got {name!r}")
    return name


def checked_detect_size(value: int) -> int:
    """A valid `face_detect_size`: the longest side MTCNN searches, at least 32 pixels."""
    pixels = int(value)
    if pixels < 32:
        raise ValueError(f"face_detect_size must be >= 32 pixels, got {value}")
    return pixels


def checked_short_side(value: int | None) -> int:
    """A valid `max_short_side`: 0 (None) = native resolution, else at least 32 pixels."""
    pixels = int(value or 0)
    if pixels < 0 or 0 < pixels < 32:
        raise ValueError(f"max_short_side must be 0 (off) or >= 32 pixels, got {value}")
    return pixels



def binomial_blur(array: np.ndarray) -> np.ndarray:
    """(H, W, C) float array blurred by the separable 3x3 binomial kernel [1, 2, 1] / 4 (edges replicated)."""
    padded = np.pad(array, ((1, 1), (1, 1), (0, 0)), mode="edge")
    rows = (padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]) / 4
    return (rows[:-2] + 2 * rows[1:-1] + rows[2:]) / 4


class FaceProcessing:
    """The settings and the work of the preprocessing (see the module docstring)."""

    def configure(
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
    ) -> None:
        if isinstance(size, int):
            size = {"height": size, "width": size}
        self.do_face_crop = do_face_crop
        self.face_align = face_align
        self.face_margin = float(face_margin)
        # > 0: frame the face with its surroundings instead of aligning it: a square of face_context x the
        # face box, cut inside the image (framing.context_crop); face_align and face_margin then do not apply.
        self.face_context = float(face_context or 0.0)
        if self.face_context < 0:
            raise ValueError(f"face_context must be 0 (aligned face) or > 0, got {face_context}")
        self.crop_size = int(crop_size)
        # Longest side of the copy MTCNN searches (the crop is cut from full resolution). Smaller is
        # faster but moves landmarks by a pixel or two: see docs/performance.md before lowering it.
        self.face_detect_size = checked_detect_size(face_detect_size)
        # Which face detector frames the face ("mtcnn" | "blazeface"): a checkpoint is only valid with the
        # one it was trained with, so it is saved with it (checkpoints without the key were MTCNN ones).
        self.face_detector = checked_face_detector(face_detector)
        # Inputs whose shorter side is longer than this are reduced to it before the face stage (0 =
        # never), then re-encoded as JPEG of this quality (0 = not): how every training image of
        # ../shared/data/faces was made. A native-resolution photo otherwise reaches the model with detail
        # and compression traces it never saw in training, and its scores drift (docs/results.md,
        # "Native resolution": fakes detected far less often).
        self.max_short_side = checked_short_side(max_short_side)
        self.reduced_jpeg_quality = int(reduced_jpeg_quality or 0)
        if not 0 <= self.reduced_jpeg_quality <= 100:
            raise ValueError(f"reduced_jpeg_quality must be 0 (off) to 100, got {reduced_jpeg_quality}")
        self.size = dict(size or {"height": 128, "width": 128})
        self.resample = int(resample)
        self.do_kalman = do_kalman
        self.kalman_process_noise = float(kalman_process_noise)
        self.kalman_measurement_noise = float(kalman_measurement_noise)
        # > 0: the model sees the high-pass residual of its input (pixels minus their 3x3 binomial blur, times
        # this gain, around mid-grey) instead of the picture: texture and resampling traces without the
        # colour, lighting and framing that let a model learn "the FFHQ look" (issue 24's residual lever).
        self.highpass_gain = float(highpass_gain or 0.0)
        if self.highpass_gain < 0:
            raise ValueError(f"highpass_gain must be 0 (off) or > 0, got {highpass_gain}")
        # True (with a gain): the residual comes as three more channels after the normalised picture (6 in all)
        # instead of replacing it, so an ImageNet stem keeps its colour input and learns the residual beside it.
        self.highpass_beside = bool(highpass_beside)
        if self.highpass_beside and not self.highpass_gain:
            raise ValueError("highpass_beside needs highpass_gain > 0 (the residual's gain)")
        self.do_normalize = do_normalize
        self.image_mean = list(image_mean or IMAGENET_MEAN)
        self.image_std = list(image_std or IMAGENET_STD)

    # -- stage 1: the face -------------------------------------------------------------------
    def crop(self, image: Image.Image | str | bytes, detector: Any = None):
        """Return a `FaceCrop` (canonical square crop + the face found, if any).

        `detector`: a face detector to use instead of the shared one of `self.face_detector` (e.g. the ONNX one).
        """
        from .faces.base import FaceCrop
        from .framing import center_crop, context_crop, crop_face

        rgb, factor = self.cap_resolution(load_image(image, reduce_to=self.max_short_side))
        if not self.do_face_crop:
            return FaceCrop(image=center_crop(rgb, self.crop_size), face=None, method="center")
        detector = detector or shared_face_detector(name=self.face_detector)
        if self.face_context:
            crop = context_crop(rgb, detector, size=self.crop_size, context=self.face_context,
                                detect_size=self.face_detect_size)
        else:
            crop = crop_face(rgb, detector, size=self.crop_size, margin=self.face_margin, align=self.face_align,
                             detect_size=self.face_detect_size)
        if crop.face is not None and factor != 1.0:  # report the face in the caller's image's pixels
            crop.face = crop.face.scaled(factor)
        return crop

    def describe_framing(self) -> str:
        """How this processor frames a face, in words (the app's About tab, the report)."""
        detector = {"mtcnn": "MTCNN", "blazeface": "BlazeFace"}.get(self.face_detector, self.face_detector)
        if not self.do_face_crop:
            return "a centre crop (no face detection)"
        if self.face_context:
            return (f"the face with its surroundings ({self.face_context:g}x the face box found by {detector}, "
                    "cut inside the image)")
        if self.face_align:
            return f"the face aligned on {detector}'s landmarks"
        return f"the face box found by {detector}"

    def cap_resolution(self, image: Image.Image) -> tuple[Image.Image, float]:
        """`image` reduced so its shorter side is at most max_short_side, and the factor back to it.

        The reduction is the one a dataset applies: antialiased (Lanczos), then a JPEG round trip at
        reduced_jpeg_quality. Images already small enough are returned as they are (never upscaled). A JPEG
        decoded at reduced size (`load_image(..., reduce_to=max_short_side)`) is reduced to the size its full
        picture would give, and the factor maps back to the full picture's pixels.
        """
        full_width, full_height = image.info.get(FULL_SIZE_KEY, image.size)
        short = min(full_width, full_height)
        if not self.max_short_side or short <= self.max_short_side:
            return image, full_width / image.width
        ratio = self.max_short_side / short
        size = (max(1, round(full_width * ratio)), max(1, round(full_height * ratio)))
        small = image.convert("RGB").resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        if self.reduced_jpeg_quality:
            buffer = io.BytesIO()
            small.save(buffer, format="JPEG", quality=self.reduced_jpeg_quality)
            small = Image.open(buffer)
            small.load()
        small.info.update({k: v for k, v in image.info.items() if k == NOTES_KEY})  # decoding notes travel on
        return small, full_width / size[0]

    # -- stage 2: pixels for the model -----------------------------------------------------------
    def finish_array(self, crop: Image.Image) -> np.ndarray:
        """One crop as the model's input: (C, H, W) float32, resized and normalised (numpy only)."""
        height, width = self.size["height"], self.size["width"]
        image = crop.convert("RGB")
        if self.do_kalman:
            from .kalman import kalman_denoise_pil

            image = kalman_denoise_pil(image, self.kalman_process_noise, self.kalman_measurement_noise)
        if image.size != (width, height):
            image = image.resize((width, height), resample=Image.Resampling(self.resample))
        return self._pixel_map(np.asarray(image, dtype=np.float32) / 255.0, offsets=True)

    def pixel_noise_effect(self, noise: np.ndarray) -> np.ndarray:
        """What adding `noise` ((H, W, 3), units of [0, 1]) to the resized picture adds to `finish_array`'s
        output, (C, H, W): everything after the resize is linear (residual, normalisation), so a view with
        invisible noise is the clean output plus this."""
        return self._pixel_map(noise, offsets=False)

    def _pixel_map(self, array: np.ndarray, offsets: bool) -> np.ndarray:
        """(H, W, 3) pixels in [0, 1] -> the model's (C, H, W): residual and normalisation. `offsets=False` drops
        the constant terms (mid-grey, the mean), leaving the linear part that noise goes through."""
        residual = self.highpass_gain * (array - binomial_blur(array)) if self.highpass_gain else None
        if residual is not None and not self.highpass_beside:
            array = 0.5 + residual if offsets else residual
        if self.do_normalize:
            if offsets:
                array = array - np.asarray(self.image_mean, np.float32)
            array = array / np.asarray(self.image_std, np.float32)
        if self.highpass_beside:  # zero-centred already: the residual is not normalised
            array = np.concatenate([array, residual], axis=2)
        return np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32)

    @property
    def num_channels(self) -> int:
        """Channels of `finish_array`'s output: 6 with the residual beside the picture, else 3."""
        return 6 if self.highpass_beside else 3


class LightProcessor(FaceProcessing):
    """`FaceImageProcessor` without transformers: same settings file, same pixels, numpy batches."""

    model_input_names = ["pixel_values"]

    def __init__(self, **settings: Any) -> None:
        known = FaceProcessing.configure.__code__.co_varnames[1:FaceProcessing.configure.__code__.co_argcount]
        self.configure(**{key: value for key, value in settings.items() if key in known})

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> LightProcessor:
        """The checkpoint's `preprocessor_config.json` (only our own processor's settings are read)."""
        settings = json.loads((Path(path) / "preprocessor_config.json").read_text(encoding="utf-8"))
        if settings.get("image_processor_type", "FaceImageProcessor") != "FaceImageProcessor":
            raise ValueError(f"{path}: not a FaceImageProcessor checkpoint")
        return cls(**settings)

    def finish(self, crops: list[Image.Image]) -> np.ndarray:
        return np.stack([self.finish_array(crop) for crop in crops])

    def __call__(self, images: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        if not isinstance(images, (list, tuple)):
            images = [images]
        return {"pixel_values": self.finish([self.crop(image).image for image in images])}
