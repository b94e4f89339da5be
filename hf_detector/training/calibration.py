"""Calibration baked into the weights: the fitted temperature divides the classifier head.

Stage: training (imports nothing else of the package; torch only).
"""

from __future__ import annotations

import torch


def bake_temperature(model: torch.nn.Module, temperature: float) -> None:
    """Divide the final linear layer by T so that every consumer, pipeline() included, gets calibrated scores."""
    head = model.classifier
    if isinstance(head, torch.nn.Sequential):
        head = [m for m in head if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.weight.div_(temperature)
        if head.bias is not None:
            head.bias.div_(temperature)
