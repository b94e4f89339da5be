"""Multi-crop scoring (test-time augmentation) of one checkpoint on the in-distribution test split.

    python scripts/multicrop_tta.py CHECKPOINT_DIR    # e.g. hf_detector/checkpoints/default or runs/report/lo_...

Issue 24's lever "several crops per face scored and averaged at inference": each face's canonical crop (the
processor's own) is scored as it is, with its mirror image, as five 90 % sub-crops (centre and corners, each
resized to the model input like the crop itself: the scale jitter the training's random resized crop covers),
and as those five plus their mirror images. For each way of averaging p(fake) it prints AUROC, ECE, every
source's fraction called fake at the checkpoint's threshold and, for a leave-out run, the held-out AUROC.
Results in docs/recipe_screening.md. `Detector._forward` (the default backend) scores every view.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402
from flip_tta import checkpoint_holdout, score_row  # noqa: E402

from hf_detector import Detector  # noqa: E402

SUB_CROP = 0.9  # side of the sub-crops, as a fraction of the canonical crop's


def views(crop: Image.Image) -> list[Image.Image]:
    """The canonical crop, then five SUB_CROP sub-crops (centre, four corners)."""
    side = round(crop.width * SUB_CROP)
    far = crop.width - side
    corners = [(far // 2, far // 2), (0, 0), (far, 0), (0, far), (far, far)]
    return [crop, *(crop.crop((x, y, x + side, y + side)) for x, y in corners)]


def view_scores(detector: Detector, paths: list[str]) -> np.ndarray:
    """p(fake) of every view and its mirror image: (images, 12); column 0 = plain, 6 = its mirror image."""
    rows = []
    for path in paths:
        crop = detector.processor.crop(path).image.convert("RGB")
        pixels = np.stack([detector.processor.finish_array(view) for view in views(crop)])
        both = np.concatenate([pixels, np.ascontiguousarray(pixels[..., ::-1])])
        rows.append(detector._forward(both)[:, detector.fake_index])
    return np.stack(rows)


def main(model: str) -> dict:
    paths, labels, sources = report.split_files(str(report.DATA))
    detector = Detector.from_pretrained(model)
    scores = view_scores(detector, paths)
    labels_arr, sources_arr = np.asarray(labels), np.asarray(sources)
    holdout = checkpoint_holdout(model)
    averages = {"plain": scores[:, 0], "flip": scores[:, [0, 6]].mean(1), "five-crop": scores[:, 1:6].mean(1),
                "five-crop + flip": scores[:, [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]].mean(1),
                "all 12 views": scores.mean(1)}
    out: dict = {"model": model, "threshold": detector.threshold, "holdout": holdout,
                 "views_disagree_mean": float(np.mean(scores.max(1) - scores.min(1)))}
    for name, values in averages.items():
        out[name] = score_row(values, labels_arr, sources_arr, detector.threshold, holdout)
    return out

if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1]), indent=2))
