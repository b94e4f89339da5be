"""Static int8 (hf_detector.inference.int8): built from real crops, kept only when it predicts like fp32,
run by default only for the weights it was built from. Tiny real checkpoints; no timing assertions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_detector.cli import main as cli_main
from hf_detector.inference import backends as fast
from hf_detector.inference import int8 as quantize
from hf_detector.inference.detector import Detector

pytestmark = pytest.mark.skipif(not fast.onnx_available(), reason="onnxruntime/onnx not installed")


@pytest.fixture(autouse=True)
def _onnx_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DETECTOR_CACHE", str(tmp_path_factory.getbasetemp() / "onnx-cache"))
    monkeypatch.delenv("HF_DETECTOR_BACKEND", raising=False)


def _crops(checkpoint: Path, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    detector = Detector.from_pretrained(str(checkpoint), backend="pytorch")
    paths = sorted(folder.rglob("*.png"))
    labels = np.array([1 if "fake" in p.parts else 0 for p in paths])
    return quantize.crops_of(detector, [str(p) for p in paths]), labels


@pytest.fixture
def checkpoint(trained_tiny_model: Path, tmp_path: Path) -> Path:
    """A private copy of the session's tiny trained model, without any int8 model of its own."""
    copy = tmp_path / "model"
    shutil.copytree(trained_tiny_model, copy)
    shutil.rmtree(copy / quantize.INT8_DIR, ignore_errors=True)
    return copy


def test_training_run_records_the_int8_decision(trained_tiny_model: Path) -> None:
    """The Trainer CLI builds and checks the int8 model of what it saved; metrics.json says what happened."""
    record = json.loads((trained_tiny_model / "metrics.json").read_text())["int8"]
    kept = quantize.validated_int8(trained_tiny_model) is not None
    assert record["kept"] is kept
    if kept:
        assert all(check["agreement"] >= quantize.MIN_AGREEMENT for check in record["checks"].values())
        assert record["weights_sha256"] == quantize.weights_sha256(trained_tiny_model)
        assert Detector.from_pretrained(str(trained_tiny_model)).backend == "int8"
    else:
        assert "int8" in record["reason"] or "agree" in record["reason"]


