"""The accelerated path (hf_detector.inference.backends) agrees with plain PyTorch; no timing assertions here (see bench/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hf_detector.cli import build_parser
from hf_detector.inference import backends
from hf_detector.preprocessing.faces import mtcnn_onnx

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.jpg"))
needs_onnx = pytest.mark.skipif(not backends.onnx_available(), reason="onnxruntime/onnx not installed")


@pytest.fixture(autouse=True)
def _onnx_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DETECTOR_CACHE", str(tmp_path_factory.getbasetemp() / "onnx-cache"))
    monkeypatch.delenv("HF_DETECTOR_BACKEND", raising=False)


def test_resolve_backend() -> None:
    assert backends.resolve_backend("pytorch") == "pytorch"
    assert backends.resolve_backend("auto") == ("onnx" if backends.onnx_available() else "pytorch")
    with pytest.raises(ValueError, match="backend must be one of"):
        backends.resolve_backend("tensorrt")


def test_cli_backend_flag() -> None:
    args = build_parser().parse_args(["predict", "x.jpg", "--backend", "pytorch"])
    assert args.backend == "pytorch"
    assert build_parser().parse_args(["evaluate", "--data", "d"]).backend == "auto"


@needs_onnx
@pytest.mark.parametrize("name,size", [("mobilenet_v2_0.35", 32), ("custom_cnn", 24)])
def test_onnx_classifier_matches_pytorch(name: str, size: int) -> None:
    from hf_detector.models import create_model

    torch.manual_seed(0)
    model = create_model(name, image_size=size, pretrained=False).eval()
    classifier = backends.OnnxClassifier(model, (3, size, size), threads=1)
    x = torch.randn(5, 3, size, size)
    with torch.no_grad():
        reference = model(pixel_values=x).logits
    assert torch.allclose(classifier(x), reference, atol=1e-4)
    assert classifier(x[:1]).shape == (1, 2)  # dynamic batch


@needs_onnx
@pytest.mark.skipif(not EXAMPLES, reason="no example photos")
def test_onnx_face_detector_matches_pytorch() -> None:
    from hf_detector.data.images import load_image
    from hf_detector.preprocessing.faces.mtcnn import FaceDetector

    reference, accelerated = FaceDetector(num_threads=1), FaceDetector(num_threads=1, backend="onnx")
    for path in EXAMPLES[:2]:
        image = load_image(str(path))
        a, b = reference.detect(image), accelerated.detect(image)
        assert len(a) == len(b) >= 1
        assert np.allclose(a[0].box, b[0].box, atol=1e-2)
        assert np.allclose(a[0].landmarks, b[0].landmarks, atol=1e-2)
        assert abs(a[0].score - b[0].score) < 1e-4


@pytest.mark.parametrize("height,width", [(256, 256), (97, 203), (31, 480)])
def test_area_resample_boxes_matches_torch_area_interpolation(height: int, width: int) -> None:
    """The vectorised crop resampling of the fast MTCNN equals facenet-pytorch's per-box interpolate."""
    rng = np.random.default_rng(height)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    integral = mtcnn_onnx.summed_area_table(pixels)
    rows = np.sort(rng.integers(0, height, (30, 2)), axis=1)
    cols = np.sort(rng.integers(0, width, (30, 2)), axis=1)
    rows[:, 1] += 1  # half-open, at least one pixel: tiny boxes are upsampled, big ones averaged
    cols[:, 1] += 1
    rows[0], cols[0] = (0, height), (0, width)
    image = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
    for size in (24, 48):
        expected = torch.cat([torch.nn.functional.interpolate(image[:, :, r0:r1, c0:c1], (size, size), mode="area")
                              for (r0, r1), (c0, c1) in zip(rows, cols, strict=True)]).numpy()
        got = mtcnn_onnx.area_resample_boxes(integral, rows, cols, size)
        assert got.shape == expected.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)  # exact sums; float32 rounding only


