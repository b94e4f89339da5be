"""A patch-level detector: MobileNetV2's first blocks (ImageNet weights) with a classifier at every location,
whose logits are averaged over the picture (Chai et al., 2020, "What makes fake images detectable?").

Why: the full network sees the whole crop at once and learns global cues that do not carry to unseen sources
(the FFHQ framing: five 90 % sub-crops move the default's p(fake) by 0.27, docs/recipe_screening.md). Cut after
`local_blocks` inverted residual blocks, each location's logit sees only a small window of the input (59 px at
the default 5 blocks, stride 8), so the decision is a vote of local texture, the place where a generator's
upsampling traces live, and no location can see the framing. Fed the 256 px context crop at native pixels
(image_size = crop_size, no resize), nothing resamples those traces away at inference.

Stage: models (imports data, runtime, preprocessing).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import MobileNetV2Config, MobileNetV2ForImageClassification, MobileNetV2Model
from transformers.modeling_outputs import ImageClassifierOutputWithNoAttention
from transformers.models.mobilenet_v2.modeling_mobilenet_v2 import MobileNetV2PreTrainedModel

from .mobilenet_v2 import (
    BASE_MODEL_ID,
    convert_torchvision_state_dict,
    load_torchvision_state_dict,
    mobilenet_config,
)
from .registry import ModelSpec, label_kwargs, register_model

# Receptive field (pixels) and stride of one location after n of MobileNetV2's 16 inverted residual blocks
# (stem: 3x3 s2 + 3x3 depthwise; every block one 3x3 depthwise), for the docs and the tests.
_STRIDES = (2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1)


def receptive_field(local_blocks: int) -> tuple[int, int]:
    """(receptive field in input pixels, stride) of one location after `local_blocks` blocks."""
    field, jump = 3, 2  # stem conv 3x3 stride 2
    field += 2 * jump  # stem depthwise 3x3
    for stride in _STRIDES[:local_blocks]:
        field += 2 * jump
        jump *= stride
    return field, jump


class LocalMobileNetV2Config(MobileNetV2Config):
    model_type = "hf_detector_local_mobilenet_v2"

    def __init__(self, local_blocks: int = 5, head_channels: int = 256, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 1 <= local_blocks <= 16:
            raise ValueError(f"local_blocks must be 1-16 (MobileNetV2 has 16 inverted residual blocks), "
                             f"got {local_blocks}")
        self.local_blocks = local_blocks
        self.head_channels = head_channels


class LocalMobileNetV2ForImageClassification(MobileNetV2PreTrainedModel):
    config_class = LocalMobileNetV2Config

    def __init__(self, config: LocalMobileNetV2Config) -> None:
        super().__init__(config)
        backbone = MobileNetV2Model(config, add_pooling_layer=False)
        # Same parameter names as the full model for the kept part, so ImageNet weights load by name.
        backbone.layer = backbone.layer[: config.local_blocks]
        del backbone.conv_1x1
        self.mobilenet_v2 = backbone
        width = backbone.layer[-1].reduce_1x1.convolution.out_channels
        self.head = nn.Sequential(
            nn.Conv2d(width, config.head_channels, 1, bias=False), nn.BatchNorm2d(config.head_channels),
            nn.ReLU6(), nn.Dropout(config.classifier_dropout_prob))
        self.classifier = nn.Conv2d(config.head_channels, config.num_labels, 1)
        self.post_init()

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.mobilenet_v2.conv_stem(pixel_values)
        for block in self.mobilenet_v2.layer:
            x = block(x)
        return self.head(x)

    def location_logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, num_labels, H', W'): each location's logits, from its receptive field alone."""
        return self.classifier(self.features(pixel_values))

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                return_dict: bool | None = None, **kwargs) -> ImageClassifierOutputWithNoAttention:
        logits = self.location_logits(pixel_values).mean(dim=(2, 3))  # the vote of every location
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits)


@register_model("mobilenet_v2_local")
def build_local_mobilenet_v2(spec: ModelSpec) -> LocalMobileNetV2ForImageClassification:
    if spec.model_name_or_path:
        return LocalMobileNetV2ForImageClassification.from_pretrained(
            spec.model_name_or_path, revision=spec.revision, use_safetensors=True, ignore_mismatched_sizes=True,
            **label_kwargs())
    config = LocalMobileNetV2Config(
        local_blocks=spec.local_blocks, num_channels=spec.num_channels, image_size=spec.image_size,
        tf_padding=False, layer_norm_eps=1e-5, classifier_dropout_prob=0.2 if spec.dropout is None else spec.dropout,
        **label_kwargs())
    model = LocalMobileNetV2ForImageClassification(config)
    if spec.pretrained:
        full = MobileNetV2ForImageClassification(mobilenet_config(spec.image_size, num_channels=spec.num_channels))
        imagenet = convert_torchvision_state_dict(load_torchvision_state_dict(), full, False)
        kept = {k: v for k, v in imagenet.items() if k in model.state_dict()}
        missing, unexpected = model.load_state_dict(kept, strict=False)
        assert not unexpected and all(k.startswith(("head.", "classifier.")) for k in missing), missing
        model.config.base_model = f"{BASE_MODEL_ID}, first {spec.local_blocks} blocks"
    return model
