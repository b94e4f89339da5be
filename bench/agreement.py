"""Agreement of the fast path with eager fp32 PyTorch on the benchmark images."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from common import SMALL_DETECT_SIZES


def agreement(model: Path, files: list[str], labels: list[int]) -> dict[str, Any]:
    """fp32 PyTorch vs the fast path on the benchmark images: labels, p(fake), AUROC; and folder speed."""
    from sklearn.metrics import roc_auc_score

    from hf_detector.inference.detector import Detector

    out: dict[str, Any] = {}
    preds: dict[str, list] = {}
    for backend in ("pytorch", "auto"):
        detector = Detector.from_pretrained(str(model), backend=backend)
        start = time.perf_counter()
        preds[backend] = [r.prediction for r in detector.iter_files(files, batch_size=16)]
        out[f"ips_{backend}"] = len(files) / (time.perf_counter() - start)
    a, b = preds["pytorch"], preds["auto"]
    keep = [i for i in range(len(files)) if a[i] is not None and b[i] is not None]
    out["n"] = len(keep)
    out["label_agreement"] = float(np.mean([a[i].label == b[i].label for i in keep]))
    out["crop_method_agreement"] = float(np.mean([a[i].crop_method == b[i].crop_method for i in keep]))
    out["max_abs_dp"] = float(max(abs(a[i].p_fake - b[i].p_fake) for i in keep))
    y = [labels[i] for i in keep]
    if len(set(y)) == 2:
        out["auroc_pytorch"] = float(roc_auc_score(y, [a[i].p_fake for i in keep]))
        out["auroc_fast"] = float(roc_auc_score(y, [b[i].p_fake for i in keep]))

    if getattr(detector.processor, "face_detector", "mtcnn") != "mtcnn":
        return out  # the MTCNN search variants below only concern checkpoints framed by MTCNN

    # Ablation of the default coarse-first face search: the fast path with MTCNN's full pyramid.
    from hf_detector.preprocessing.processor import shared_face_detector

    face_detector = shared_face_detector("auto")
    fraction, face_detector.large_face_fraction = face_detector.large_face_fraction, 0.0
    try:
        detector = Detector.from_pretrained(str(model), backend="auto")
        start = time.perf_counter()
        c = [r.prediction for r in detector.iter_files(files, batch_size=16)]
        out["ips_full_search"] = len(files) / (time.perf_counter() - start)
        out["full_search_label_agreement"] = float(np.mean([a[i].label == c[i].label for i in keep if c[i]]))
    finally:
        face_detector.large_face_fraction = fraction

    # Candidate kept off by default: the face detector searching a smaller copy of each image.
    out["detect_size"] = {}
    for size in SMALL_DETECT_SIZES:
        detector = Detector.from_pretrained(str(model), backend="auto", face_detect_size=size)
        start = time.perf_counter()
        c = [r.prediction for r in detector.iter_files(files, batch_size=16)]
        row = {"ips": len(files) / (time.perf_counter() - start)}
        both = [i for i in keep if c[i] is not None]
        row["label_agreement"] = float(np.mean([a[i].label == c[i].label for i in both]))
        if len(set(y)) == 2 and len(both) == len(keep):
            row["auroc"] = float(roc_auc_score(y, [c[i].p_fake for i in keep]))
        out["detect_size"][str(size)] = row
    return out
