"""BlazeFace: the TFLite graph rebuilt in torch, its decoding, and the detector with its MTCNN fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hf_detector.preprocessing import framing as F
from hf_detector.preprocessing.faces import blazeface as B
from hf_detector.preprocessing.faces import blazeface_graph as G
from hf_detector.preprocessing.processor import FaceImageProcessor

FACES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"

try:
    B.model_path()
    HAVE_WEIGHTS = True
except B.WeightsMissing:
    HAVE_WEIGHTS = False
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="pip install --no-deps mediapipe==0.10.14")


pytestmark = pytest.mark.usefixtures("one_thread")  # MTCNN is ~10x slower with 2 threads here


def _face_photo() -> Image.Image:
    path = FACES_DIR / "fake" / "omi_0001.jpg"
    if not path.is_file():
        pytest.skip(f"shared face data not found at {FACES_DIR}")
    with Image.open(path) as image:
        return image.convert("RGB")


# -- pure functions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "kernel", "stride", "expected"),
                         [(128, 5, 1, (2, 2)), (128, 3, 2, (0, 1)), (64, 2, 2, (0, 0)), (7, 3, 2, (1, 1))])
def test_same_padding_matches_tensorflow(size, kernel, stride, expected):
    before, after = G._same_padding(size, kernel, stride)
    assert (before, after) == expected
    assert (size + before + after - kernel) // stride + 1 == -(-size // stride)  # TF's SAME output size


def test_anchors_are_mediapipes_layout():
    anchors = B.anchors()
    assert anchors.shape == (896, 2)
    # 16x16 cells x 2 anchors (stride 8), then 8x8 cells x 6 anchors (stride 16), row by row
    np.testing.assert_allclose(anchors[0], [1 / 32, 1 / 32])
    np.testing.assert_allclose(anchors[1], anchors[0])
    np.testing.assert_allclose(anchors[2], [3 / 32, 1 / 32])
    np.testing.assert_allclose(anchors[512], [1 / 16, 1 / 16])
    np.testing.assert_allclose(anchors[512 + 6], [3 / 16, 1 / 16])
    np.testing.assert_allclose(anchors[-1], [15 / 16, 15 / 16])


def test_decode_places_boxes_and_keypoints_relative_to_their_anchor():
    regressors = np.zeros((896, 16), np.float32)
    logits = np.full((896, 1), -10.0, np.float32)
    index = 512 + 6 * (8 * 3 + 5)  # stride-16 cell (x=5, y=3)
    logits[index] = 3.0
    regressors[index, :4] = [12.8, -6.4, 64.0, 32.0]  # dx, dy, w, h in input pixels (128)
    regressors[index, 4:6] = [-12.8, 0.0]  # first keypoint
    rows = B.decode(regressors, logits)
    assert rows.shape == (1, 17)
    cx, cy = 5.5 / 8 + 0.1, 3.5 / 8 - 0.05
    np.testing.assert_allclose(rows[0, :4], [cx - 0.25, cy - 0.125, cx + 0.25, cy + 0.125], atol=1e-6)
    np.testing.assert_allclose(rows[0, 4:6], [5.5 / 8 - 0.1, 3.5 / 8], atol=1e-6)
    assert rows[0, -1] == pytest.approx(1 / (1 + np.exp(-3.0)))
    assert len(B.decode(regressors, logits, min_score=0.99)) == 0


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces():
    a = np.r_[[0.1, 0.1, 0.5, 0.5], np.full(12, 0.2), 0.9]
    b = np.r_[[0.12, 0.1, 0.52, 0.5], np.full(12, 0.4), 0.3]  # overlaps a
    c = np.r_[[0.6, 0.6, 0.9, 0.9], np.full(12, 0.7), 0.8]  # a second face
    merged = B.weighted_nms(np.stack([b, c, a]))
    assert merged.shape == (2, 17)
    np.testing.assert_allclose(merged[0, :16], (0.9 * a[:16] + 0.3 * b[:16]) / 1.2)
    assert merged[0, -1] == 0.9  # the best score of the cluster
    np.testing.assert_allclose(merged[1], c)
    assert B.weighted_nms(np.zeros((0, 17))).shape == (0, 17)


def test_missing_weights_say_how_to_install(monkeypatch):
    monkeypatch.setattr(B.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(B.WeightsMissing, match="pip install --no-deps mediapipe==0.10.14"):
        B.model_path()


def test_processor_rejects_unknown_detector_and_saves_its_choice(tmp_path):
    with pytest.raises(ValueError, match="face_detector must be one of mtcnn, blazeface"):
        FaceImageProcessor(face_detector="haar")
    FaceImageProcessor(face_detector="blazeface").save_pretrained(tmp_path)
    assert FaceImageProcessor.from_pretrained(tmp_path).face_detector == "blazeface"
    # checkpoints saved before the option existed were MTCNN ones
    (tmp_path / "preprocessor_config.json").write_text('{"image_processor_type": "FaceImageProcessor"}')
    assert FaceImageProcessor.from_pretrained(tmp_path).face_detector == "mtcnn"


# -- the network -------------------------------------------------------------------------------------


@needs_weights
def test_graph_equals_the_tflite_interpreter():
    """The torch rebuild of the graph gives TFLite's own outputs (LiteRT, XNNPACK) on the same input."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = litert.Interpreter(str(B.model_path()))
    interpreter.allocate_tensors()
    pixels = np.random.default_rng(0).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    photo = FACES_DIR / "fake" / "omi_0001.jpg"
    if photo.is_file():  # a real face gives confident anchors too, not only noise
        pixels = np.asarray(Image.open(photo).convert("RGB").resize((128, 128)), np.float32)[None] / 127.5 - 1
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
    interpreter.invoke()
    expected = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    network = G.TFLiteGraph(B.model_path().read_bytes()).eval()
    with torch.inference_mode():
        outputs = network(torch.from_numpy(pixels.transpose(0, 3, 1, 2).copy()))
    for name, value in zip(network.output_names, outputs, strict=True):
        np.testing.assert_allclose(value.numpy(), expected[name], atol=1e-3, rtol=1e-4)


