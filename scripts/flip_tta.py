"""Mirror-image scoring (flip TTA) of one checkpoint on the in-distribution test split, against plain scoring.

    python scripts/flip_tta.py CHECKPOINT_DIR    # e.g. hf_detector/checkpoints/default or runs/report/lo_...

Prints, for plain p(fake) and for the mean of p(fake) over the face and its left-right mirror image: AUROC, ECE
and each source's fraction called fake at the checkpoint's threshold (and, for a leave-out run, the AUROC of
its held-out sources against the other class), plus how far the two views disagree. docs/recipe_screening.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from hf_detector import Detector  # noqa: E402
from hf_detector.evaluation.detector_metrics import expected_calibration_error  # noqa: E402


def scores(detector: Detector, paths: list[str], batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    plain, mirrored = [], []
    for start in range(0, len(paths), batch):
        prepared = [detector._safe_prepare(path) for path in paths[start:start + batch]]
        pixels = np.concatenate([p[1] for p in prepared if p[1] is not None])
        plain.append(detector._forward(pixels)[:, detector.fake_index])
        mirrored.append(detector._forward(np.ascontiguousarray(pixels[..., ::-1]))[:, detector.fake_index])
    return np.concatenate(plain), np.concatenate(mirrored)


def checkpoint_holdout(model: str) -> list[str]:
    """The sources a leave-out run held out (from its metrics.json); [] for any other checkpoint."""
    metrics = Path(model) / "metrics.json"
    return json.loads(metrics.read_text()).get("training", {}).get("holdout") or [] if metrics.exists() else []


def score_row(values: np.ndarray, labels: np.ndarray, sources: np.ndarray, threshold: float,
              holdout: list[str]) -> dict:
    """AUROC, ECE, each source's fraction called fake at `threshold` and, for a leave-out run, the AUROC of
    its held-out sources against the other class."""
    row = {"auroc": roc_auc_score(labels, values), "ece": expected_calibration_error(labels, values),
           "fraction_fake": {s: float(np.mean(values[sources == s] >= threshold)) for s in sorted(set(sources))}}
    held = np.isin(sources, holdout)
    if held.any():
        chosen = held | (~held & (labels != labels[held][0]))
        row["heldout_auroc"] = roc_auc_score(labels[chosen], values[chosen])
    return row


def main(model: str) -> dict:
    paths, labels, sources = report.split_files(str(report.DATA))
    detector = Detector.from_pretrained(model)
    plain, mirrored = scores(detector, paths)
    labels_arr, sources_arr = np.asarray(labels), np.asarray(sources)
    holdout = checkpoint_holdout(model)
    out: dict = {"model": model, "threshold": detector.threshold, "holdout": holdout,
                 "disagreement": {"mean": float(np.mean(np.abs(mirrored - plain))),
                                  "max": float(np.max(np.abs(mirrored - plain)))}}
    for name, values in (("plain", plain), ("flip", (plain + mirrored) / 2)):
        out[name] = score_row(values, labels_arr, sources_arr, detector.threshold, holdout)
    return out

if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1]), indent=2))
