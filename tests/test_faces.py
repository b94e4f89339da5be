"""Face detection + alignment. Uses one real photo from the shared dev set when it is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hf_detector.preprocessing import framing as F

FACES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"
# FFHQ-framed images whose face lies well inside the frame (clear landmarks, little border fill).
CANDIDATES = ["real/ffhq-wfir_0001.jpg", "fake/omi_0001.jpg", "fake/sg3pool_0001.jpg"]


pytestmark = pytest.mark.usefixtures("one_thread")  # MTCNN is ~10x slower with 2 threads here


@pytest.fixture(scope="module")
def detector() -> F.FaceDetector:
    return F.FaceDetector()


@pytest.fixture(scope="module")
def face_photo(detector) -> tuple[Image.Image, F.FaceCrop]:
    if not FACES_DIR.is_dir():
        pytest.skip(f"shared face data not found at {FACES_DIR}")
    for name in CANDIDATES:
        path = FACES_DIR / name
        if path.is_file():
            with Image.open(path) as im:
                image = im.convert("RGB")
            crop = F.crop_face(image, detector)
            if crop.method == "aligned":
                return image, crop
    pytest.skip("no candidate face image found / detected in the shared data")


def _as_float(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64) / 255.0


def _central(a: np.ndarray) -> np.ndarray:
    n = a.shape[0]
    return a[n // 4 : 3 * n // 4, n // 4 : 3 * n // 4]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_central(a).ravel(), _central(b).ravel())[0, 1])


# --- pure geometry (no detector) ----------------------------------------------------------------


def test_template_places_eyes_high_and_face_inside():
    pts = F._template(256, 0.3)
    assert pts.shape == (5, 2)
    assert 0.35 * 256 < pts[0, 1] < 0.47 * 256  # eyes a bit above the middle
    assert pts[0, 0] < pts[2, 0] < pts[1, 0]  # left eye, nose, right eye
    assert pts[3:, 1].min() > pts[2, 1] > pts[0, 1]  # mouth below nose below eyes
    assert np.all((pts > 0.15 * 256) & (pts < 0.85 * 256))


def test_landmark_transform_recovers_similarity():
    target = F._template(256, 0.3)
    angle, scale, shift = np.deg2rad(20), 1.7, np.array([40.0, -13.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = (target - 128) @ (scale * rot).T + 128 + shift
    matrix = F.landmark_transform(source, 256, 0.3)
    mapped = source @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, target, atol=1e-8)
    assert F.landmark_transform(np.zeros((5, 2)), 256, 0.3) is None  # degenerate landmarks


class _FakeDetector(F.FaceDetector):
    """Returns fixed faces, so the geometry paths run without MTCNN."""

    def __init__(self, faces: list[F.Face]) -> None:
        super().__init__()
        self._faces = faces

    def detect(self, image: Image.Image, max_side: int | None = None) -> list[F.Face]:
        return list(self._faces)


def test_box_and_aligned_fallbacks_with_fixed_faces():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    box_only = F.Face(box=(100, 80, 200, 210), score=0.99, landmarks=None)
    crop = F.crop_face(image, _FakeDetector([box_only]), size=128)
    assert crop.method == "box" and crop.image.size == (128, 128) and crop.face is box_only
    with_marks = F.Face(box=box_only.box, score=0.99, landmarks=F._template(130, 0.0) + [100, 80])
    assert F.crop_face(image, _FakeDetector([with_marks]), size=64).method == "aligned"
    assert F.crop_face(image, _FakeDetector([with_marks]), size=64, align=False).method == "box"
    # a face hanging off the corner of a huge image: reflected fill, no crash, no black
    corner = F.Face(box=(-50, -50, 60, 70), score=0.95, landmarks=None)
    big = Image.new("RGB", (6000, 4000), (200, 100, 50))
    out = F.crop_face(big, _FakeDetector([corner]), size=96)
    assert out.image.size == (96, 96) and np.asarray(out.image).min() > 40 and out.outside > 0.3


def test_context_square_stays_inside_and_is_capped():
    # a face in the middle of a wide photo: 2.5x its box, centred on it
    assert F.context_square((400, 100, 500, 200), 1000, 600, 2.5) == (325, 25, 575, 275)
    # near the left edge: moved right to stay inside, same side
    assert F.context_square((0, 100, 100, 200), 1000, 600, 2.5) == (0, 25, 250, 275)
    # a face filling a tight crop: the square is capped at the shorter side, still centred on the face
    assert F.context_square((10, 5, 190, 215), 200, 220, 2.5) == (0, 10, 200, 210)


def test_context_crop_cuts_the_face_region_without_fill():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (600, 1000, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    face = F.Face(box=(400, 100, 500, 200), score=0.99, landmarks=None)
    crop = F.context_crop(image, _FakeDetector([face]), size=250, context=2.5)
    assert crop.method == "context" and crop.face is face and crop.image.size == (250, 250)
    assert np.array_equal(np.asarray(crop.image), pixels[25:275, 325:575])  # the very pixels, not resampled
    small = F.context_crop(image, _FakeDetector([face]), size=64, context=2.5)
    assert small.image.size == (64, 64)
    none = F.context_crop(image, _FakeDetector([]), size=64)
    assert none.method == "center" and none.face is None
    with pytest.raises(ValueError, match="context"):
        F.context_crop(image, _FakeDetector([face]), context=0)


def test_processor_frames_with_context_when_asked():
    from hf_detector.preprocessing.processor import FaceImageProcessor

    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (256, 320, 3), dtype=np.uint8))  # not reduced
    face = F.Face(box=(150, 100, 250, 200), score=0.99, landmarks=F._template(100, 0.0) + [150, 100])
    processor = FaceImageProcessor(face_context=2.0, crop_size=200, size=64)
    crop = processor.crop(image, detector=_FakeDetector([face]))
    assert crop.method == "context" and crop.image.size == (200, 200)
    assert np.array_equal(np.asarray(crop.image), np.asarray(image)[50:250, 100:300])
    assert FaceImageProcessor(crop_size=64).crop(image, detector=_FakeDetector([face])).method == "aligned"
    with pytest.raises(ValueError, match="face_context"):
        FaceImageProcessor(face_context=-1)


def test_large_image_shrinks_with_area_filter():
    """A face far bigger than the output goes through the pre-shrink path and still lands on the template."""
    target = F._template(2048, 0.3)
    canvas = np.zeros((2400, 2400, 3), np.uint8)
    for x, y in target.astype(int):
        canvas[y - 20 : y + 20, x - 20 : x + 20] = 255
    face = F.Face(box=(0, 0, 2048, 2048), score=1.0, landmarks=target)
    crop = F.crop_face(Image.fromarray(canvas), _FakeDetector([face]), size=256)
    out = np.asarray(crop.image)[..., 0]
    for x, y in F._template(256, 0.3):
        assert out[int(round(y)), int(round(x))] > 200


def test_center_crop():
    image = Image.new("RGB", (300, 100), (1, 2, 3))
    image.paste((250, 250, 250), (100, 0, 200, 100))
    out = F.center_crop(image, 64)
    assert out.size == (64, 64) and out.mode == "RGB"
    assert np.asarray(out).min() >= 240


# --- MTCNN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (1, 4000), (4000, 1), (19, 19), (25, 3000)])
def test_odd_sizes_do_not_crash(size, detector):
    crop = F.crop_face(Image.new("RGB", size, (90, 60, 30)), detector, size=64)
    assert crop.method == "center" and crop.face is None
    assert crop.image.size == (64, 64) and crop.image.mode == "RGB"


def test_blank_and_noise_fall_back_to_center(detector):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8))
    for image in (Image.new("RGB", (200, 200), (128, 128, 128)), noise, Image.new("L", (120, 80))):
        crop = F.crop_face(image, detector, size=96)
        assert crop.method == "center" and crop.image.size == (96, 96) and crop.image.mode == "RGB"
    assert detector.detect(Image.new("RGB", (200, 200))) == []


def test_real_face_is_aligned_with_landmarks(face_photo, detector):
    image, crop = face_photo
    assert crop.method == "aligned" and crop.image.size == (256, 256) and crop.image.mode == "RGB"
    face = crop.face
    assert face is not None and face.score >= 0.9 and face.landmarks.shape == (5, 2)
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height
    eyes_y = face.landmarks[:2, 1].mean()
    assert y0 < eyes_y < face.landmarks[3:, 1].mean() < y1
    faces = detector.detect(image)
    assert [f.area * f.score for f in faces] == sorted((f.area * f.score for f in faces), reverse=True)
    two = F.FaceDetector(num_threads=2).detect(image)
    np.testing.assert_allclose(two[0].box, faces[0].box, atol=1e-3)
    # deterministic
    again = F.crop_face(image, detector)
    np.testing.assert_array_equal(np.asarray(again.image), np.asarray(crop.image))


def test_alignment_normalises_position_scale_rotation(face_photo, detector):
    """The same face, moved/scaled/rotated inside a larger canvas, comes out framed the same way."""
    image, reference = face_photo
    ref = _as_float(reference.image)
    moved = image.resize((333, 333), Image.Resampling.BICUBIC).rotate(
        17, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(128, 128, 128)
    )
    canvas = Image.new("RGB", (700, 520), (128, 128, 128))
    canvas.paste(moved, (300, 60))
    aligned = F.crop_face(canvas, detector)
    assert aligned.method == "aligned"
    got = _as_float(aligned.image)
    unaligned = _as_float(F.crop_face(canvas, detector, align=False).image)
    # the face region agrees closely (landmark jitter of a pixel or two is allowed) ...
    assert _corr(got, ref) > 0.85
    assert np.abs(_central(got) - _central(ref)).mean() < 0.1
    # ... and much better than a box crop, which keeps the rotation
    assert _corr(got, ref) > _corr(unaligned, ref) + 0.05


def test_detector_finds_face_in_big_image(face_photo, detector):
    """Detection runs on a <= 640 px copy; boxes come back in original pixels."""
    image, reference = face_photo
    big = image.resize((1600, 1600), Image.Resampling.BILINEAR)
    faces = detector.detect(big)
    assert faces and faces[0].landmarks is not None
    ratio = 1600 / image.width
    np.testing.assert_allclose(
        np.array(faces[0].box), np.array(reference.face.box) * ratio, rtol=0.1, atol=15
    )


def test_native_resolution_is_capped_like_the_training_images() -> None:
    """A photo larger than the training images is reduced to their resolution before the face stage,
    and the face it reports is in the caller's pixels."""
    from hf_detector.preprocessing.processor import FaceImageProcessor

    example = Path(__file__).resolve().parents[1] / "examples" / "real_ffhq_01002.jpg"
    with Image.open(example) as im:
        photo = im.convert("RGB")  # 256 x 256, the training resolution
    big = photo.resize((1024, 1024), Image.Resampling.BICUBIC)
    capped, factor = FaceImageProcessor().cap_resolution(big)
    assert capped.size == (256, 256) and factor == 4.0
    assert FaceImageProcessor().cap_resolution(photo) == (photo, 1.0)  # never upscaled
    wide = Image.new("RGB", (900, 300))
    assert FaceImageProcessor(max_short_side=100).cap_resolution(wide)[0].size == (300, 100)
    assert FaceImageProcessor(max_short_side=0).cap_resolution(big)[0] is big  # 0 = native resolution
    with pytest.raises(ValueError, match="max_short_side"):
        FaceImageProcessor(max_short_side=8)

    processor = FaceImageProcessor()
    small, large = processor.crop(photo), processor.crop(big)
    assert small.method == large.method == "aligned"
    np.testing.assert_allclose(np.array(large.face.box), np.array(small.face.box) * 4, atol=8)
    np.testing.assert_allclose(large.face.landmarks, small.face.landmarks * 4, atol=8)
    # the crop matches the one cut at the training resolution, not a sharper one from 1024 px
    same = np.abs(_as_float(large.image) - _as_float(small.image)).mean()
    native = FaceImageProcessor(max_short_side=0).crop(big)
    assert same < 0.03
    assert same < np.abs(_as_float(native.image) - _as_float(small.image)).mean()


