"""Train-time augmentation (Kalman denoising is in `hf_detector.preprocessing.kalman`).

Augmentation exists to break the dataset's shortcuts (see the data README): reals are often
small and soft, fakes sharp; reals tight crops, fakes FFHQ-framed. Random rescaling, blur and
JPEG re-encoding applied to BOTH classes make "sharpness" and "compression" useless as cues;
flips, small rotations, crops and zoom-out do the same for residual framing differences.

Every op is a plain function `op(image, rng) -> image` taking a `random.Random` or a numpy
`Generator`, so results are reproducible from a seed.

Stage: preprocessing (imports data; `real_ffhq_reframe` uses this stage's faces and framing).
"""

from __future__ import annotations

import dataclasses
import io
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from ..data.labels import FAKE_ID, REAL_ID

__all__ = [
    "AugmentationConfig",
    "TrainAugmentation",
    "build_train_augmentation",
    "colour_jitter",
    "horizontal_flip",
    "random_blur",
    "random_jpeg",
    "random_rescale",
    "random_resized_crop",
    "random_rotate",
    "random_sharpen",
    "random_zoom_out",
]

Rng = random.Random | np.random.Generator

_RESAMPLE_FILTERS = (
    Image.Resampling.NEAREST,
    Image.Resampling.BILINEAR,
    Image.Resampling.BICUBIC,
    Image.Resampling.LANCZOS,
    Image.Resampling.BOX,
    Image.Resampling.HAMMING,
)


# --- rng helpers: one code path for random.Random and numpy Generators ---------------------------


