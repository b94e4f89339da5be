"""Augmentation ops and Kalman denoising: fast, everything generated in memory."""

from __future__ import annotations

import pickle
import random
import time

import numpy as np
import pytest
from PIL import Image

from hf_detector.preprocessing import augmentation as T
from hf_detector.preprocessing import kalman as K


def _smooth_image(size: int = 128) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    return np.stack(
        [
            0.5 + 0.3 * np.sin(2 * np.pi * 2 * x) * np.cos(2 * np.pi * 1.5 * y),
            0.1 + 0.8 * x,
            0.2 + 0.6 * y,
        ],
        axis=-1,
    ).astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.fixture
def photo() -> Image.Image:
    rng = np.random.default_rng(0)
    base = (_smooth_image(96) * 255).astype(np.uint8)
    texture = rng.integers(0, 40, base.shape, dtype=np.uint8)
    return Image.fromarray(np.clip(base.astype(int) + texture, 0, 255).astype(np.uint8)).resize((120, 96))


# --- Kalman -----------------------------------------------------------------------------------------


def test_kalman_improves_psnr_and_keeps_shape_dtype():
    clean = _smooth_image(128)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    out = K.kalman_denoise(noisy)
    assert out.shape == noisy.shape and out.dtype == noisy.dtype
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert _psnr(out, clean) >= _psnr(noisy, clean) + 3.0
    averaged = K.kalman_denoise(noisy, mode="average")
    assert _psnr(averaged, clean) >= _psnr(noisy, clean) + 3.0


def test_kalman_grayscale_float64_and_parameters_matter():
    clean = _smooth_image(64)[..., 0].astype(np.float64)
    noisy = clean + np.random.default_rng(2).normal(0, 0.1, clean.shape)
    out = K.kalman_denoise(noisy)
    assert out.shape == (64, 64) and out.dtype == np.float64
    assert out.min() >= 0.0 and out.max() <= 1.0
    other = K.kalman_denoise(noisy, process_noise=1e-1, measurement_noise=1e-3)
    assert not np.allclose(out, other)
    # Q >> R trusts the measurements: nearly the (clipped) input
    assert np.abs(other - np.clip(noisy, 0, 1)).mean() < np.abs(out - np.clip(noisy, 0, 1)).mean()


def test_kalman_constant_and_tiny_inputs():
    flat = np.full((7, 5, 3), 0.25, dtype=np.float32)
    np.testing.assert_allclose(K.kalman_denoise(flat), flat, atol=1e-6)
    for shape in [(1, 1), (1, 9), (9, 1), (1, 1, 3), (0, 4)]:
        assert K.kalman_denoise(np.zeros(shape, np.float32)).shape == shape
    with pytest.raises(TypeError):
        K.kalman_denoise(np.zeros((4, 4), np.uint8))


def test_kalman_matches_reference_scalar_filter():
    """Vectorised version == a textbook per-line scalar Kalman filter + RTS smoother."""
    rng = np.random.default_rng(3)
    line = np.clip(0.5 + rng.normal(0, 0.1, 12), 0, 1)
    q, r = 1e-3, 1e-2
    xf, pf, xp, pp = [line[0]], [r], [None], [None]
    for z in line[1:]:
        x_pred, p_pred = xf[-1], pf[-1] + q
        k = p_pred / (p_pred + r)
        xf.append(x_pred + k * (z - x_pred))
        pf.append((1 - k) * p_pred)
        xp.append(x_pred)
        pp.append(p_pred)
    xs = list(xf)
    for t in range(len(line) - 2, -1, -1):
        c = pf[t] / pp[t + 1]
        xs[t] = xf[t] + c * (xs[t + 1] - xp[t + 1])
    expected = np.clip(np.array(xs), 0, 1)
    got = K.kalman_denoise(line[None, :].astype(np.float64))[0]  # one row: only the row pass matters
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_kalman_speed_and_pil():
    noisy = np.random.default_rng(4).random((256, 256, 3), dtype=np.float32)
    K.kalman_denoise(noisy)
    start = time.perf_counter()
    K.kalman_denoise(noisy)
    assert time.perf_counter() - start < 0.5  # ~15 ms here; generous for a loaded machine
    out = K.kalman_denoise_pil(Image.fromarray((noisy * 255).astype(np.uint8)))
    assert out.mode == "RGB" and out.size == (256, 256)


# --- augmentation ops --------------------------------------------------------------------------------

