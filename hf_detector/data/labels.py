"""The one label mapping of the project: 0 = real, 1 = fake, whatever the folder order on disk."""

from __future__ import annotations

ID2LABEL: dict[int, str] = {0: "real", 1: "fake"}
LABEL2ID: dict[str, int] = {name: idx for idx, name in ID2LABEL.items()}
LABELS: tuple[str, ...] = tuple(ID2LABEL[i] for i in sorted(ID2LABEL))
REAL_ID = LABEL2ID["real"]
FAKE_ID = LABEL2ID["fake"]
# Folder and column spellings accepted for each label. Here, not in data.py, so that inference and
# evaluation on a folder never import `datasets` (over a second of every CLI start).
LABEL_ALIASES = {
    "real": "real", "genuine": "real", "authentic": "real", "human": "real", "0": "real",
    "fake": "fake", "ai": "fake", "generated": "fake", "synthetic": "fake", "gan": "fake", "1": "fake",
}


class DataError(ValueError):
    """A dataset that cannot be used as it is; the message says what to fix."""


def label_to_id(label: str | int) -> int:
    """Map a label name (any case) or id to the fixed id; raise ValueError on anything else."""
    if isinstance(label, bool):
        raise ValueError(f"invalid label {label!r}")
    if isinstance(label, int):
        if label not in ID2LABEL:
            raise ValueError(f"invalid label id {label}; expected one of {sorted(ID2LABEL)}")
        return label
    key = str(label).strip().lower()
    if key not in LABEL2ID:
        raise ValueError(f"invalid label {label!r}; expected one of {list(LABELS)}")
    return LABEL2ID[key]
