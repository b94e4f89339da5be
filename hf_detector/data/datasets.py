"""Data: an `imagefolder` directory or a Hub dataset id -> a `DatasetDict` with fixed labels.

Splits are reproducible (seeded), stratified by label and `source`, and keep every identity group
(one person) on one side. Whole sources or generators can be held out for leave-one-generator-out
evaluation. Images stay encoded on disk: transforms are applied lazily with `set_transform`.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Value, load_dataset

from .labels import ID2LABEL, LABEL_ALIASES, LABELS, DataError, label_to_id

__all__ = ["LABEL_ALIASES", "DataError", "SplitSpec", "load_faces", "normalise_columns", "split_faces"]

logger = logging.getLogger(__name__)


def load_faces(data: str, revision: str | None = None, split: str | None = None,
               cache_dir: str | None = None) -> Dataset:
    """Load a local imagefolder directory or a Hub dataset id as one `Dataset` with normalised columns."""
    if os.path.isdir(data):
        root = Path(data)
        if not any((root / name).is_dir() for name in LABELS) and not (root / "metadata.csv").exists():
            raise DataError(f"{data}: expected 'real/' and 'fake/' sub-folders (imagefolder layout)")
        dataset = load_dataset("imagefolder", data_dir=str(root), split="train", cache_dir=cache_dir)
    elif os.path.exists(data):
        raise DataError(f"{data}: is a file; pass a directory with real/ and fake/ sub-folders or a Hub dataset id")
    elif re.fullmatch(r"[\w.-]+/[\w.-]+", data):
        loaded = load_dataset(data, revision=revision, cache_dir=cache_dir)
        names = list(loaded.keys())
        dataset = loaded[split] if split else loaded[names[0]]
    else:
        raise DataError(f"{data}: no such directory, and not a Hub dataset id (namespace/name)")
    return normalise_columns(dataset)


def normalise_columns(dataset: Dataset) -> Dataset:
    """Cast the label column to the fixed mapping (0 = real, 1 = fake) and make sure `source` exists."""
    if "image" not in dataset.column_names:
        image_columns = [c for c in dataset.column_names if c.lower() in ("img", "pixel_values", "file")]
        if not image_columns:
            raise DataError(f"dataset has no 'image' column (columns: {dataset.column_names})")
        dataset = dataset.rename_column(image_columns[0], "image")
    if "label" not in dataset.column_names:
        raise DataError(f"dataset has no 'label' column (columns: {dataset.column_names})")
    feature = dataset.features["label"]
    names = feature.names if isinstance(feature, ClassLabel) else None

    def to_fixed(label: int | str) -> int:
        raw = names[label] if names is not None else label
        key = LABEL_ALIASES.get(str(raw).strip().lower())
        if key is None:
            raise DataError(f"unknown label {raw!r}: expected real/fake")
        return label_to_id(key)

    labels = [to_fixed(x) for x in dataset["label"]]
    dataset = dataset.remove_columns("label").add_column("label", labels)
    dataset = dataset.cast_column("label", ClassLabel(names=[ID2LABEL[i] for i in sorted(ID2LABEL)]))
    if "source" not in dataset.column_names:
        dataset = dataset.add_column("source", [ID2LABEL[x] for x in labels])
    dataset = dataset.cast_column("source", Value("string"))
    if "group" not in dataset.column_names:
        origins = dataset["origin"] if "origin" in dataset.column_names else [None] * len(dataset)
        groups = [identity_group(source, origin, index)
                  for index, (source, origin) in enumerate(zip(dataset["source"], origins, strict=True))]
        dataset = dataset.add_column("group", groups)
    return dataset


# Per-source rules that recover who is in a photo, so one person never lands on both sides of a split.
IDENTITY_RULES: dict[str, Callable[[str], str | None]] = {
    # rmfd: ".../0_0_anhu_0216.jpg" -> "anhu" (up to 20 photos per person)
    "rmfd": lambda origin: (m.group(1) if (m := re.search(r"\d+_\d+_([a-z]+)_\d+\.\w+$", origin)) else None),
}


def identity_group(source: str, origin: str | None, index: int) -> str:
    rule = IDENTITY_RULES.get(source)
    person = rule(origin) if (rule and origin) else None
    return f"{source}:{person}" if person else f"{source}:#{index}"


@dataclass
class SplitSpec:
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 42
    holdout: Sequence[str] = ()


def split_faces(dataset: Dataset, spec: SplitSpec) -> DatasetDict:
    """Seeded train/validation/test split stratified by (label, source), grouped by identity.

    Rows whose `source` or `generator` is in `spec.holdout` go to a separate `heldout` split and
    appear in no other split.
    """
    holdout = {h.strip() for h in spec.holdout if h.strip()}
    sources = dataset["source"]
    generators = dataset["generator"] if "generator" in dataset.column_names else [None] * len(dataset)
    if holdout:
        known = set(sources) | {g for g in generators if g}
        missing = holdout - known
        if missing:
            raise DataError(f"cannot hold out {sorted(missing)}: not a source or generator in the data "
                            f"(sources: {sorted(set(sources))})")
    held = [i for i, (s, g) in enumerate(zip(sources, generators, strict=True)) if s in holdout or g in holdout]
    held_set = set(held)
    strata: dict[tuple[int, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, (label, source, group) in enumerate(zip(dataset["label"], sources, dataset["group"], strict=True)):
        if index not in held_set:
            strata[(label, source)][group].append(index)
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    rng = random.Random(spec.seed)
    for key in sorted(strata):
        groups = sorted(strata[key])
        rng.shuffle(groups)
        total = sum(len(strata[key][g]) for g in groups)
        wanted_test, wanted_val = spec.test_fraction * total, spec.validation_fraction * total
        taken_test = taken_val = 0
        for group in groups:
            members = strata[key][group]
            if taken_test < wanted_test:
                parts["test"].extend(members)
                taken_test += len(members)
            elif taken_val < wanted_val:
                parts["validation"].extend(members)
                taken_val += len(members)
            else:
                parts["train"].extend(members)
    result = DatasetDict({name: dataset.select(sorted(ids)) for name, ids in parts.items() if ids})
    if held:
        result["heldout"] = dataset.select(held)
    for name, part in result.items():
        logger.info("split %s: %d images (%s)", name, len(part), _counts(part["label"]))
    return result


def _counts(labels: Iterable[int]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for label in labels:
        counts[ID2LABEL[label]] += 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