@needs_onnx
def test_fast_mtcnn_matches_facenet_detect() -> None:
    """Batched crops + ONNX nets give MTCNN.detect's boxes, scores, landmarks and order (faces and no faces)."""
    from facenet_pytorch import MTCNN
    from PIL import Image

    reference = MTCNN(keep_all=True, post_process=False).eval()
    accelerated = mtcnn_onnx.onnx_mtcnn(reference)
    rng = np.random.default_rng(0)
    images = [Image.open(path).convert("RGB") for path in EXAMPLES[:3]]
    images.append(Image.fromarray(rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)))  # noise: no face
    images.append(Image.new("RGB", (64, 64), (128, 128, 128)))  # flat: no candidate at all
    if EXAMPLES:  # two faces side by side: several detections, order by area
        face = images[0]
        pair = Image.new("RGB", (face.width * 2, face.height))
        pair.paste(face, (0, 0))
        pair.paste(face.resize((face.width * 3 // 4, face.height * 3 // 4)), (face.width, 0))
        images.append(pair)
    for image in images:
        with torch.inference_mode():
            a_boxes, a_scores, a_points = reference.detect(image, landmarks=True)
        b_boxes, b_scores, b_points = accelerated.detect(image, landmarks=True)
        if a_boxes is None:
            assert b_boxes is None and b_points is None
            continue
        assert b_boxes is not None and len(a_boxes) == len(b_boxes)
        np.testing.assert_allclose(np.asarray(b_boxes, float), np.asarray(a_boxes, float), atol=1e-2)
        np.testing.assert_allclose(np.asarray(b_points, float), np.asarray(a_points, float), atol=1e-2)
        np.testing.assert_allclose(np.asarray(b_scores, float), np.asarray(a_scores, float), atol=1e-4)


@needs_onnx
@pytest.mark.skipif(not EXAMPLES, reason="no example photos")
def test_detector_backends_agree(tmp_path: Path) -> None:
    from transformers import pipeline

    import hf_detector  # noqa: F401
    from hf_detector.inference.detector import Detector
    from hf_detector.models import create_model
    from hf_detector.preprocessing.processor import FaceImageProcessor

    torch.manual_seed(0)
    create_model("mobilenet_v2_0.35", image_size=32, pretrained=False).save_pretrained(tmp_path)
    FaceImageProcessor(crop_size=32, size=32).save_pretrained(tmp_path)
    plain = Detector.from_pretrained(str(tmp_path), backend="pytorch")
    default = Detector.from_pretrained(str(tmp_path))
    assert plain.backend == "pytorch" and default.backend == "onnx"
    a = [r.prediction for r in plain.iter_files(EXAMPLES, batch_size=2)]
    b = [r.prediction for r in default.iter_files(EXAMPLES, batch_size=2)]
    for x, y in zip(a, b, strict=True):
        assert x is not None and y is not None
        assert x.face_found == y.face_found and x.crop_method == y.crop_method
        assert abs(x.p_fake - y.p_fake) < 1e-3
    # pipeline() runs the processor's shared face stage: the same one as the default Detector
    classifier = pipeline("image-classification", model=str(tmp_path))
    scores = {r["label"]: r["score"] for r in classifier(str(EXAMPLES[0]))}
    assert abs(scores["fake"] - b[0].p_fake) < 1e-4


@pytest.mark.skipif(not EXAMPLES, reason="no example photos")
def test_face_detect_size_is_a_saved_processor_setting(tmp_path: Path) -> None:
    """A smaller detection copy finds the same face (landmarks within a few pixels) and round-trips in the config."""
    from hf_detector.data.images import load_image
    from hf_detector.preprocessing.processor import FaceImageProcessor

    image = load_image(str(EXAMPLES[0]))
    default, small = FaceImageProcessor(), FaceImageProcessor(face_detect_size=128)
    a, b = default.crop(image), small.crop(image)
    assert a.method == b.method == "aligned"
    assert np.abs(a.face.landmarks - b.face.landmarks).max() < 0.05 * (a.face.box[2] - a.face.box[0])
    small.save_pretrained(tmp_path)
    assert FaceImageProcessor.from_pretrained(tmp_path).face_detect_size == 128
    with pytest.raises(ValueError, match="face_detect_size"):
        FaceImageProcessor(face_detect_size=8)
    args = build_parser().parse_args(["evaluate", "--data", "d", "--face-detect-size", "128"])
    assert args.face_detect_size == 128


@needs_onnx
@pytest.mark.skipif(not EXAMPLES, reason="no example photos")
def test_largest_face_coarse_search_matches_full_search() -> None:
    """`largest` searches the coarse pyramid levels first: same face as the full search, and a small face
    (below the coarse size) is still found by the fallback."""
    from PIL import Image

    from hf_detector.data.images import load_image
    from hf_detector.preprocessing.faces.mtcnn import FaceDetector

    detector = FaceDetector(num_threads=1, backend="onnx")
    full = FaceDetector(num_threads=1, backend="onnx", large_face_fraction=0)
    face = load_image(str(EXAMPLES[0]))
    small = Image.new("RGB", (640, 640), (90, 110, 130))
    small.paste(face.resize((96, 96)), (400, 300))  # ~15 % of the side: only the fine levels see it
    pair = Image.new("RGB", (face.width * 2, face.height))
    pair.paste(face, (0, 0))
    pair.paste(face.resize((face.width // 2, face.height // 2)), (face.width, 0))
    for image in [load_image(str(path)) for path in EXAMPLES] + [small, pair]:
        expected = full.detect(image)[0]
        got = detector.largest(image)
        assert got is not None
        np.testing.assert_allclose(got.box, expected.box, atol=1e-3)
        np.testing.assert_allclose(got.landmarks, expected.landmarks, atol=1e-3)
    # the coarse pass alone misses the small face, which is why the fallback exists
    assert detector._search(small, min_fraction=0.2) == []
    assert detector.largest(Image.new("RGB", (200, 200), (128, 128, 128))) is None


@pytest.mark.parametrize("height,width,out", [(256, 256, (154, 154)), (97, 203, (58, 122)), (40, 30, (61, 47))])
def test_area_resize_matches_torch_area_interpolation(height: int, width: int, out: tuple[int, int]) -> None:
    """MTCNN's pyramid levels from the summed-area table equal `interpolate(mode="area")` (down and up)."""
    pixels = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    integral = mtcnn_onnx.summed_area_table(pixels)
    image = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
    expected = torch.nn.functional.interpolate(image, out, mode="area")[0].numpy()
    got = mtcnn_onnx.area_resize(integral, *out)
    assert got.shape == expected.shape and got.dtype == np.float32 and got.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_face_crop_cache_in_forked_workers_after_the_parent_used_torch_threads(tmp_path: Path) -> None:
    """`make report` evaluates (multi-threaded torch) and then trains, whose crop cache forks datasets
    workers: the workers' face stage must not wait forever on the OpenMP state the fork copied."""
    import os
    import subprocess
    import sys

    script = tmp_path / "crops.py"
    script.write_text(
        "import sys, torch\n"
        "from datasets import Dataset, Image\n"
        "from hf_detector.preprocessing.processor import FaceImageProcessor\n"
        "from hf_detector.training.trainer import cache_face_crops\n"
        "torch.set_num_threads(2)\n"
        "x = torch.randn(4_000_000)\n"
        "float((x * 2 + 1).sum())  # the parent's OpenMP thread pool is now running\n"
        "files = sys.argv[1:] * 2\n"
        "dataset = Dataset.from_dict({'image': files}).cast_column('image', Image())\n"
        "processor = FaceImageProcessor(crop_size=128, size=128)\n"
        "out = cache_face_crops(dataset, processor, num_proc=2)\n"
        "print(','.join(out['crop_method']))\n")
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "datasets"), "TQDM_DISABLE": "1"}
    result = subprocess.run([sys.executable, str(script), *map(str, EXAMPLES)], capture_output=True, text=True,
                            timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    methods = result.stdout.strip().splitlines()[-1].split(",")
    assert len(methods) == 2 * len(EXAMPLES) and set(methods) == {"aligned"}


@pytest.mark.parametrize("shape", [(1, 1, 3), (37, 53, 3), (2950, 2950, 3)])
def test_summed_area_table_sums_every_rectangle(shape: tuple[int, int, int]) -> None:
    """cv2.integral for images whose sums fit int32, numpy int64 above (never an overflow)."""
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    integral = mtcnn_onnx.summed_area_table(pixels)
    assert integral.shape == (shape[0] + 1, shape[1] + 1, 3) and not integral[0].any() and not integral[:, 0].any()
    expected = pixels.astype(np.int64).cumsum(0).cumsum(1)
    np.testing.assert_array_equal(integral[1:, 1:], expected)
    assert integral.dtype == (np.int64 if shape[0] > 2000 else np.int32)


def test_numpy_nms_matches_torchvision() -> None:
    """The face stage's NMS (numpy, so the light runtime needs no torchvision) keeps torchvision's boxes."""
    from torchvision.ops import nms

    rng = np.random.default_rng(0)
    for _ in range(20):
        corners = rng.uniform(0, 200, (60, 2)).astype(np.float32)
        sizes = rng.uniform(5, 80, (60, 2)).astype(np.float32)
        scores = rng.choice(np.linspace(0.5, 1.0, 8), 60).astype(np.float32)  # ties included
        boxes = np.concatenate([corners, corners + sizes, scores[:, None]], axis=1)
        for threshold in (0.5, 0.7):
            expected = nms(torch.from_numpy(boxes[:, :4]), torch.from_numpy(boxes[:, 4]), threshold).numpy()
            np.testing.assert_array_equal(mtcnn_onnx._nms(boxes, threshold), expected)
