"""`hf-detector evaluate`: score a labelled folder (or Hub dataset) and write metrics JSON + plots.

Accepts any `imagefolder` layout: `real/` and `fake/` sub-folders (nested folders allowed), images of
any format/size/mode, optional `metadata.csv` with `file_name` and `source` columns. Unreadable files
are listed under `errors` and left out of the metrics; they never stop the run.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.extras import require
from ..data.images import is_image_path
from ..data.labels import LABEL2ID, LABEL_ALIASES, DataError
from ..inference.detector import Detector


def labelled_files(root: str | os.PathLike) -> tuple[list[str], list[int], list[str]]:
    """(paths, labels, sources) of an imagefolder directory; sources from metadata.csv when present."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory (expected real/ and fake/ sub-folders)")
    label_dirs = [(d, LABEL_ALIASES.get(d.name.lower())) for d in sorted(root.iterdir()) if d.is_dir()]
    label_dirs = [(d, name) for d, name in label_dirs if name in LABEL2ID]
    if not label_dirs:
        raise DataError(f"{root}: no real/ or fake/ sub-folder found")
    metadata: dict[str, str] = {}
    if (root / "metadata.csv").exists():
        with open(root / "metadata.csv", newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("file_name") and row.get("source"):
                    metadata[os.path.normpath(row["file_name"])] = row["source"]
    paths, labels, sources = [], [], []
    for directory, name in label_dirs:
        for path in sorted(p for p in directory.rglob("*") if p.is_file() and is_image_path(p)):
            relative = os.path.normpath(path.relative_to(root))
            nested = path.relative_to(directory).parts
            paths.append(str(path))
            labels.append(LABEL2ID[name])
            sources.append(metadata.get(relative) or (nested[0] if len(nested) > 1 else name))
    if not paths:
        raise DataError(f"{root}: no image files under real/ or fake/")
    return paths, labels, sources


def evaluate_items(detector: Detector, items: list[Any], labels: list[int], sources: list[str],
                   batch_size: int = 16, transform: Callable[[Image.Image], Image.Image] | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Predict every item and compute the metric record (with per-source breakdown and errors)."""
    from .metrics import compute_metrics, per_source_breakdown, source_pair_auroc

    started = time.time()
    scores, kept_labels, kept_sources, errors, no_face = [], [], [], [], 0
    results = detector.iter_files(items, batch_size=batch_size, transform=transform)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(items), desc="evaluate", unit="img")
    for result, label, source in zip(results, labels, sources, strict=True):
        if result.prediction is None:
            errors.append({"file": result.path, "error": result.error})
            continue
        scores.append(result.prediction.p_fake)
        kept_labels.append(label)
        kept_sources.append(source)
        no_face += int(not result.prediction.face_found)
    if not scores:
        raise DataError("no image could be read; nothing to evaluate")
    seconds = time.time() - started
    record = compute_metrics(np.asarray(kept_labels), np.asarray(scores), threshold=detector.threshold)
    record["threshold"] = detector.threshold
    if len(set(kept_sources)) > 0:
        record["per_source"] = per_source_breakdown(np.asarray(kept_labels), np.asarray(scores),
                                                    detector.threshold, kept_sources)
        if len(set(kept_labels)) == 2:  # which real source is confused with which generator
            record["source_pairs_auroc"] = source_pair_auroc(kept_labels, scores, kept_sources)
    record.update({"n_images": len(items), "n_scored": len(scores), "n_errors": len(errors), "errors": errors,
                   "no_face_found": no_face, "seconds": round(seconds, 2),
                   "images_per_second": round(len(items) / max(seconds, 1e-9), 2), "model": detector.name})
    record["_scores"] = (np.asarray(kept_labels), np.asarray(scores))
    return record


def evaluate(detector: Detector, data: str, output: str | None = None, batch_size: int = 16,
             transform: Callable[[Image.Image], Image.Image] | None = None, plots: bool = True,
             progress: bool = True) -> dict[str, Any]:
    if os.path.isdir(data):
        items, labels, sources = labelled_files(data)
    else:
        require(f"{data}: evaluating a Hub dataset (not a folder here)", "train", "datasets")
        from ..data.datasets import load_faces

        dataset = load_faces(data)
        items, labels, sources = list(dataset["image"]), list(dataset["label"]), list(dataset["source"])
    record = evaluate_items(detector, items, labels, sources, batch_size, transform, progress)
    references, scores = record.pop("_scores")
    record["data"] = str(data)
    if output:
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        if plots:
            record["plots"] = write_plots(references, scores, detector.threshold, out)
        out.write_text(json.dumps(record, indent=2))
    return record


def write_plots(references: np.ndarray, scores: np.ndarray, threshold: float, output_json: Path) -> list[str]:
    """Plots beside the JSON, prefixed with its stem so several evaluations can share a folder."""
    from .plots import save_all_plots

    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in save_all_plots(references, scores, threshold, Path(tmp)):
            target = output_json.parent / f"{output_json.stem}_{Path(path).name}"
            shutil.move(str(path), target)
            written.append(target.name)
    return written
