"""The Gradio app, end to end through `gradio_client`, on a tiny checkpoint this module trains itself.

Fast tests (no server): verdict wording, zip expansion limits, Grad-CAM per architecture.
Slow tests: the app launched in-process (`launch(prevent_thread_lock=True)`) and `python app.py` as a
subprocess, both called by name (`/classify`, `/classify_batch`) like any API user would.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
REAL_EXAMPLE = EXAMPLES / "real_ffhq_01002.jpg"
FAKE_EXAMPLE = EXAMPLES / "fake_stylegan2_omi_104.jpg"
VERDICT_RE = re.compile(r"^### (Likely AI-generated|Likely a real photo|Uncertain: p\(fake\))")


def load_app() -> ModuleType:
    """The app's layout and handlers (`hf_detector.app.ui`), after checking that the repository's thin
    app.py (a script at the root, the Space entry point) exposes the same functions."""
    from hf_detector.app import ui

    if not ("app" in sys.modules and getattr(sys.modules["app"], "__file__", "") == str(ROOT / "app.py")):
        spec = importlib.util.spec_from_file_location("app", ROOT / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["app"] = module
        spec.loader.exec_module(module)
    entry = sys.modules["app"]
    assert entry.main is ui.main and entry.build_demo is ui.build_demo and entry.load_detector is ui.load_detector
    return ui


def _load_server_helpers() -> ModuleType:
    """bench/load_app.py: starting `python app.py` and stopping it, shared by the benchmark and these tests."""
    spec = importlib.util.spec_from_file_location("bench_load_app", ROOT / "bench" / "load_app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SERVER = _load_server_helpers()
free_port, start_app, stop_app = SERVER.free_port, SERVER.start_app, SERVER.stop_app


def make_tiny_checkpoint(out: Path, steps: int = 6) -> Path:
    """A MobileNetV2-0.35 at 64 px, trained a few steps on the four examples' face crops, saved like
    any checkpoint (safetensors + config with id2label + FaceImageProcessor config)."""
    from hf_detector.models import ModelSpec, create_model
    from hf_detector.preprocessing.processor import FaceImageProcessor

    torch.manual_seed(0)
    model = create_model(ModelSpec(name="mobilenet_v2_0.35", image_size=64, pretrained=False))
    processor = FaceImageProcessor(crop_size=160, size=64)
    files = sorted(EXAMPLES.glob("*.jpg"))
    labels = torch.tensor([1 if file.name.startswith("fake") else 0 for file in files])
    pixels = processor(images=[str(file) for file in files])["pixel_values"]
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        loss = model(pixel_values=pixels, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    model.config.detector_threshold = 0.5
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


class Server:
    def __init__(self, demo: Any, url: str) -> None:
        from gradio_client import Client

        self.demo = demo
        self.url = url
        self.client = Client(url, verbose=False)


def launch_app(checkpoint: Path) -> Server:
    app = load_app()
    demo = app.build_demo(app.load_detector(str(checkpoint)))
    port = free_port()
    demo.launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs("127.0.0.1", port))
    return Server(demo, f"http://127.0.0.1:{port}/")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-app-model"))


@pytest.fixture(scope="module")
def server(tiny_checkpoint: Path) -> Iterator[Server]:
    running = launch_app(tiny_checkpoint)
    yield running
    running.demo.close()


def _label_ok(label: dict[str, Any], verdict: str | None = None) -> None:
    """The standard gr.Label output; its label is the thresholded decision, which the sentence states."""
    assert set(label) >= {"label", "confidences"}
    assert label["label"] in {"real", "fake"}
    confidences = {item["label"]: item["confidence"] for item in label["confidences"]}
    assert set(confidences) == {"real", "fake"}
    assert abs(sum(confidences.values()) - 1.0) < 1e-4
    if verdict is not None and not verdict.startswith("### Uncertain"):
        assert ("AI-generated" in verdict) == (label["label"] == "fake"), (label, verdict)


# ---------------------------------------------------------------------------------------- fast tests


def test_verdict_wording() -> None:
    app = load_app()
    component = app.decision_label()
    data = component.postprocess({"decision": "fake", "probabilities": {"real": 0.6, "fake": 0.4}})
    assert data.label == "fake" and [c.label for c in data.confidences] == ["real", "fake"]
    assert component.postprocess({"real": 0.6, "fake": 0.4}).label == "real"  # plain dicts as usual
    assert app.verdict_sentence(0.93, 0.5) == "Likely AI-generated (p(fake) = 0.93; threshold 0.50)."
    assert app.verdict_sentence(0.07, 0.5) == "Likely a real photo (p(fake) = 0.07; threshold 0.50)."
    assert app.verdict_sentence(0.55, 0.5).startswith("Uncertain: p(fake) = 0.55 is within 0.10 of the threshold")
    assert app.verdict_sentence(0.41, 0.5).startswith("Uncertain")
    assert app.verdict_sentence(0.9991, 0.5) == "Likely AI-generated (p(fake) > 0.99; threshold 0.50)."
    assert app.verdict_sentence(0.30, 0.35).startswith("Uncertain")  # the band follows the threshold
    assert [app.verdict_word(p, 0.5) for p in (0.1, 0.45, 0.9)] == ["real", "uncertain", "fake"]


def test_framing_is_described_from_the_checkpoints_own_processor() -> None:
    from hf_detector.preprocessing.processor import FaceImageProcessor

    context = FaceImageProcessor(face_context=2.5, face_detector="blazeface").describe_framing()
    assert context.startswith("the face with its surroundings") and "2.5x the face box found by BlazeFace" in context
    assert "aligned on MTCNN's landmarks" in FaceImageProcessor().describe_framing()
    assert "no face detection" in FaceImageProcessor(do_face_crop=False).describe_framing()


def test_zip_expansion_is_bounded_and_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = load_app()
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(REAL_EXAMPLE, "a/real.jpg")
        handle.writestr("../../escape.jpg", REAL_EXAMPLE.read_bytes())
        handle.writestr("notes/", "")
        handle.writestr("readme.txt", "not an image")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 definitely not a zip")
    work = tmp_path / "work"
    work.mkdir()
    items, errors = app._expand_uploads([str(REAL_EXAMPLE), str(archive), str(broken)], work)
    names = [name for name, _ in items]
    assert names == ["real_ffhq_01002.jpg", "faces.zip/a/real.jpg", "faces.zip/../../escape.jpg",
                     "faces.zip/readme.txt"]
    assert all(Path(path).parent == work for _, path in items[1:])  # generated names, nothing escapes
    assert not (tmp_path / "escape.jpg").exists()
    assert [row[0] for row in errors] == ["broken.zip"] and "cannot open zip" in errors[0][4]
    monkeypatch.setattr(app, "MAX_BATCH_FILES", 2)
    items, errors = app._expand_uploads([str(archive)], work)
    assert len(items) == 2 and any("more than 2 files" in row[4] for row in errors)


@pytest.mark.parametrize("name", ["mobilenet_v2_0.35", "resnet-18", "custom_cnn"])
def test_gradcam_per_architecture(name: str, one_thread: None) -> None:
    from hf_detector.models import ModelSpec, create_model
    from hf_detector.signals.gradcam import gradcam, gradcam_overlay, target_layer

    model = create_model(ModelSpec(name=name, image_size=32, pretrained=False)).eval()
    assert isinstance(target_layer(model), torch.nn.Module)

    class Processor:
        image_mean = [0.5, 0.5, 0.5]
        image_std = [0.5, 0.5, 0.5]

        def finish(self, crops: list[Image.Image]) -> torch.Tensor:
            arrays = [np.asarray(c.resize((32, 32)), np.float32).transpose(2, 0, 1) / 127.5 - 1 for c in crops]
            return torch.from_numpy(np.stack(arrays))

    class Detector:
        def __init__(self) -> None:
            self.model, self.processor, self.fake_index = model, Processor(), 1

    class Prediction:
        label = "fake"
        crop = Image.open(FAKE_EXAMPLE).convert("RGB").resize((48, 48))
        pixel_values = None

    detector, prediction = Detector(), Prediction()
    heat = gradcam(detector, prediction)
    assert heat.shape == (32, 32) and heat.dtype == np.float32
    assert 0.0 <= float(heat.min()) and float(heat.max()) <= 1.0
    overlay = gradcam_overlay(detector, prediction, heatmap=heat)
    assert overlay.size == (48, 48) and overlay.mode == "RGB"
    # the shared model is untouched (no hooks left behind, weights unchanged)
    assert not model._forward_hooks and all(not m._forward_hooks for m in model.modules())


# ---------------------------------------------------------------------------------------- API tests


@pytest.mark.slow
def test_classify_real_and_fake_examples(server: Server) -> None:
    from gradio_client import handle_file

    api = server.client.view_api(print_info=False, return_format="dict")
    assert {"/classify", "/classify_batch"} <= set(api["named_endpoints"])
    for example in (REAL_EXAMPLE, FAKE_EXAMPLE):
        label, verdict, boxed, crop, heatmap, hints = server.client.predict(
            handle_file(str(example)), api_name="/classify")
        _label_ok(label, verdict)
        assert VERDICT_RE.match(verdict), verdict
        assert "Face found" in verdict
        for image in (boxed, crop, heatmap):
            assert Path(image).is_file() and Image.open(image).size[0] > 0
        assert "proves nothing" in hints


@pytest.mark.slow
def test_metadata_hints_shown_apart(server: Server, tmp_path: Path) -> None:
    from gradio_client import handle_file

    info = PngInfo()
    info.add_text("parameters", "a portrait\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Seed: 1")
    path = tmp_path / "with_parameters.png"
    Image.open(REAL_EXAMPLE).save(path, pnginfo=info)
    label, verdict, *_, hints = server.client.predict(handle_file(str(path)), api_name="/classify")
    _label_ok(label)
    assert "image generator" in hints and "parameters" in hints
    assert "never used by it" in hints
    assert "generator" not in verdict  # the verdict is the model's alone


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    files["not_an_image.jpg"] = tmp_path / "not_an_image.jpg"
    files["not_an_image.jpg"].write_text("this is text, not a JPEG")
    data = REAL_EXAMPLE.read_bytes()
    files["truncated.jpg"] = tmp_path / "truncated.jpg"
    files["truncated.jpg"].write_bytes(data[: len(data) // 3])
    files["huge_pixels.png"] = tmp_path / "huge_pixels.png"
    Image.new("1", (12_000, 12_000)).save(files["huge_pixels.png"])  # 144 MP, a few kB on disk
    files["empty.png"] = tmp_path / "empty.png"
    files["empty.png"].write_bytes(b"")
    return files


def _odd_but_valid_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    face = Image.open(REAL_EXAMPLE).convert("RGB")
    files: dict[str, tuple[Path, str]] = {}
    path = tmp_path / "cmyk.jpg"
    face.convert("CMYK").save(path)
    files["cmyk"] = (path, "CMYK")
    path = tmp_path / "sixteen_bit.png"
    Image.fromarray(np.asarray(face.convert("L"), np.uint16) * 257).save(path)
    assert Image.open(path).mode.startswith("I")
    files["16-bit"] = (path, "bit depth")
    path = tmp_path / "animated.gif"
    face.save(path, save_all=True, append_images=[face.rotate(10)], duration=100, loop=0)
    files["animated"] = (path, "first frame")
    path = tmp_path / "transparent.png"
    face.convert("RGBA").save(path)
    files["rgba"] = (path, "Transparent")
    return files


@pytest.mark.slow
def test_bad_uploads_answer_with_a_message_and_the_server_survives(server: Server, tmp_path: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    expected = {
        "not_an_image.jpg": "not an image file",
        "truncated.jpg": "cannot",
        "huge_pixels.png": "too large",
        "empty.png": "empty",
    }
    for name, path in _bad_files(tmp_path).items():
        with pytest.raises(AppError) as caught:
            server.client.predict(handle_file(str(path)), api_name="/classify")
        message = str(caught.value)
        assert message.startswith("This file cannot be analysed"), (name, message)
        assert expected[name] in message.lower(), (name, message)
        assert str(tmp_path) not in message  # no server paths in user-facing text
    for name, (path, note) in _odd_but_valid_files(tmp_path).items():
        label, verdict, *_ = server.client.predict(handle_file(str(path)), api_name="/classify")
        _label_ok(label, verdict)
        assert note in verdict, (name, verdict)
    label, *_ = server.client.predict(handle_file(str(FAKE_EXAMPLE)), api_name="/classify")
    _label_ok(label)  # still answering


@pytest.mark.slow
def test_limits_file_size_and_no_url_fetch(server: Server, tmp_path: Path) -> None:
    from gradio_client import handle_file

    big = tmp_path / "big.jpg"
    big.write_bytes(REAL_EXAMPLE.read_bytes() + os.urandom(11 * 1024 * 1024))
    with pytest.raises(Exception, match=r"(?i)(size|large|413)"):
        server.client.predict(handle_file(str(big)), api_name="/classify")
    with pytest.raises(Exception, match="URLs are not fetched"):
        server.client.predict(handle_file("http://127.0.0.1:9/face.jpg"), api_name="/classify")
    label, *_ = server.client.predict(handle_file(str(REAL_EXAMPLE)), api_name="/classify")
    _label_ok(label)
    config = server.demo.config
    assert server.demo.max_file_size == 10 * 1024 * 1024
    assert server.demo._queue.default_concurrency_limit == 2 and config is not None


@pytest.mark.slow
def test_batch_one_row_per_file(server: Server, tmp_path: Path) -> None:
    from gradio_client import handle_file

    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(FAKE_EXAMPLE, "fakes/one.jpg")
        handle.writestr("fakes/broken.jpg", b"\xff\xd8\xff garbage")
    files = [REAL_EXAMPLE, FAKE_EXAMPLE, text, archive]
    table, csv_path, summary = server.client.predict(
        [handle_file(str(path)) for path in files], api_name="/classify_batch")
    assert table["headers"] == ["file", "verdict", "p_fake", "face_found", "error"]
    rows = table["data"]
    assert [row[0] for row in rows] == ["real_ffhq_01002.jpg", "fake_stylegan2_omi_104.jpg", "notes.txt",
                                        "more.zip/fakes/one.jpg", "more.zip/fakes/broken.jpg"]
    good = [row for row in rows if row[1] != "error"]
    bad = {row[0]: row[4] for row in rows if row[1] == "error"}
    assert len(good) == 3 and all(0.0 <= row[2] <= 1.0 and row[1] in {"real", "fake", "uncertain"} for row in good)
    assert set(bad) == {"notes.txt", "more.zip/fakes/broken.jpg"}
    assert "not an image" in bad["notes.txt"].lower()
    with open(csv_path, newline="", encoding="utf-8") as handle:
        written = list(csv.reader(handle))
    assert written[0] == ["file", "verdict", "p_fake", "face_found", "error"] and len(written) == len(rows) + 1
    assert "3 of 5 files classified" in summary and "notes.txt" in summary


# ---------------------------------------------------------------------------------- the real entry point


@pytest.mark.slow
def test_python_app_py_serves_model_id_on_port(tiny_checkpoint: Path) -> None:
    """`python app.py --port N` with MODEL_ID=<checkpoint>: starts, answers /classify, stops."""
    from gradio_client import Client, handle_file

    port = free_port()
    process = start_app(None, port, env={"MODEL_ID": str(tiny_checkpoint), "OMP_NUM_THREADS": "1",
                                         "HF_HUB_OFFLINE": "1"},
                        new_session=False)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        label, verdict, *_ = client.predict(handle_file(str(REAL_EXAMPLE)), api_name="/classify")
        _label_ok(label)
        assert VERDICT_RE.match(verdict)
    finally:
        stop_app(process)


def test_missing_model_is_a_clear_exit(tmp_path: Path) -> None:
    app = load_app()
    with pytest.raises(SystemExit, match="hf-detector app: .*config.json"):
        app.main(["--model", str(tmp_path)])