OPS = [
    T.horizontal_flip,
    T.random_rotate,
    T.random_resized_crop,
    T.random_zoom_out,
    T.random_jpeg,
    T.random_blur,
    T.random_rescale,
    T.random_sharpen,
    T.colour_jitter,
]


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.__name__)
@pytest.mark.parametrize("make_rng", [random.Random, np.random.default_rng], ids=["random", "numpy"])
def test_op_keeps_rgb_and_size(op, make_rng, photo):
    for mode in ("RGB", "L", "RGBA"):
        out = op(photo.convert(mode), make_rng(0))
        assert isinstance(out, Image.Image)
        assert out.mode == "RGB" and out.size == photo.size
    tiny = op(Image.new("RGB", (1, 1), (10, 20, 30)), make_rng(0))
    assert tiny.size == (1, 1) and tiny.mode == "RGB"


@pytest.mark.parametrize("op", OPS[1:], ids=lambda op: op.__name__)
def test_op_reproducible_with_seed(op, photo):
    a = np.asarray(op(photo, random.Random(5)))
    b = np.asarray(op(photo, random.Random(5)))
    np.testing.assert_array_equal(a, b)


def test_flip_mirrors(photo):
    np.testing.assert_array_equal(np.asarray(T.horizontal_flip(photo)), np.asarray(photo)[:, ::-1])


def test_jpeg_really_reencodes(photo):
    out = np.asarray(T.random_jpeg(photo, random.Random(0), quality=(30, 30))).astype(int)
    diff = np.abs(out - np.asarray(photo).astype(int))
    assert diff.mean() > 1.0
    high = np.abs(
        np.asarray(T.random_jpeg(photo, random.Random(0), quality=(100, 100))).astype(int) - np.asarray(photo)
    )
    assert high.mean() < diff.mean()


def test_blur_and_rescale_remove_detail(photo):
    def detail(im: Image.Image) -> float:
        a = np.asarray(im.convert("L"), float)
        return float(np.abs(np.diff(a, axis=1)).mean())

    assert detail(T.random_blur(photo, random.Random(0), sigma=(2.5, 3.0))) < 0.5 * detail(photo)
    assert detail(T.random_rescale(photo, random.Random(0), factor=(0.25, 0.3))) < detail(photo)


def test_rotate_has_no_black_corners():
    white = Image.new("RGB", (64, 64), (255, 255, 255))
    out = np.asarray(T.random_rotate(white, random.Random(0), max_degrees=10))
    assert out.min() > 240


# --- composition ----------------------------------------------------------------------------------


def test_none_is_identity(photo):
    augment = T.build_train_augmentation(T.AugmentationConfig.none(), seed=0)
    for _ in range(3):
        np.testing.assert_array_equal(np.asarray(augment(photo)), np.asarray(photo))
    assert not T.AugmentationConfig.none().enabled


def test_seeded_pipeline_reproducible_and_varied(photo):
    run = lambda seed: [np.asarray(im) for im in map(T.build_train_augmentation(seed=seed), [photo] * 6)]  # noqa: E731
    first, second, other = run(1), run(1), run(2)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.shape == (96, 120, 3)
    assert any(not np.array_equal(a, c) for a, c in zip(first, other, strict=True))
    assert any(not np.array_equal(a, np.asarray(photo)) for a in first)


def test_switches_and_bools(photo):
    config = T.AugmentationConfig(flip=True, jpeg=False)
    assert config.flip == 0.5 and config.jpeg == 0.0
    augment = T.build_train_augmentation(T.AugmentationConfig.none(), seed=0, jpeg=1.0)
    assert augment.config.jpeg == 1.0 and augment.config.flip == 0.0
    assert not np.array_equal(np.asarray(augment(photo)), np.asarray(photo))
    only_flip = T.build_train_augmentation(T.AugmentationConfig.none(), flip=1.0)
    np.testing.assert_array_equal(np.asarray(only_flip(photo)), np.asarray(photo)[:, ::-1])
    with pytest.raises(ValueError, match=r"AugmentationConfig\.blur must be a probability in \[0, 1\], got 1\.5"):
        T.AugmentationConfig(blur=1.5)


def test_class_conditional_quality_ops(photo):
    """fake_degrade touches fakes only, real_sharpen reals only; without a label neither runs."""
    def detail(im: Image.Image) -> float:
        return float(np.abs(np.diff(np.asarray(im.convert("L"), float), axis=1)).mean())

    degrade = T.build_train_augmentation(T.AugmentationConfig.none(), seed=0, fake_degrade=1.0)
    sharpen = T.build_train_augmentation(T.AugmentationConfig.none(), seed=0, real_sharpen=1.0)
    assert detail(degrade(photo, 1)) < detail(photo)
    assert detail(sharpen(photo, 0)) > detail(photo)
    for augment, untouched_label in ((degrade, 0), (sharpen, 1)):
        np.testing.assert_array_equal(np.asarray(augment(photo, untouched_label)), np.asarray(photo))
        np.testing.assert_array_equal(np.asarray(augment(photo)), np.asarray(photo))


