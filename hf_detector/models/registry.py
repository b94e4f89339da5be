"""Model factory: a registry of named architectures (one file per family, one import line in __init__).

Every model is a transformers `PreTrainedModel` with the project's fixed `id2label`, so checkpoints
save as safetensors and load with `pipeline("image-classification")`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transformers import PreTrainedModel

from ..data.labels import ID2LABEL, LABEL2ID


@dataclass
class ModelSpec:
    """What the Trainer CLI asks for; each builder reads the fields it understands."""

    name: str
    image_size: int = 224
    pretrained: bool = True  # ImageNet init where offline weights exist
    model_name_or_path: str | None = None  # a Hub id or local checkpoint to start from
    revision: str | None = None
    depth_multiplier: float = 1.0
    dropout: float | None = None
    local_blocks: int = 5  # mobilenet_v2_local: blocks before the per-location classifier
    num_channels: int = 3  # input channels: 6 when the processor puts a high-pass residual beside the picture


Builder = Callable[[ModelSpec], PreTrainedModel]
MODEL_REGISTRY: dict[str, Builder] = {}


def register_model(*names: str) -> Callable[[Builder], Builder]:
    def decorate(builder: Builder) -> Builder:
        for name in names:
            MODEL_REGISTRY[name] = builder
        return builder

    return decorate


def label_kwargs() -> dict:
    return {"num_labels": len(ID2LABEL), "id2label": dict(ID2LABEL), "label2id": dict(LABEL2ID)}


def create_model(spec: ModelSpec | str, **overrides) -> PreTrainedModel:
    if isinstance(spec, str):
        spec = ModelSpec(name=spec, **overrides)
    if spec.name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {spec.name!r}; choose one of {sorted(MODEL_REGISTRY)}")
    return MODEL_REGISTRY[spec.name](spec)


def available_models() -> list[str]:
    return sorted(MODEL_REGISTRY)

