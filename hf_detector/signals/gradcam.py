"""Grad-CAM heatmaps over the face crop the model saw (`grad-cam` / `pytorch_grad_cam`).

The heatmap answers "which pixels of *this crop* pushed the score towards the predicted class"; it is
an aid for looking, not a proof. The target layer is picked per architecture from a small registry keyed
by `model.config.model_type` (a new architecture adds one line with `register_target_layer`); anything
unregistered falls back to the last `Conv2d` of the network.

Grad-CAM hooks the model's layers, so it runs on a private copy of the classifier (made once per
detector) under a lock: predictions running concurrently on the shared model are never disturbed.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

__all__ = ["TARGET_LAYERS", "gradcam", "gradcam_overlay", "register_target_layer", "target_layer"]

LayerPicker = Callable[[nn.Module], nn.Module]
TARGET_LAYERS: dict[str, LayerPicker] = {}


def register_target_layer(*model_types: str) -> Callable[[LayerPicker], LayerPicker]:
    def decorate(picker: LayerPicker) -> LayerPicker:
        for model_type in model_types:
            TARGET_LAYERS[model_type] = picker
        return picker

    return decorate


def _last_conv(module: nn.Module) -> nn.Module:
    convs = [layer for layer in module.modules() if isinstance(layer, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(module).__name__} has no Conv2d layer for Grad-CAM")
    return convs[-1]


@register_target_layer("mobilenet_v2")
def _mobilenet_v2(model: nn.Module) -> nn.Module:
    return model.mobilenet_v2.conv_1x1  # last conv block (1x1 conv to the 1280-channel features)


@register_target_layer("hf_detector_efficientnet_lite")
def _efficientnet_lite(model: nn.Module) -> nn.Module:
    return model._conv_head  # 1x1 conv to the 1280-channel features, as for MobileNetV2


@register_target_layer("hf_detector_local_mobilenet_v2")
def _local_mobilenet_v2(model: nn.Module) -> nn.Module:
    return model.head  # the per-location features the classifier votes with


@register_target_layer("resnet")
def _resnet(model: nn.Module) -> nn.Module:
    return model.resnet.encoder.stages[-1]  # last stage


@register_target_layer("hf_detector_custom_cnn", "custom_cnn")
def _custom_cnn(model: nn.Module) -> nn.Module:
    return _last_conv(model.features)  # last conv


def target_layer(model: nn.Module) -> nn.Module:
    """The layer Grad-CAM reads for this model (registry by `config.model_type`, else the last Conv2d)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    picker = TARGET_LAYERS.get(str(model_type))
    return picker(model) if picker is not None else _last_conv(model)


class _Logits(nn.Module):
    """transformers models return an output object; Grad-CAM wants a tensor of logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


_COPIES: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _private_copy(model: nn.Module) -> nn.Module:
    copied = _COPIES.get(model)
    if copied is None:
        copied = copy.deepcopy(model).eval()
        for parameter in copied.parameters():
            parameter.requires_grad_(True)
        _COPIES[model] = copied
    return copied


def _class_index(detector: Any, label: str) -> int:
    config = detector.model.config
    label2id = {str(k).lower(): int(v) for k, v in (getattr(config, "label2id", None) or {}).items()}
    if label.lower() in label2id:
        return label2id[label.lower()]
    fake_index = int(getattr(detector, "fake_index", 1))
    return fake_index if label.lower() == "fake" else 1 - fake_index


def _pixel_values(detector: Any, prediction: Any) -> torch.Tensor:
    pixels = getattr(prediction, "pixel_values", None)
    if pixels is None:
        if getattr(prediction, "crop", None) is None:
            raise ValueError("prediction has neither pixel_values nor a crop to explain")
        pixels = detector.processor.finish([prediction.crop])
    pixels = torch.as_tensor(np.asarray(pixels)) if not isinstance(pixels, torch.Tensor) else pixels  # light path: numpy
    if pixels.dim() == 3:
        pixels = pixels.unsqueeze(0)
    return pixels.detach().float().clone()


def gradcam(detector: Any, prediction: Any) -> np.ndarray:
    """Grad-CAM of the predicted class over the model input: float32 (H, W) in [0, 1]."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    pixels = _pixel_values(detector, prediction)
    index = _class_index(detector, prediction.label)
    with _LOCK, torch.inference_mode(False), torch.enable_grad():
        model = _private_copy(detector.model)
        wrapper = _Logits(model)
        with GradCAM(model=wrapper, target_layers=[target_layer(model)]) as cam:
            heat = cam(input_tensor=pixels, targets=[ClassifierOutputTarget(index)])[0]
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(heat, 0.0, 1.0)


def gradcam_overlay(detector: Any, prediction: Any, image_weight: float = 0.55,
                    heatmap: np.ndarray | None = None) -> Image.Image:
    """The Grad-CAM heatmap (jet colours) blended over the crop the model saw, at the crop's size."""
    import cv2

    heat = gradcam(detector, prediction) if heatmap is None else heatmap
    crop = getattr(prediction, "crop", None)
    if crop is None:  # no crop kept: show the model input itself, de-normalised
        crop = _denormalise(detector, _pixel_values(detector, prediction)[0])
    base = np.asarray(crop.convert("RGB"), dtype=np.float32) / 255.0
    height, width = base.shape[:2]
    mask = cv2.resize(heat, (width, height), interpolation=cv2.INTER_LINEAR)
    colours = cv2.applyColorMap(np.uint8(np.clip(mask, 0, 1) * 255), cv2.COLORMAP_JET)
    colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    blended = image_weight * base + (1.0 - image_weight) * colours
    return Image.fromarray(np.uint8(np.clip(blended, 0, 1) * 255))


def _denormalise(detector: Any, pixels: torch.Tensor) -> Image.Image:
    processor = detector.processor
    mean = np.asarray(getattr(processor, "image_mean", [0.0, 0.0, 0.0]), np.float32)
    std = np.asarray(getattr(processor, "image_std", [1.0, 1.0, 1.0]), np.float32)
    array = pixels.detach().cpu().numpy().transpose(1, 2, 0) * std + mean
    return Image.fromarray(np.uint8(np.clip(array, 0, 1) * 255))