def _uniform(rng: Rng, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _integer(rng: Rng, low: int, high: int) -> int:
    """Uniform integer in [low, high] inclusive."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(low, high + 1))
    return rng.randint(low, high)


def _choice(rng: Rng, options: Sequence):
    return options[_integer(rng, 0, len(options) - 1)]


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _affine_reflect(image: Image.Image, matrix: np.ndarray) -> Image.Image:
    """Affine warp, same size, reflected borders (no black corners for the model to notice)."""
    array = np.asarray(_rgb(image))
    height, width = array.shape[:2]
    border = cv2.BORDER_REFLECT_101 if min(height, width) > 1 else cv2.BORDER_REPLICATE
    out = cv2.warpAffine(array, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=border)
    return Image.fromarray(out)


# --- individual ops --------------------------------------------------------------------------------


def horizontal_flip(image: Image.Image, rng: Rng | None = None) -> Image.Image:
    """Mirror left/right (faces are symmetric enough; the rng is unused, kept for a uniform API)."""
    return _rgb(image).transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def random_rotate(image: Image.Image, rng: Rng, max_degrees: float = 10.0) -> Image.Image:
    """Rotate about the centre by U(-max_degrees, max_degrees), reflecting the borders."""
    angle = _uniform(rng, -max_degrees, max_degrees)
    width, height = image.size
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), angle, 1.0)
    return _affine_reflect(image, matrix)


def random_resized_crop(
    image: Image.Image,
    rng: Rng,
    scale: tuple[float, float] = (0.8, 1.0),
    ratio: tuple[float, float] = (0.9, 1.0 / 0.9),
) -> Image.Image:
    """Crop a random region of area fraction `scale` (aspect `ratio`) and resize back to the input size."""
    image = _rgb(image)
    width, height = image.size
    area = _uniform(rng, *scale) * width * height
    aspect = float(np.exp(_uniform(rng, np.log(ratio[0]), np.log(ratio[1]))))
    crop_w = int(round(min(width, max(1.0, np.sqrt(area * aspect)))))
    crop_h = int(round(min(height, max(1.0, np.sqrt(area / aspect)))))
    left = _integer(rng, 0, width - crop_w)
    top = _integer(rng, 0, height - crop_h)
    box = (left, top, left + crop_w, top + crop_h)
    return image.resize((width, height), Image.Resampling.BILINEAR, box=box)


def random_zoom_out(image: Image.Image, rng: Rng, scale: tuple[float, float] = (0.7, 1.0)) -> Image.Image:
    """Shrink the content by U(scale) at a random position, filling with reflections.

    Why: tight-crop reals need reflected fill after face alignment while FFHQ-style fakes do not;
    adding the same kind of fill to every class stops "mirrored border = real" from being learned.
    """
    width, height = image.size
    factor = _uniform(rng, *scale)
    tx = _uniform(rng, 0.0, (1.0 - factor) * width)
    ty = _uniform(rng, 0.0, (1.0 - factor) * height)
    matrix = np.array([[factor, 0.0, tx], [0.0, factor, ty]])
    return _affine_reflect(image, matrix)


def random_jpeg(image: Image.Image, rng: Rng, quality: tuple[int, int] = (30, 100)) -> Image.Image:
    """Real JPEG encode/decode at a random quality in [quality[0], quality[1]]."""
    q = _integer(rng, int(quality[0]), int(quality[1]))
    buffer = io.BytesIO()
    _rgb(image).save(buffer, format="JPEG", quality=q)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def random_blur(image: Image.Image, rng: Rng, sigma: tuple[float, float] = (0.0, 3.0)) -> Image.Image:
    """Gaussian blur with standard deviation U(sigma) (PIL's radius is the standard deviation)."""
    s = _uniform(rng, *sigma)
    image = _rgb(image)
    if s < 0.05:  # visually a no-op; skip the work
        return image.copy()
    return image.filter(ImageFilter.GaussianBlur(radius=s))


def random_rescale(image: Image.Image, rng: Rng, factor: tuple[float, float] = (0.25, 1.0)) -> Image.Image:
    """Downscale by U(factor) then back up, with random resampling filters each way.

    Makes sharp fakes look like the small, upscaled real photos (and vice versa is covered by blur).
    """
    image = _rgb(image)
    width, height = image.size
    f = _uniform(rng, *factor)
    small = (max(1, round(width * f)), max(1, round(height * f)))
    down = _choice(rng, _RESAMPLE_FILTERS)
    up = _choice(rng, _RESAMPLE_FILTERS)
    return image.resize(small, down).resize((width, height), up)


def random_sharpen(image: Image.Image, rng: Rng, percent: tuple[int, int] = (50, 200)) -> Image.Image:
    """Unsharp mask (radius U(0.5, 2), strength U(percent)): a soft photo made crisp, as phones and editors do."""
    radius = _uniform(rng, 0.5, 2.0)
    amount = _integer(rng, int(percent[0]), int(percent[1]))
    return _rgb(image).filter(ImageFilter.UnsharpMask(radius=radius, percent=amount, threshold=0))


def colour_jitter(image: Image.Image, rng: Rng, strength: float = 0.1) -> Image.Image:
    """Light brightness/contrast/saturation jitter, each factor in U(1 - strength, 1 + strength)."""
    image = _rgb(image)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(_uniform(rng, 1.0 - strength, 1.0 + strength))
    return image


# --- composition -------------------------------------------------------------------------------------

_PROBABILITY_FIELDS = ("flip", "rotate", "resized_crop", "zoom_out", "colour", "rescale", "blur", "jpeg",
                       "fake_degrade", "real_sharpen", "real_ffhq_reframe")


def check_probability(name: str, value: float) -> float:
    """`value` as a float when it lies in [0, 1]; otherwise a ValueError that names `name`.

    The one range rule for augmentation probabilities: the config applies it, and the training CLI applies
    it to its flags at parse time, before any data is read, so the error names the flag the user typed.
    """
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    return value


@dataclass
class AugmentationConfig:
    """Probability of each op (a bool switch also works: True = its default probability, False = off).

    Applied in this order: geometry (flip, rotate, resized_crop, zoom_out), colour, the class-conditional
    quality ops, then degradations (rescale, blur, JPEG last, as a real pipeline would compress last).

    The class-conditional ops attack the sharpness shortcut from both sides (data README: every fake is
    sharp, most reals are small and soft): `fake_degrade` makes some fakes soft (down-up rescale), so
    "soft = real" stops holding, and `real_sharpen` makes some reals crisp, so "sharp = fake" stops holding.
    """

    flip: float = 0.5
    rotate: float = 0.5
    resized_crop: float = 0.5
    zoom_out: float = 0.25
    colour: float = 0.5
    rescale: float = 0.5
    blur: float = 0.5
    jpeg: float = 0.5
    rotate_degrees: float = 10.0
    crop_scale: tuple[float, float] = (0.8, 1.0)
    zoom_out_scale: tuple[float, float] = (0.7, 1.0)
    colour_strength: float = 0.1
    rescale_factor: tuple[float, float] = (0.25, 1.0)
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    jpeg_quality: tuple[int, int] = (30, 100)
    fake_degrade: float = 0.0
    real_sharpen: float = 0.0
    fake_degrade_factor: tuple[float, float] = (0.35, 0.75)
    real_ffhq_reframe: float = 0.0

    def __post_init__(self) -> None:
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in _PROBABILITY_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool):
                value = defaults[name] if value else 0.0
            setattr(self, name, check_probability(f"AugmentationConfig.{name}", value))

    @classmethod
    def none(cls) -> AugmentationConfig:
        """Every op off: the augmentation is the identity."""
        return cls(**{name: 0.0 for name in _PROBABILITY_FIELDS})

    @property
    def enabled(self) -> bool:
        return any(getattr(self, name) > 0 for name in _PROBABILITY_FIELDS)


class TrainAugmentation:
    """Callable PIL -> PIL applying the configured ops; a class (not a closure) so it pickles (the face
    detector of `real_ffhq_reframe` is made on first use, in the process that uses it).

    Note: with DataLoader workers each worker gets a copy of the same rng state; call
    `reseed(seed + worker_id)` in a `worker_init_fn` to decorrelate them.
    """

    def __init__(self, config: AugmentationConfig, seed: int | None = None) -> None:
        self.config = config
        self.rng = random.Random(seed)
        self._detector = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_detector": None}

    def _reframe(self, image: Image.Image) -> Image.Image:
        """A real photo put in FFHQ's frame (framing.ffhq_align), at its own size; unchanged without a face."""
        from .faces.blazeface import BlazeFaceDetector
        from .framing import ffhq_align, ffhq_eyes_mouth

        if self._detector is None:
            self._detector = BlazeFaceDetector()
        face = self._detector.largest(image)
        points = ffhq_eyes_mouth(face) if face is not None else None
        return image if points is None else ffhq_align(image, *points, size=max(image.size))

    def reseed(self, seed: int | None) -> None:
        self.rng = random.Random(seed)

    def _steps(self) -> list[tuple[float, Callable[[Image.Image, Rng], Image.Image]]]:
        c = self.config
        return [
            (c.flip, horizontal_flip),
            (c.rotate, lambda im, r: random_rotate(im, r, c.rotate_degrees)),
            (c.resized_crop, lambda im, r: random_resized_crop(im, r, c.crop_scale)),
            (c.zoom_out, lambda im, r: random_zoom_out(im, r, c.zoom_out_scale)),
            (c.colour, lambda im, r: colour_jitter(im, r, c.colour_strength)),
            (c.rescale, lambda im, r: random_rescale(im, r, c.rescale_factor)),
            (c.blur, lambda im, r: random_blur(im, r, c.blur_sigma)),
            (c.jpeg, lambda im, r: random_jpeg(im, r, c.jpeg_quality)),
        ]

    def _quality_steps(self, label: int | None) -> list[tuple[float, Callable[[Image.Image, Rng], Image.Image]]]:
        c = self.config
        degrade = c.fake_degrade if label == FAKE_ID else 0.0
        sharpen = c.real_sharpen if label == REAL_ID else 0.0
        return [(degrade, lambda im, r: random_rescale(im, r, c.fake_degrade_factor)), (sharpen, random_sharpen)]

    def __call__(self, image: Image.Image, label: int | None = None) -> Image.Image:
        """Augment one image; `label` (0 real, 1 fake) enables the class-conditional quality ops."""
        image = _rgb(image)
        # first, as it replaces the framing; drawn only when switched on, so other recipes keep their draws
        if label == REAL_ID and self.config.real_ffhq_reframe > 0 and self.rng.random() < self.config.real_ffhq_reframe:
            image = self._reframe(image)
        steps = self._steps()
        steps[5:5] = self._quality_steps(label)  # after colour, before the shared degradations
        for probability, op in steps:
            # Always draw, so one op's switch does not shift the random stream of the others.
            if self.rng.random() < probability:
                image = op(image, self.rng)
        return image

    def __repr__(self) -> str:
        return f"TrainAugmentation({self.config})"


def build_train_augmentation(
    config: AugmentationConfig | None = None, seed: int | None = None, **switches: float | bool
) -> Callable[[Image.Image], Image.Image]:
    """Train augmentation from a config and/or keyword switches (e.g. `jpeg=False, blur=0.3`)."""
    config = config or AugmentationConfig()
    if switches:
        config = dataclasses.replace(config, **switches)
    return TrainAugmentation(config, seed)
