"""Model soup: the uniform average of the weights of runs that differ only in their seed.

Runs fine-tuned from the same ImageNet weights stay in one basin of the loss, so their average is itself a
good model (Wortsman et al., 2022, "Model soups"), at no inference cost. Whether it beats its ingredients on
this data is measured, not assumed: docs/results.md, "Run-to-run spread". Checkpoints store a temperature
baked into the classifier (training.py, calibration), so each ingredient's head is first brought back to raw
logits; the soup is calibrated anew.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch


class SoupError(ValueError):
    """An ingredient that cannot be averaged with this model; the message is one line."""


def uncalibrated_model(path: str | Path) -> torch.nn.Module:
    """A checkpoint's classifier with its baked-in temperature undone (raw logits, as training left them)."""
    from ..inference.detector import load_classifier
    from .calibration import bake_temperature

    root = Path(path)
    if not (root / "config.json").is_file():
        raise SoupError(f"soup ingredient {root}: not a checkpoint (config.json + model.safetensors)")
    try:
        model = load_classifier(root)
    except (OSError, ValueError) as error:
        raise SoupError(f"soup ingredient {root}: {str(error).splitlines()[0]}") from None
    temperature = float(getattr(model.config, "detector_temperature", None) or 1.0)
    bake_temperature(model, 1.0 / temperature)  # dividing by 1/T multiplies the head back by T
    model.config.detector_temperature = 1.0
    return model


def check_ingredients(model: torch.nn.Module, ingredients: Sequence[str | Path]) -> None:
    """Fail before training, not after it: every ingredient is a checkpoint with this model's weights."""
    from safetensors import safe_open

    own = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    for path in ingredients:
        weights = Path(path) / "model.safetensors"
        if not (Path(path) / "config.json").is_file() or not weights.is_file():
            raise SoupError(f"soup ingredient {path}: not a checkpoint (config.json + model.safetensors)")
        try:
            with safe_open(str(weights), framework="pt") as handle:
                shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
        except Exception as error:  # noqa: BLE001 (truncated or foreign file: one line, no traceback)
            raise SoupError(f"soup ingredient {path}: unreadable weights ({type(error).__name__})") from None
        if shapes != own:
            differing = sorted(name for name in set(own) | set(shapes) if own.get(name) != shapes.get(name))
            raise SoupError(f"soup ingredient {path}: another architecture ({len(differing)} weights differ, "
                            f"e.g. {differing[0]})")


def average_into(model: torch.nn.Module, ingredients: Sequence[str | Path]) -> None:
    """Replace `model`'s floating-point weights and buffers by their mean with the ingredients' (in place).

    Integer buffers (batch norm's step counters) keep `model`'s values. Every ingredient must have exactly
    the model's weight names and shapes (SoupError otherwise).
    """
    check_ingredients(model, ingredients)
    own = model.state_dict()
    total = {name: tensor.detach().clone().float() for name, tensor in own.items() if tensor.is_floating_point()}
    for path in ingredients:
        state = uncalibrated_model(path).state_dict()
        for name in total:
            total[name] += state[name].float()
    count = 1 + len(ingredients)
    model.load_state_dict({name: (total[name] / count).to(own[name].dtype) if name in total else own[name]
                           for name in own})


def soup(checkpoints: Sequence[str | Path]) -> torch.nn.Module:
    """The uniform soup of whole checkpoints: uncalibrated (temperature 1, no stored threshold), eval mode."""
    if not checkpoints:
        raise SoupError("a soup needs at least one checkpoint")
    first, *rest = checkpoints
    model = uncalibrated_model(first)
    average_into(model, rest)
    model.config.detector_threshold = None
    return model.eval()
