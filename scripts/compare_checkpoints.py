"""Two full runs side by side on their test splits (each run's own predictions.json; same split seed assumed).

    python scripts/compare_checkpoints.py hf_detector/checkpoints/default runs/mine

Prints AUROC, each FFHQ-look real source against each FFHQ-look GAN (the pairs issue 24 is about) and every
source's fraction called fake at the score that calls 10 % of all test reals fake, so two models are compared at
the same operating point rather than at their own thresholds. docs/recipe_screening.md ("consistency").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

REALS = ("ffhq-140k", "ffhq-wfir", "ciplab")
GANS = ("sg1-140k", "omi", "sg3pool")
FALSE_POSITIVE_RATE = 0.10


def summary(run: Path) -> dict:
    test = json.loads((run / "predictions.json").read_text())["test"]
    scores, labels, sources = (np.asarray(test[key]) for key in ("scores", "labels", "sources"))
    pairs = {}
    for real in REALS:
        for fake in GANS:
            chosen = (sources == real) | (sources == fake)
            if len(set(labels[chosen].tolist())) == 2:
                pairs[f"{real} vs {fake}"] = round(float(roc_auc_score(labels[chosen], scores[chosen])), 3)
    cut = np.quantile(scores[labels == 0], 1 - FALSE_POSITIVE_RATE)
    return {"run": str(run), "auroc": round(float(roc_auc_score(labels, scores)), 4), "pair_auroc": pairs,
            f"called_fake_at_{FALSE_POSITIVE_RATE:.0%}_fpr": {s: round(float(np.mean(scores[sources == s] >= cut)), 2)
                                                          for s in sorted(set(sources.tolist()))}}


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(json.dumps(summary(Path(path))))
