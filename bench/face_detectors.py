"""The face stage: each detector's time and labels, and smaller MTCNN search sizes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from common import interleaved, median_ms


def face_detectors(model: Path, files: list[str], labels: list[int], reps: int) -> dict[str, Any]:
    """The face stage with each registered detector on the fast path, same images, interleaved.

    The model's own detector is the reference; another detector frames faces differently, so its labels
    are compared to the reference's (a model must be trained with the detector it runs with).
    """
    from sklearn.metrics import roc_auc_score

    from hf_detector.data.images import load_image
    from hf_detector.inference.detector import Detector
    from hf_detector.preprocessing.faces.registry import FACE_DETECTORS

    detectors = {name: Detector.from_pretrained(str(model), backend="auto", face_detector=name)
                 for name in FACE_DETECTORS}
    own = next((n for n, d in detectors.items() if d.processor.face_detector == getattr(
        Detector.from_pretrained(str(model), backend="auto").processor, "face_detector", "mtcnn")), "mtcnn")
    out: dict[str, Any] = {"own": own, "rows": {}}
    face: dict[str, list[float]] = {name: [] for name in detectors}
    e2e: dict[str, list[float]] = {name: [] for name in detectors}
    for path in files:
        rgb = load_image(path)
        times = interleaved({n: (lambda d=d, x=rgb: d.processor.crop(x, detector=d.face_detector))
                             for n, d in detectors.items()}, reps=reps, warmup=0)
        for name, values in times.items():
            face[name] += values
    for path in files:
        times = interleaved({n: (lambda d=d, p=path: d.predict(p)) for n, d in detectors.items()}, reps=reps, warmup=0)
        for name, values in times.items():
            e2e[name] += values
    predictions = {}
    for name, detector in detectors.items():
        start = time.perf_counter()
        predictions[name] = [r.prediction for r in detector.iter_files(files, batch_size=16)]
        ips = len(files) / (time.perf_counter() - start)
        found = [p for p in predictions[name] if p is not None]
        schemes = [p.faces[0].scheme if p.faces else "none" for p in found]
        row = {"face_ms": median_ms(face[name]), "e2e_ms": median_ms(e2e[name]), "ips": ips,
               "by": {s: schemes.count(s) / len(found) for s in sorted(set(schemes))}}
        if len(set(labels)) == 2 and len(found) == len(files):
            row["auroc"] = float(roc_auc_score(labels, [p.p_fake for p in found]))
        out["rows"][name] = row
    reference = predictions[own]
    for name in detectors:
        pairs = [(a, b) for a, b in zip(reference, predictions[name], strict=True) if a is not None and b is not None]
        out["rows"][name]["label_agreement"] = float(np.mean([a.label == b.label for a, b in pairs]))
    return out
