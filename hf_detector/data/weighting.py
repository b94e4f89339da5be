"""Loss weights that keep the majority class and the big sources from drowning out the rest."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .labels import ID2LABEL


def class_weights_for(labels: Sequence[int]) -> torch.Tensor:
    """Inverse class frequency (sklearn's "balanced"): each class weighs the same in the loss."""
    counts = np.bincount(np.asarray(labels), minlength=len(ID2LABEL)).astype(float)
    return torch.tensor(counts.sum() / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)


def source_balanced_weights(labels: list[int], sources: list[str], cap: float = 10.0) -> np.ndarray:
    """Per-sample weights: classes weigh the same, and within a class every source weighs the same."""
    labels_arr, sources_arr = np.asarray(labels), np.asarray(sources)
    weights = np.zeros(len(labels_arr), dtype=np.float64)
    for label in np.unique(labels_arr):
        in_class = labels_arr == label
        names = np.unique(sources_arr[in_class])
        for name in names:
            members = in_class & (sources_arr == name)
            weights[members] = 1.0 / (len(names) * members.sum())
    weights /= weights.mean()
    return np.minimum(weights, cap) / np.minimum(weights, cap).mean()
