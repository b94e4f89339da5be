"""Offline ImageNet weight files: the sha256 check every family runs before `torch.load(weights_only=True)`.

Stage: models (imports nothing of the project).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch


class WeightsError(RuntimeError):
    pass


def load_verified_state_dict(path: Path, sha256: str) -> dict[str, torch.Tensor]:
    """The state dict in `path` after checking its sha256 against `sha256`; tensors only (weights_only=True)."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest != sha256:
        raise WeightsError(f"{path}: sha256 {digest[:12]}… does not match the expected ImageNet weights")
    return torch.load(path, map_location="cpu", weights_only=True)
