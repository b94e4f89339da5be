"""The product's own int8 decision (hf_detector.inference.int8) on a scratch copy of the checkpoint, and its speed."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import DATA, interleaved, median_ms


def int8_candidate(model: Path, files: list[str], labels: list[int], reps: int, quick: bool) -> dict[str, Any] | str:
    """The product's int8 decision (hf_detector.inference.int8), rebuilt in a scratch copy of the checkpoint:
    calibrated on its validation split, checked against fp32 on the test split, on the validation images
    not calibrated on and on the benchmark images; plus batch-1 latency of the int8 vs the fp32 session."""

    from hf_detector.inference import int8 as quantize
    from hf_detector.inference.backends import _LogitsOnly, input_shape
    from hf_detector.inference.detector import Detector
    from hf_detector.runtime.onnx import _export, onnx_available, session_options

    if not onnx_available():
        return "skipped (onnxruntime not installed)"
    if not (DATA / "metadata.csv").exists():
        return "skipped (needs ../shared/data/faces: calibrated on its validation split, checked on its test split)"
    import onnxruntime as ort

    detector = Detector.from_pretrained(str(model))
    splits = quantize.training_split_files(model, str(DATA))
    (val, val_labels), (test, test_labels) = splits["validation"], splits["test"]
    if quick:
        val, val_labels, test, test_labels = val[:200], val_labels[:200], test[:60], test_labels[:60]
    calibration, check = quantize.crops_of(detector, val), quantize.crops_of(detector, test)
    with tempfile.TemporaryDirectory(prefix="hf-bench-int8-") as folder:
        scratch = Path(folder) / "checkpoint"
        scratch.mkdir()
        for name in ("model.safetensors", "config.json", "preprocessor_config.json"):
            shutil.copy(model / name, scratch / name)
        int8, fp32 = Path(folder) / "int8.onnx", Path(folder) / "fp32.onnx"
        report = quantize.evaluate_int8(scratch, calibration, check, int8, np.array(test_labels),
                                        np.array(val_labels), model=detector.model, threshold=detector.threshold)
        pixels = quantize.crops_of(detector, files)
        report.checks["benchmark images"] = quantize.compare(
            quantize.probabilities_fp32(detector.model, pixels, detector.fake_index),
            quantize.probabilities_onnx(int8, pixels, detector.fake_index), detector.threshold,
            np.array(labels))
        _export(_LogitsOnly(detector.model).eval(), torch.zeros(2, *input_shape(detector.model, detector.processor)),
                fp32, "pixel_values", ["logits"], {"pixel_values": {0: "batch"}, "logits": {0: "batch"}})
        sessions = {name: ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
                    for name, path in (("fp32", fp32), ("int8", int8))}
        draws = {}  # how much the calibration draw alone moves the verdict
        for seed in (1, 2):
            other = quantize.evaluate_int8(scratch, calibration, check, Path(folder) / f"int8-{seed}.onnx",
                                           model=detector.model, threshold=detector.threshold, seed=seed)
            draws[seed] = {name: c.disagreements for name, c in other.checks.items()}
        x = pixels[:1]
        times = interleaved({name: (lambda s=session: s.run(None, {"pixel_values": x}))
                             for name, session in sessions.items()}, reps=reps)
    from dataclasses import asdict

    return {"fp32_ms": median_ms(times["fp32"]), "int8_ms": median_ms(times["int8"]), "passed": report.passed,
            "kept_fp32": len(report.kept_fp32), "n_calibration": report.calibration_images, "other_draws": draws,
            "checks": {name: asdict(check) for name, check in report.checks.items()},
            "bundled_has_int8": quantize.validated_int8(model) is not None}