@pytest.mark.parametrize("flag,value", [("--max-short-side", "8"), ("--max-short-side", "-3"),
                                        ("--face-detect-size", "8"), ("--max-short-side", "x")])
def test_bad_resolution_flags_are_one_line_usage_errors(flag: str, value: str, capsys) -> None:
    """The processor's own checks run when the flag is parsed: a usage line, not a traceback or a silent
    setting the processor itself would refuse."""
    from hf_detector.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["predict", "photo.jpg", flag, value])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("hf-detector predict: error: argument " + flag) and "Traceback" not in error
    assert build_parser().parse_args(["predict", "photo.jpg", "--max-short-side", "0"]).max_short_side == 0


def test_detector_overrides_use_the_processor_checks() -> None:
    from hf_detector.inference.detector import Detector

    model = Path(__file__).resolve().parents[1] / "hf_detector" / "checkpoints" / "default"
    if not (model / "config.json").exists():
        pytest.skip("no bundled model")
    for options in ({"max_short_side": 8}, {"face_detect_size": 8}):
        with pytest.raises(ValueError, match=">= 32 pixels"):
            Detector.from_pretrained(str(model), backend="pytorch", **options)


def test_mtcnn_loads_without_the_package_init() -> None:
    """The MTCNN fallback skips facenet-pytorch's __init__ (InceptionResnetV1 + `requests`, ~0.2 s per
    process); a later `import facenet_pytorch` still gets the real package."""
    import subprocess
    import sys

    code = ("import sys; from hf_detector.preprocessing.faces.mtcnn import import_mtcnn; M = import_mtcnn(); "
            "assert 'requests' not in sys.modules and 'facenet_pytorch' not in sys.modules; "
            "import facenet_pytorch; assert facenet_pytorch.MTCNN is M and facenet_pytorch.InceptionResnetV1")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-800:]
