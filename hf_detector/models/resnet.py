"""ResNet-18 / ResNet-50 (transformers): from scratch offline, or from a Hub id such as microsoft/resnet-50."""

from __future__ import annotations

from transformers import ResNetConfig, ResNetForImageClassification

from .registry import ModelSpec, label_kwargs, register_model

RESNET_SHAPES = {
    "resnet-18": {"depths": [2, 2, 2, 2], "hidden_sizes": [64, 128, 256, 512], "layer_type": "basic"},
    "resnet-50": {"depths": [3, 4, 6, 3], "hidden_sizes": [256, 512, 1024, 2048], "layer_type": "bottleneck"},
}


@register_model(*RESNET_SHAPES)
def build_resnet(spec: ModelSpec) -> ResNetForImageClassification:
    if spec.model_name_or_path:
        return ResNetForImageClassification.from_pretrained(
            spec.model_name_or_path, revision=spec.revision, use_safetensors=True,
            ignore_mismatched_sizes=True, **label_kwargs())
    config = ResNetConfig(embedding_size=64, num_channels=spec.num_channels, **RESNET_SHAPES[spec.name],
                          **label_kwargs())
    config.image_size = spec.image_size
    return ResNetForImageClassification(config)
