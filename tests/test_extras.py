"""The light install and its extras: a command that needs an extra which is missing says so in one line.

Here torch is installed, so its absence is simulated (`hf_detector.data.extras.installed` answers False for
the torch-side modules); tests/test_wheel.py checks the same on a real install without torch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hf_detector.data import extras

ROOT = Path(__file__).resolve().parent.parent
FACE = ROOT / "examples" / "real_ffhq_01002.jpg"
TORCH_SIDE = {"torch", "torchvision", "transformers", "safetensors", "pytorch_grad_cam", "datasets", "accelerate"}


@pytest.fixture
def no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    real = extras.installed
    monkeypatch.setattr(extras, "installed", lambda module: module not in TORCH_SIDE and real(module))


def test_require_names_the_extra(no_torch: None) -> None:
    with pytest.raises(extras.MissingExtra) as caught:
        extras.require("training", "train", "torch", "datasets")
    assert str(caught.value) == "training needs PyTorch: pip install 'hf-detector[train]'"
    with pytest.raises(ImportError, match=r"--streaming needs datasets: pip install 'hf-detector\[train\]'"):
        extras.require("--streaming", "train", "datasets")
    extras.require("predict", "torch", "numpy", "onnxruntime")  # present: nothing raised
    with pytest.raises(ValueError):
        extras.install_hint("gpu")


@pytest.mark.parametrize(("argv", "expected"), [
    (["train", "--help"], "error: training needs PyTorch: pip install 'hf-detector[train]'"),
    (["export", "--model", "somewhere"], "error: ONNX export needs PyTorch: pip install 'hf-detector[torch]'"),
    (["quantize", "--model", "m", "--data", "d"], "error: int8 quantisation needs PyTorch: pip install 'hf-detector[train]'"),
    (["predict", "--backend", "pytorch", str(FACE)], "error: --backend pytorch needs PyTorch: pip install 'hf-detector[torch]'"),
    (["evaluate", "--streaming", "--data", "user/set"], "error: --streaming needs datasets: pip install 'hf-detector[train]'"),
    (["evaluate", "--data", "user/faces"],
     "error: user/faces: evaluating a Hub dataset (not a folder here) needs datasets: pip install 'hf-detector[train]'"),
])
def test_cli_without_torch_fails_in_one_line(no_torch: None, argv: list[str], expected: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from hf_detector.cli import main

    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == expected


def test_checkpoint_without_export_needs_torch(no_torch: None, tmp_path: Path) -> None:
    import shutil

    from hf_detector.data.checkpoints import DEFAULT_MODEL
    from hf_detector.inference.detector import Detector, ModelLoadError

    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "preprocessor_config.json", "model.safetensors"):
        shutil.copy(DEFAULT_MODEL / name, folder / name)
    with pytest.raises(ModelLoadError, match=r"has no ONNX export validated for its weights, so scoring it "
                                             r"needs PyTorch: pip install 'hf-detector\[torch\]'"):
        Detector.from_pretrained(str(folder))


def test_missing_default_model_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from hf_detector.inference import detector as module

    monkeypatch.setattr("hf_detector.data.checkpoints.default_model_available", lambda: False)
    with pytest.raises(module.ModelLoadError) as caught:
        module.resolve_model_path(None)
    message = str(caught.value)
    assert "bundled yet" not in message and "reinstall hf-detector" in message and "--model" in message


def test_app_without_torch_still_predicts(no_torch: None) -> None:
    pytest.importorskip("gradio")
    from hf_detector.app import ui
    from hf_detector.inference.detector import Detector

    detector = Detector.from_pretrained()
    assert detector.backend in ("onnx", "int8")
    label, verdict, boxed, crop, heatmap, _hints = ui.make_classify(detector)(str(FACE))
    assert label["decision"] in ("real", "fake") and "p(fake)" in verdict
    assert boxed is not None and crop is not None
    assert heatmap.value is None  # the panel is emptied and says why
    assert heatmap.label.endswith("(Grad-CAM needs PyTorch: pip install 'hf-detector[torch]')")
