"""The same-run forward cost of ViT-base/16, Swin-base and ResNet-50 (random init: architecture cost only)."""

from __future__ import annotations

import torch
from common import interleaved, median_ms


def reference_models(reps: int) -> dict[str, float]:
    """Same-run forward latency (batch 1, 224 px, eager fp32) of popular detectors' backbones, random init."""
    from transformers import (
        ResNetConfig,
        ResNetForImageClassification,
        SwinConfig,
        SwinForImageClassification,
        ViTConfig,
        ViTForImageClassification,
    )

    models = {
        "ViT-base/16": ViTForImageClassification(ViTConfig(num_labels=2)),
        "Swin-base": SwinForImageClassification(SwinConfig(embed_dim=128, depths=[2, 2, 18, 2],
                                                           num_heads=[4, 8, 16, 32], num_labels=2)),
        "ResNet-50": ResNetForImageClassification(ResNetConfig(num_labels=2)),
    }
    x = torch.randn(1, 3, 224, 224)
    for network in models.values():
        network.eval()
    with torch.inference_mode():
        times = interleaved({k: (lambda m=m: m(pixel_values=x)) for k, m in models.items()}, reps=reps)
    return {k: median_ms(v) for k, v in times.items()}