@needs_weights
def test_onnx_backend_gives_the_same_detections():
    pytest.importorskip("onnxruntime")
    rgb = np.asarray(_face_photo())
    eager, fast = B.blazeface("pytorch").detect(rgb), B.blazeface("onnx").detect(rgb)
    assert len(eager) == len(fast) == 1
    np.testing.assert_allclose(eager, fast, atol=1e-3)


@needs_weights
def test_a_failed_export_falls_back_to_pytorch(monkeypatch, caplog):
    from hf_detector.runtime import onnx as fast

    def broken(*args, **kwargs):
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(fast, "_load_session", broken)
    detector = B.BlazeFace("onnx")
    assert detector.session is None and "using PyTorch" in caplog.text
    assert len(detector.detect(np.zeros((64, 64, 3), np.uint8))) == 0


# -- the detector ------------------------------------------------------------------------------------


@needs_weights
def test_face_is_found_and_framed_like_mtcnn():
    image = _face_photo()
    face = F.BlazeFaceDetector().largest(image)
    assert face is not None and face.scheme == "blazeface" and face.landmarks.shape == (4, 2)
    left_eye, right_eye, nose, mouth = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0] and max(left_eye[1], right_eye[1]) < nose[1] < mouth[1]
    ours = F.crop_face(image, F.BlazeFaceDetector(), size=128, margin=-0.25)
    reference = F.crop_face(image, F.FaceDetector(), size=128, margin=-0.25)
    assert ours.method == reference.method == "aligned"
    a, b = (np.asarray(c.image, np.float64).ravel() for c in (ours, reference))
    assert np.corrcoef(a, b)[0, 1] > 0.9  # same framing within a few pixels


@needs_weights
def test_small_face_in_a_large_scene_falls_back_to_mtcnn():
    face = _face_photo().resize((90, 90), Image.Resampling.LANCZOS)
    scene = Image.new("RGB", (1200, 900), (120, 140, 110))
    scene.paste(face, (800, 200))
    detector = F.BlazeFaceDetector()
    assert detector._blazeface(scene) == []  # too small for BlazeFace's 128 px view ...
    found = detector.largest(scene)
    assert found is not None and found.scheme == "mtcnn"  # ... so MTCNN finds it
    x0, y0, x1, y1 = found.box
    assert 790 < (x0 + x1) / 2 < 900 and 190 < (y0 + y1) / 2 < 300
    assert F.crop_face(scene, detector, size=64).method == "aligned"


@needs_weights
@pytest.mark.parametrize("size", [(1, 1), (3000, 2), (40, 40)])
def test_no_face_gives_a_centre_crop(size):
    crop = F.crop_face(Image.new("RGB", size, (128, 128, 128)), F.BlazeFaceDetector(), size=64)
    assert crop.method == "center" and crop.face is None and crop.image.size == (64, 64)


@needs_weights
@pytest.mark.slow
def test_training_saves_the_detector_and_inference_uses_it(tmp_path):
    import json

    from conftest import make_image_folder, tiny_training_argv

    from hf_detector.inference.detector import Detector
    from hf_detector.training.trainer import main as train_main

    data = make_image_folder(tmp_path / "faces", per_class=8)
    out = tmp_path / "run"
    argv = tiny_training_argv(data, out, model="custom_cnn", image_size=24, max_steps=2)
    argv[argv.index("--face_crop") + 1] = "true"
    train_main([*argv, "--face_detector", "blazeface"])
    assert json.loads((out / "preprocessor_config.json").read_text())["face_detector"] == "blazeface"
    detector = Detector.from_pretrained(str(out), backend="pytorch")
    assert isinstance(detector.face_detector, F.BlazeFaceDetector)
    if FACES_DIR.is_dir():
        prediction = detector.predict(FACES_DIR / "fake" / "omi_0001.jpg")
        assert prediction.crop_method == "aligned" and prediction.faces[0].scheme == "blazeface"
    override = Detector.from_pretrained(str(out), backend="pytorch", face_detector="mtcnn")
    assert isinstance(override.face_detector, F.FaceDetector)
    with pytest.raises(ValueError, match="face_detector must be one of"):
        Detector.from_pretrained(str(out), face_detector="dlib")