def test_kept_int8_model_runs_by_default_and_predicts_like_fp32(checkpoint: Path, image_folder: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    crops, labels = _crops(checkpoint, image_folder)
    monkeypatch.setattr(quantize, "MIN_AGREEMENT", 0.0)  # a 6-step model sits at 0.5: test the mechanics
    monkeypatch.setattr(quantize, "MAX_AUROC_SHIFT", 1.0)
    report = quantize.quantize_checkpoint(checkpoint, crops, crops, labels, labels, calibration_images=16)
    assert report.passed and report.calibration_images == 16
    # checked on the test set and on the validation images it was not calibrated on
    assert report.checks["test"].images == len(crops) and report.checks["validation"].images == len(crops) - 16
    assert quantize.validated_int8(checkpoint) == checkpoint / "onnx" / "model_int8.onnx"
    saved = json.loads((checkpoint / "onnx" / "quantization.json").read_text())
    assert saved["weights_sha256"] == quantize.weights_sha256(checkpoint)
    # the first conv and the classifier head stay fp32; everything else is quantised
    assert any("classifier" in name for name in saved["kept_fp32"])

    int8 = Detector.from_pretrained(str(checkpoint))
    reference = Detector.from_pretrained(str(checkpoint), backend="pytorch")
    assert int8.backend == "int8" and reference.backend == "pytorch"
    pixels = torch.from_numpy(crops[:8])
    a, b = int8._forward(pixels), reference._forward(pixels)
    assert a.shape == b.shape == (8, 2)
    # the Detector runs exactly the model that was checked (crops[:8] are among the check images) ...
    assert np.abs(a - b)[:, 1].max() <= report.checks["test"].max_abs_p_fake_change + 1e-5
    assert report.checks["test"].max_abs_p_fake_change < 0.5
    assert not np.allclose(a, b, atol=1e-6)  # ... and really the int8 graph, not the fp32 one

    from hf_detector.hub.card import build_card
    from hf_detector.hub.push import files_to_upload

    card = str(build_card(checkpoint))
    assert "static int8 model" in card and "on the test split its labels agree with fp32" in card
    assert Path("onnx/model_int8.onnx") in files_to_upload(checkpoint)  # pushed with the weights


def test_refusal_writes_nothing(checkpoint: Path, image_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crops, labels = _crops(checkpoint, image_folder)
    before = sorted(p.name for p in checkpoint.rglob("*"))
    monkeypatch.setattr(quantize, "MIN_AGREEMENT", 1.01)  # unreachable: the check must refuse
    with pytest.raises(quantize.QuantizationRefused, match=r"int8 not kept: test: agrees with fp32 on"):
        quantize.quantize_checkpoint(checkpoint, crops, crops, labels)
    assert sorted(p.name for p in checkpoint.rglob("*")) == before
    assert Detector.from_pretrained(str(checkpoint)).backend == "onnx"


def test_each_check_set_must_hold_on_its_own() -> None:
    """A model that agrees on the test split but not on the held-back validation images is not kept."""
    good = quantize.Agreement(images=899, disagreements=3, agreement=896 / 899, auroc_fp32=0.99, auroc_int8=0.99,
                              max_abs_p_fake_change=0.2)
    bad = quantize.Agreement(images=743, disagreements=5, agreement=738 / 743, auroc_fp32=0.99, auroc_int8=0.99,
                             max_abs_p_fake_change=0.2)
    shifted = quantize.Agreement(images=100, disagreements=0, agreement=1.0, auroc_fp32=0.99, auroc_int8=0.98,
                                 max_abs_p_fake_change=0.2)
    assert good.holds() and not bad.holds() and not shifted.holds()


def test_int8_for_other_weights_is_ignored(checkpoint: Path, image_folder: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Retrained or edited weights never run a stale int8 file: auto falls back to ONNX fp32."""
    from safetensors.torch import load_file, save_file

    crops, labels = _crops(checkpoint, image_folder)
    monkeypatch.setattr(quantize, "MIN_AGREEMENT", 0.0)
    monkeypatch.setattr(quantize, "MAX_AUROC_SHIFT", 1.0)
    quantize.quantize_checkpoint(checkpoint, crops, crops, labels, labels, calibration_images=8)
    weights = load_file(checkpoint / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 0.01
    save_file(weights, checkpoint / "model.safetensors", metadata={"format": "pt"})
    assert quantize.validated_int8(checkpoint) is None
    assert Detector.from_pretrained(str(checkpoint)).backend == "onnx"
    with pytest.raises(fast.BackendUnavailable, match="no int8 model validated"):
        Detector.from_pretrained(str(checkpoint), backend="int8")


def test_int8_file_with_external_data_is_not_run(checkpoint: Path, image_folder: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A (downloaded) int8 file whose tensors point at other files is never handed to ONNX Runtime."""
    import onnx

    crops, labels = _crops(checkpoint, image_folder)
    monkeypatch.setattr(quantize, "MIN_AGREEMENT", 0.0)
    monkeypatch.setattr(quantize, "MAX_AUROC_SHIFT", 1.0)
    quantize.quantize_checkpoint(checkpoint, crops, crops, labels, labels, calibration_images=8)
    path = checkpoint / "onnx" / "model_int8.onnx"
    model = onnx.load(str(path))
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../../etc/hostname"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(fast.BackendUnavailable, match="external tensor data"):
        fast.Int8Classifier(path)
    assert Detector.from_pretrained(str(checkpoint)).backend == "onnx"  # falls back, with a warning


def test_damaged_report_is_ignored(checkpoint: Path) -> None:
    (checkpoint / "onnx").mkdir()
    (checkpoint / "onnx" / "model_int8.onnx").write_bytes(b"not onnx")
    (checkpoint / "onnx" / "quantization.json").write_text("{not json")
    assert quantize.validated_int8(checkpoint) is None
    assert Detector.from_pretrained(str(checkpoint)).backend == "onnx"


def test_cli_quantize_on_the_training_folder(checkpoint: Path, image_folder: Path, capsys) -> None:
    """`hf-detector quantize` calibrates on the validation split and checks on the test split; either it
    keeps the int8 model (and says how well it agrees) or refuses in one line, leaving the checkpoint as is."""
    code = cli_main(["quantize", "--model", str(checkpoint), "--data", str(image_folder),
                     "--validation-fraction", "0.25", "--test-fraction", "0.25"])
    out, err = capsys.readouterr()
    if code == 0:
        assert "test: agrees with fp32 on" in out and quantize.validated_int8(checkpoint) is not None
    else:
        assert code == 1 and err.startswith("error: int8 not kept:") and len(err.strip().splitlines()) == 1
        assert not (checkpoint / "onnx").exists()


def test_cli_quantize_needs_a_local_checkpoint(tmp_path: Path, image_folder: Path, capsys) -> None:
    assert cli_main(["quantize", "--model", str(tmp_path), "--data", str(image_folder)]) == 2
    assert "not a local checkpoint directory" in capsys.readouterr().err


def test_kept_in_fp32_picks_grouped_convs_first_conv_and_head() -> None:
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], name="stem"),
             helper.make_node("Conv", ["a", "w1"], ["b"], name="depthwise", group=8),
             helper.make_node("Conv", ["b", "w2"], ["c"], name="pointwise"),
             helper.make_node("Gemm", ["c", "w3"], ["y"], name="head")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    assert quantize.kept_in_fp32(onnx.helper.make_model(graph).graph) == ["depthwise", "stem", "head"]


def test_crops_of_takes_the_light_runtimes_numpy_pixels(trained_tiny_model: Path, image_folder: Path) -> None:
    """`hf-detector quantize` frames crops with the default (ONNX, numpy) detector: same crops as PyTorch's."""
    paths = [str(p) for p in sorted(image_folder.rglob("*.png"))][:4]
    light = quantize.crops_of(Detector.from_pretrained(str(trained_tiny_model)), paths)
    eager = quantize.crops_of(Detector.from_pretrained(str(trained_tiny_model), backend="pytorch"), paths)
    assert light.shape == eager.shape and light.shape[0] == len(paths)
    np.testing.assert_allclose(light, eager, atol=1e-5)
