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


def source_balanced_weights(labels: list[int], sources: list[str], cap: float = 10.0,
                            groups: Sequence[Sequence[str]] = ()) -> np.ndarray:
    """Per-sample weights: classes weigh the same, and within a class every source weighs the same.

    `groups`: sets of sources that share a look (e.g. every FFHQ-aligned source, real or fake). Each group,
    and the sources in none, is then balanced on its own: inside it the real and the fake half weigh the same
    (and its sources equally within their class), so a look that most often came with fakes (FFHQ alignment)
    stops meaning "fake". Every group, and the rest, keeps its share of the whole.
    """
    labels_arr, sources_arr = np.asarray(labels), np.asarray(sources)
    group_of = {name: index for index, members in enumerate(groups) for name in members}
    group_arr = np.asarray([group_of.get(name, -1) for name in sources_arr])
    weights = np.zeros(len(labels_arr), dtype=np.float64)
    for group in np.unique(group_arr):
        in_group = group_arr == group
        classes = np.unique(labels_arr[in_group])
        share = in_group.sum() / len(labels_arr)  # each group keeps its share of the set
        for label in classes:
            in_class = in_group & (labels_arr == label)
            names = np.unique(sources_arr[in_class])
            for name in names:
                members = in_class & (sources_arr == name)
                weights[members] = share / (len(classes) * len(names) * members.sum())
    weights /= weights.mean()
    return np.minimum(weights, cap) / np.minimum(weights, cap).mean()
