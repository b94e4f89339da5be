"""Screening rows of a two-model ensemble: two leave-out runs' calibrated p(fake) averaged in logit space, the
threshold chosen on validation as training does (Youden's J). Rows as docs/recipe_screening.md prints them.

    python scripts/ensemble_rows.py default+aligned128 ffhq-140k sg1-140k
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

from hf_detector.evaluation.metrics import choose_threshold  # noqa: E402


def _logit(p: list[float]) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def ensemble_row(runs: list[str], weights: list[float], name: str) -> str:
    parts = [json.loads((report.RUNS / run / "predictions.json").read_text()) for run in runs]
    scored = {}
    for split in ("validation", "test", "heldout"):
        for other in parts[1:]:  # the same split of the same images, in the same order
            assert other[split]["sources"] == parts[0][split]["sources"], f"{runs} differ on {split}"
        z = sum(w * _logit(p[split]["scores"]) for w, p in zip(weights, parts, strict=True))
        scored[split] = (1 / (1 + np.exp(-z)), np.asarray(parts[0][split]["labels"]), parts[0][split]["sources"])
    threshold = choose_threshold(scored["validation"][1], scored["validation"][0])
    scores = np.concatenate([scored["test"][0], scored["heldout"][0]])
    sources = np.asarray(scored["test"][2] + scored["heldout"][2])
    held, held_labels, held_sources = scored["heldout"]
    holdout = set(held_sources)
    test_scores, test_labels, _ = scored["test"]
    other = test_scores[test_labels != held_labels[0]]  # the held-out set against the test split's other class
    heldout_auroc = roc_auc_score(np.r_[held_labels, 1 - held_labels[0] + 0 * other], np.r_[held, other])
    cells = []
    for source in (*report.REAL_SOURCES, *report.FAKE_SOURCES):
        rate = report.fmt(float((scores[sources == source] >= threshold).mean()), 2)
        cells.append(f"**{rate}**" if source in holdout else rate)
    return "| " + " | ".join([name, *cells, report.fmt(float(roc_auc_score(test_labels, test_scores))),
                              report.fmt(float(heldout_auroc)), f"threshold {threshold:.2f}"]) + " |"


if __name__ == "__main__":
    first, second = sys.argv[1].split("+")
    for holdout in sys.argv[2:]:
        print(ensemble_row([f"lo_{first}_{holdout}", f"lo_{second}_{holdout}"], [0.5, 0.5],
                           f"{first}+{second}_{holdout}"))
