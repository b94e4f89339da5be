"""FFHQ's frame for real photos (`framing.ffhq_align`, the `real_ffhq_reframe` augmentation)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hf_detector.data.labels import FAKE_ID, REAL_ID
from hf_detector.preprocessing.augmentation import AugmentationConfig, TrainAugmentation
from hf_detector.preprocessing.faces.base import Face
from hf_detector.preprocessing.framing import ffhq_align, ffhq_eyes_mouth

EYES_MOUTH = np.array([[100.0, 110.0], [150.0, 110.0], [125.0, 160.0]])


def _marked(size: int, points: np.ndarray) -> Image.Image:
    """Grey texture with a red, green and blue dot at the eyes and the mouth."""
    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.normal(128, 10, (size, size, 3))).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for (x, y), colour in zip(points, ((255, 0, 0), (0, 255, 0), (0, 0, 255)), strict=True):
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colour)
    return image


def _dot(image: Image.Image, channel: int) -> np.ndarray:
    rgb = np.asarray(image, dtype=np.float32)
    others = [c for c in range(3) if c != channel]
    weight = np.clip(rgb[..., channel] - rgb[..., others].max(-1) - 60, 0, None)
    ys, xs = np.nonzero(weight)
    return np.array([np.average(xs, weights=weight[ys, xs]), np.average(ys, weights=weight[ys, xs])])


def test_eyes_and_mouth_land_where_ffhq_puts_them_whatever_the_pose() -> None:
    """The same face moved, scaled and rotated comes out of FFHQ's frame the same, upright, eyes level."""
    outputs = []
    for angle, scale, shift in ((0.0, 1.0, (0, 0)), (25.0, 0.6, (30, -20)), (-15.0, 1.4, (-40, 10))):
        theta = np.deg2rad(angle)
        rotation = scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        points = (EYES_MOUTH - 128) @ rotation.T + 128 + np.array(shift)
        out = ffhq_align(_marked(256, points), *points, size=128)
        outputs.append(np.stack([_dot(out, c) for c in range(3)]))
    for other in outputs[1:]:
        assert np.abs(other - outputs[0]).max() < 1.5
    left, right, mouth = outputs[0]
    assert abs(left[1] - right[1]) < 0.5 and abs((left[0] + right[0]) / 2 - 64) < 1 and mouth[1] > left[1]
    # FFHQ's scale: the frame is 4x the eye distance here (2 x eye distance > 1.8 x eye-to-mouth)
    assert abs((right[0] - left[0]) - 128 / 4) < 1


def test_outside_the_photo_is_reflected_and_faded_not_black() -> None:
    """A tight crop needs pixels beyond its edges: FFHQ's padding fills them from the photo, never with black."""
    grey = Image.new("RGB", (120, 120), (120, 130, 140))
    out = np.asarray(ffhq_align(grey, np.array([40.0, 50.0]), np.array([80.0, 50.0]), np.array([60.0, 90.0]),
                                size=64), dtype=np.float32)
    assert np.abs(out - [120, 130, 140]).max() <= 2


def test_mtcnn_and_blazeface_landmarks_give_eyes_and_mouth_centre() -> None:
    blaze = Face(box=(0, 0, 1, 1), score=1.0, landmarks=np.array([[1, 2], [3, 2], [2, 3], [2, 5]], float),
                 scheme="blazeface")
    mtcnn = Face(box=(0, 0, 1, 1), score=1.0, landmarks=np.array([[1, 2], [3, 2], [2, 3], [1, 5], [3, 5]], float))
    for face in (blaze, mtcnn):
        left, right, mouth = ffhq_eyes_mouth(face)
        assert left.tolist() == [1, 2] and right.tolist() == [3, 2] and mouth.tolist() == [2, 5]
    assert ffhq_eyes_mouth(Face(box=(0, 0, 1, 1), score=1.0)) is None


class _Detector:
    def __init__(self, face: Face | None) -> None:
        self.face = face

    def largest(self, image: Image.Image) -> Face | None:
        return self.face


def _augmentation(probability: float, face: Face | None) -> TrainAugmentation:
    augmentation = TrainAugmentation(AugmentationConfig(**{**{name: 0.0 for name in (
        "flip", "rotate", "resized_crop", "zoom_out", "colour", "rescale", "blur", "jpeg")},
        "real_ffhq_reframe": probability}), seed=0)
    augmentation._detector = _Detector(face)
    return augmentation


def test_reframes_real_photos_only_and_keeps_photos_without_a_face() -> None:
    image = _marked(256, EYES_MOUTH)
    face = Face(box=(90, 100, 160, 170), score=1.0, landmarks=np.vstack([EYES_MOUTH[:2], [[125, 135]], EYES_MOUTH[2:]]),
                scheme="blazeface")
    real = _augmentation(1.0, face)(image, REAL_ID)
    assert real.size == image.size and not np.array_equal(np.asarray(real), np.asarray(image))
    assert np.array_equal(np.asarray(_augmentation(1.0, face)(image, FAKE_ID)), np.asarray(image))
    assert np.array_equal(np.asarray(_augmentation(1.0, None)(image, REAL_ID)), np.asarray(image))


def test_off_by_default_and_the_other_draws_unchanged() -> None:
    """Switched off it draws nothing, so every other recipe's random stream (and the bundled model) is unchanged."""
    image = _marked(96, EYES_MOUTH * 96 / 256)
    plain = TrainAugmentation(AugmentationConfig(), seed=3)
    off = TrainAugmentation(AugmentationConfig(real_ffhq_reframe=0.0), seed=3)
    for _ in range(5):
        assert np.array_equal(np.asarray(plain(image, REAL_ID)), np.asarray(off(image, REAL_ID)))
    with pytest.raises(ValueError):
        AugmentationConfig(real_ffhq_reframe=1.5)


def test_pickles_without_its_detector() -> None:
    augmentation = _augmentation(0.5, None)
    clone = pickle.loads(pickle.dumps(augmentation))
    assert clone._detector is None and clone.config == augmentation.config