def test_pipeline_pickles(photo):
    augment = T.build_train_augmentation(seed=3)
    clone = pickle.loads(pickle.dumps(augment))
    np.testing.assert_array_equal(np.asarray(augment(photo)), np.asarray(clone(photo)))


def test_highpass_input_is_the_residual_and_the_same_on_both_processors(tmp_path) -> None:
    """highpass_gain > 0: a flat picture becomes mid-grey whatever its colour, an edge keeps its residual, and
    the transformers processor, its saved copy and the light runtime's processor give the same pixels."""
    from hf_detector.preprocessing.core import LightProcessor
    from hf_detector.preprocessing.processor import FaceImageProcessor

    processor = FaceImageProcessor(do_face_crop=False, size=16, highpass_gain=10.0, do_normalize=False)
    for colour in ((0, 0, 0), (200, 30, 90)):
        flat = processor.finish_array(Image.new("RGB", (16, 16), colour))
        assert np.allclose(flat, 0.5, atol=1e-6)
    edge = np.zeros((16, 16, 3), np.uint8)
    edge[:, 8:] = 255
    pixels = processor.finish_array(Image.fromarray(edge))
    assert pixels[:, :, 7].max() < 0.5 - 2 and pixels[:, :, 8].min() > 0.5 + 2  # 10 x (0 - 1/4), 10 x (1 - 3/4)
    assert np.allclose(pixels[:, :, :6], 0.5)
    processor.save_pretrained(tmp_path)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    reloaded = FaceImageProcessor.from_pretrained(tmp_path)
    assert reloaded.highpass_gain == 10.0
    light = LightProcessor.from_pretrained(tmp_path)
    assert np.array_equal(light.finish_array(image), processor.finish_array(image))
    assert not np.array_equal(FaceImageProcessor(do_face_crop=False, size=16, do_normalize=False)
                              .finish_array(image), processor.finish_array(image))
    with pytest.raises(ValueError, match="highpass_gain"):
        FaceImageProcessor(highpass_gain=-1)


def test_highpass_beside_adds_the_residual_as_three_channels_after_the_picture(tmp_path) -> None:
    """highpass_beside: channels 0-2 are the normalised picture exactly as without the residual, 3-5 the
    residual (gain x (pixels - blur), zero-centred); both processors and a saved copy agree."""
    from hf_detector.preprocessing.core import LightProcessor, binomial_blur
    from hf_detector.preprocessing.processor import FaceImageProcessor

    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    processor = FaceImageProcessor(do_face_crop=False, size=16, highpass_gain=4.0, highpass_beside=True)
    pixels = processor.finish_array(image)
    assert pixels.shape == (6, 16, 16) and processor.num_channels == 6
    plain = FaceImageProcessor(do_face_crop=False, size=16)
    assert plain.num_channels == 3
    np.testing.assert_array_equal(pixels[:3], plain.finish_array(image))
    raw = np.asarray(image, np.float32) / 255.0
    np.testing.assert_allclose(pixels[3:], (4.0 * (raw - binomial_blur(raw))).transpose(2, 0, 1), atol=1e-6)
    processor.save_pretrained(tmp_path)
    assert np.array_equal(LightProcessor.from_pretrained(tmp_path).finish_array(image), pixels)
    with pytest.raises(ValueError, match="highpass_beside needs highpass_gain"):
        FaceImageProcessor(highpass_beside=True)


@pytest.mark.parametrize("settings", [{}, {"highpass_gain": 10.0}, {"highpass_gain": 50.0, "highpass_beside": True},
                                      {"highpass_gain": 10.0, "do_normalize": False}])
def test_pixel_noise_effect_is_what_noise_on_the_picture_does_to_the_output(settings: dict) -> None:
    """The consistency loss's second view adds noise after the processor; this map must equal adding the noise to
    the picture first (checked with whole levels, which a PIL image can carry), for every input mode."""
    from hf_detector.preprocessing.processor import FaceImageProcessor

    rng = np.random.default_rng(3)
    clean = rng.integers(2, 254, (16, 16, 3)).astype(np.int16)
    levels = rng.integers(-1, 2, (16, 16, 3)).astype(np.int16)
    processor = FaceImageProcessor(do_face_crop=False, size=16, **settings)
    before = processor.finish_array(Image.fromarray(clean.astype(np.uint8)))
    after = processor.finish_array(Image.fromarray((clean + levels).astype(np.uint8)))
    effect = processor.pixel_noise_effect(levels.astype(np.float32) / 255)
    assert effect.shape == before.shape
    np.testing.assert_allclose(after - before, effect, atol=1e-4)
