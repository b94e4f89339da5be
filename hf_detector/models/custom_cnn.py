"""The prototype's small CNN as a transformers model: conv 32 -> conv 16 (3x3) -> flatten -> dropout -> linear.

Registered with the Auto classes (`hf_detector.models.registration`), so `from_pretrained` and
`pipeline()` load it after `import hf_detector`, with no remote code.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutputWithNoAttention

from .registry import ModelSpec, label_kwargs, register_model


class CustomCNNConfig(PretrainedConfig):
    model_type = "hf_detector_custom_cnn"

    def __init__(self, image_size: int = 96, num_channels: int = 3, conv_channels: tuple[int, ...] = (32, 16),
                 kernel_size: int = 3, dropout: float = 0.25, **kwargs) -> None:
        super().__init__(**kwargs)
        self.image_size = image_size
        self.num_channels = num_channels
        self.conv_channels = list(conv_channels)
        self.kernel_size = kernel_size
        self.dropout = dropout


class CustomCNNForImageClassification(PreTrainedModel):
    config_class = CustomCNNConfig
    base_model_prefix = "custom_cnn"
    main_input_name = "pixel_values"

    def __init__(self, config: CustomCNNConfig) -> None:
        super().__init__(config)
        layers: list[nn.Module] = []
        channels, side = config.num_channels, config.image_size
        for out in config.conv_channels:
            layers += [nn.Conv2d(channels, out, config.kernel_size), nn.ReLU()]
            channels, side = out, side - config.kernel_size + 1
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(channels * side * side, config.num_labels)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                return_dict: bool | None = None, **kwargs) -> ImageClassifierOutputWithNoAttention:
        hidden = self.features(pixel_values)
        logits = self.classifier(self.dropout(hidden.flatten(1)))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits)


@register_model("custom_cnn")
def build_custom_cnn(spec: ModelSpec) -> CustomCNNForImageClassification:
    if spec.model_name_or_path:
        return CustomCNNForImageClassification.from_pretrained(spec.model_name_or_path, revision=spec.revision,
                                                               use_safetensors=True)
    dropout = 0.25 if spec.dropout is None else spec.dropout
    return CustomCNNForImageClassification(CustomCNNConfig(image_size=spec.image_size, dropout=dropout,
                                                           num_channels=spec.num_channels, **label_kwargs()))
