"""The patch-level MobileNetV2 (`mobilenet_v2_local`): ImageNet blocks as the full network has them, a vote
whose every location sees only its receptive field, and a checkpoint that loads and scores alike everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import make_image_folder, synthetic_image, tiny_training_argv
from transformers import AutoModelForImageClassification, pipeline

from hf_detector.models import ModelSpec, create_model
from hf_detector.models.local_mobilenet_v2 import LocalMobileNetV2Config, receptive_field


def test_imagenet_blocks_compute_the_full_networks_features() -> None:
    local = create_model(ModelSpec("mobilenet_v2_local", image_size=64, local_blocks=5)).eval()
    full = create_model(ModelSpec("mobilenet_v2", image_size=64)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = full.mobilenet_v2(x, output_hidden_states=True).hidden_states[4]
        ours = local.mobilenet_v2.conv_stem(x)
        for block in local.mobilenet_v2.layer:
            ours = block(ours)
    assert ours.shape == reference.shape == (2, 32, 8, 8)
    assert torch.equal(ours, reference)
    assert "first 5 blocks" in local.config.base_model


@pytest.mark.parametrize("blocks", [3, 5])
def test_each_location_sees_only_its_receptive_field(blocks: int) -> None:
    """The gradient of one location's logit is zero outside a window of receptive_field(blocks) pixels, and
    non-zero across most of it: the vote is local by construction."""
    torch.manual_seed(0)
    model = create_model(ModelSpec("mobilenet_v2_local", image_size=128, local_blocks=blocks,
                                   pretrained=False)).eval()
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    logits = model.location_logits(x)
    row, col = logits.shape[2] // 2, logits.shape[3] // 2
    logits[0, 1, row, col].backward()
    touched = x.grad[0].abs().sum(0) > 0
    rows, cols = touched.any(1).nonzero().flatten(), touched.any(0).nonzero().flatten()
    field, stride = receptive_field(blocks)
    assert 128 // logits.shape[2] == stride
    assert int(rows.max() - rows.min() + 1) <= field and int(cols.max() - cols.min() + 1) <= field
    assert int(rows.max() - rows.min() + 1) >= field - 2 * stride  # padding trims nothing at the centre


def test_logits_are_the_mean_of_the_location_votes() -> None:
    model = create_model(ModelSpec("mobilenet_v2_local", image_size=64, pretrained=False)).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(pixel_values=x).logits, model.location_logits(x).mean(dim=(2, 3)))


def test_bad_block_count_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="local_blocks must be 1-16"):
        LocalMobileNetV2Config(local_blocks=17)


def test_auto_classes_load_it(tmp_path: Path) -> None:
    model = create_model(ModelSpec("mobilenet_v2_local", image_size=64, local_blocks=4)).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert loaded.config.local_blocks == 4
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(pixel_values=x).logits, loaded(pixel_values=x).logits)


@pytest.mark.slow
def test_trained_local_model_scores_alike_on_every_path(tmp_path: Path) -> None:
    """A real (tiny) training run: the ONNX export written at its end, the PyTorch backend and pipeline()
    give one p(fake)."""
    from hf_detector.inference.detector import Detector

    data = make_image_folder(tmp_path / "faces", per_class=12)
    out = tmp_path / "run"
    from hf_detector.training.trainer import main as train_main

    record = train_main(tiny_training_argv(data, out, model="mobilenet_v2_local", image_size=48, max_steps=3,
                                           extra=["--local_blocks", "4"]))
    assert record["architecture"] == "mobilenet_v2_local"
    assert json.loads((out / "config.json").read_text())["local_blocks"] == 4
    assert (out / "onnx").is_dir()
    image = tmp_path / "probe.png"
    synthetic_image("fake", 5).save(image)
    onnx = Detector.from_pretrained(str(out), backend="onnx").predict(image)
    torch_backend = Detector.from_pretrained(str(out), backend="pytorch").predict(image)
    scores = {r["label"]: r["score"] for r in pipeline("image-classification", model=str(out))(str(image))}
    assert abs(onnx.p_fake - torch_backend.p_fake) < 1e-4
    assert abs(torch_backend.p_fake - scores["fake"]) < 1e-4
