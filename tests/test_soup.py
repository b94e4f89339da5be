"""Model soup: weight averaging of same-architecture runs, with the baked-in temperatures undone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import make_image_folder, tiny_training_argv

from hf_detector.models import create_model
from hf_detector.training.soup import SoupError, average_into, check_ingredients
from hf_detector.training.trainer import bake_temperature
from hf_detector.training.trainer import main as train_main


def _save_calibrated(model: torch.nn.Module, path: Path, temperature: float) -> None:
    """Save as training does: the temperature divided into the head and recorded in the config."""
    calibrated = create_model("mobilenet_v2_0.35", image_size=32)
    calibrated.load_state_dict(model.state_dict())
    bake_temperature(calibrated, temperature)
    calibrated.config.detector_temperature = temperature
    calibrated.save_pretrained(path)


def _pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    first = create_model("mobilenet_v2_0.35", image_size=32)
    torch.manual_seed(1)
    second = create_model("mobilenet_v2_0.35", image_size=32)
    with torch.no_grad():  # distinct batch-norm statistics too, so buffers are averaged visibly
        for module in second.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.num_batches_tracked.fill_(7)
    return first, second


def test_soup_is_the_mean_of_uncalibrated_weights(tmp_path: Path) -> None:
    first, second = _pair()
    expected = {name: (tensor + second.state_dict()[name]) / 2 if tensor.is_floating_point() else tensor.clone()
                for name, tensor in first.state_dict().items()}
    _save_calibrated(second, tmp_path / "second", temperature=2.5)
    average_into(first, [tmp_path / "second"])
    for name, tensor in first.state_dict().items():
        assert torch.allclose(tensor, expected[name], atol=1e-6), name
    assert int(first.state_dict()["mobilenet_v2.conv_stem.first_conv.normalization.num_batches_tracked"]) == 0


def test_soup_with_itself_gives_the_model_back(tmp_path: Path) -> None:
    model, _ = _pair()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    _save_calibrated(model, tmp_path / "same", temperature=0.7)
    average_into(model, [tmp_path / "same", tmp_path / "same"])
    assert all(torch.allclose(model.state_dict()[name], tensor, atol=1e-6) for name, tensor in before.items())


def test_soup_rejects_what_it_cannot_average(tmp_path: Path) -> None:
    model, _ = _pair()
    create_model("resnet-18", image_size=32).save_pretrained(tmp_path / "resnet")
    with pytest.raises(SoupError, match="another architecture") as error:
        check_ingredients(model, [tmp_path / "resnet"])
    assert "\n" not in str(error.value)
    with pytest.raises(SoupError, match="not a checkpoint"):
        check_ingredients(model, [tmp_path / "missing"])
    _save_calibrated(model, tmp_path / "truncated", temperature=1.0)
    weights = tmp_path / "truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(SoupError, match="unreadable weights"):
        check_ingredients(model, [tmp_path / "truncated"])


@pytest.mark.slow
def test_training_soup_runs_and_bad_ingredient_fails_before_training(trained_tiny_model: Path,
                                                                      tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "faces", per_class=16)
    out = tmp_path / "soup"
    record = train_main(tiny_training_argv(data, out, max_steps=2,
                                           extra=["--seed", "7", "--soup_with", str(trained_tiny_model)]))
    assert record["training"]["soup_with"] == [str(trained_tiny_model)]
    assert json.loads((out / "metrics.json").read_text())["training"]["soup_with"] == [str(trained_tiny_model)]
    assert "in-distribution test" in record["evaluations"]

    with pytest.raises(SystemExit, match="soup ingredient .*not a checkpoint"):
        train_main(tiny_training_argv(data, tmp_path / "bad", max_steps=2,
                                      extra=["--soup_with", str(tmp_path / "nowhere")]))
    assert not (tmp_path / "bad" / "model.safetensors").exists()


def test_soup_of_checkpoints_is_uncalibrated_mean(tmp_path: Path) -> None:
    from hf_detector.training.soup import soup

    first, second = _pair()
    _save_calibrated(first, tmp_path / "a", temperature=0.8)
    _save_calibrated(second, tmp_path / "b", temperature=1.7)
    mixed = soup([tmp_path / "a", tmp_path / "b"])
    assert not mixed.training and mixed.config.detector_temperature == 1.0
    name = "classifier.weight"
    expected = (first.state_dict()[name] + second.state_dict()[name]) / 2
    assert torch.allclose(mixed.state_dict()[name], expected, atol=1e-6)
    with pytest.raises(SoupError, match="not a checkpoint"):
        soup([tmp_path / "nothing"])
