"""The checkpoint's own fp32 ONNX export: the classifier and the face detector, verified and written once.

`hf-detector export --model DIR` and the end of every training run write, into `DIR/onnx/`:

    model.onnx          the classifier (pixel_values -> logits), checked against PyTorch on a random batch
    blazeface.onnx      BlazeFace's network (checkpoints whose face detector is BlazeFace)
    mtcnn-*.onnx        MTCNN's three networks (every checkpoint: the detector itself, or BlazeFace's fallback)
    export.json         the sha256 of the `model.safetensors` they were exported from, and each file's sha256

With these files the default path runs on numpy + Pillow + onnxruntime alone (no torch, no transformers):
`hf_detector.inference.detector` uses them only while `export.json` names the very weights beside it
(`runtime.files.validated_export`, the rule int8 follows), so nothing is exported on a user's first call
and edited weights never run a stale export.

Stage: inference (imports data, runtime, preprocessing, models).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.files import CLASSIFIER_FILE, EXPORT_REPORT, INT8_DIR, file_sha256, weights_sha256
from ..runtime.onnx import EXPORT_TOLERANCE, BackendUnavailable, _export, session_options


class ExportError(RuntimeError):
    """The checkpoint cannot be exported, or an export does not match PyTorch; the message says which."""


def _session(path: Path) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])


def _check(name: str, path: Path, module: Any, example: Any, tolerance: float) -> float:
    """Largest |output difference| between the exported file and the PyTorch module on `example`."""
    import torch

    with torch.inference_mode():
        expected = module(example)
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    session = _session(path)
    got = session.run(None, {session.get_inputs()[0].name: example.numpy()})
    difference = max(float(np.abs(g - e.float().numpy()).max()) for g, e in zip(got, expected, strict=True))
    if not np.isfinite(difference) or difference > tolerance:
        raise ExportError(f"{name}: the ONNX export differs from PyTorch by {difference:.2e} (> {tolerance:g})")
    return difference


def export_checkpoint(checkpoint: str | os.PathLike, model: Any = None) -> Path:
    """Write `checkpoint/onnx/` (model.onnx, the face detector's files, export.json); return export.json's path.

    `model`: the classifier already in memory (the end of training), else it is loaded from the checkpoint.
    Raises ExportError (nothing is written) when an export does not match PyTorch.
    """
    import torch

    from ..models.registration import register_auto_classes
    from ..preprocessing.faces.blazeface import INPUT_SIZE, model_path
    from ..preprocessing.faces.blazeface_graph import TFLiteGraph
    from ..preprocessing.faces.mtcnn import _get_mtcnn
    from ..preprocessing.faces.mtcnn_onnx import MTCNN_NETS
    from .backends import _LogitsOnly, input_shape
    from .detector import load_classifier

    folder = Path(checkpoint)
    if not (folder / "model.safetensors").is_file():
        raise ExportError(f"{folder}: no model.safetensors to export")
    register_auto_classes()
    from transformers import AutoImageProcessor

    network = (model if model is not None else load_classifier(folder)).eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    target = folder / INT8_DIR
    target.mkdir(parents=True, exist_ok=True)
    differences: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=target) as work:
        work_dir = Path(work)
        modules: dict[str, tuple[Any, Any, str, list[str], dict[str, dict[int, str]], float]] = {}
        shape = input_shape(network, processor)
        example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
        modules["classifier"] = (_LogitsOnly(network).eval(), example, "pixel_values", ["logits"],
                                 {"pixel_values": {0: "batch"}, "logits": {0: "batch"}}, EXPORT_TOLERANCE)
        mtcnn = _get_mtcnn("cpu", "pytorch")
        probe = torch.Generator().manual_seed(1)
        for name, (size, axes, outputs) in MTCNN_NETS.items():
            modules[f"mtcnn-{name}"] = (getattr(mtcnn, name).eval(), torch.rand(*size, generator=probe) * 2 - 1, "x",
                                        [f"out{i}" for i in range(outputs)], axes, EXPORT_TOLERANCE)
        if getattr(processor, "face_detector", "mtcnn") == "blazeface":
            graph = TFLiteGraph(model_path().read_bytes()).eval()
            modules["blazeface"] = (graph, torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE, generator=probe) * 2 - 1, "x",
                                    ["regressors", "classificators"], {}, EXPORT_TOLERANCE * 10)  # pixels
        files: dict[str, dict[str, Any]] = {}
        for role, (module, sample, input_name, output_names, axes, tolerance) in modules.items():
            name = CLASSIFIER_FILE if role == "classifier" else f"{role}.onnx"
            _export(module, sample, work_dir / name, input_name, output_names, axes)
            differences[role] = _check(role, work_dir / name, module, sample, tolerance)
            files[role] = {"file": name, "sha256": file_sha256(work_dir / name),
                           "bytes": (work_dir / name).stat().st_size}
        report = {"weights_sha256": weights_sha256(folder), "files": files, "max_abs_difference": differences,
                  "input_shape": list(shape), "opset": 17, "torch": torch.__version__}
        for entry in files.values():
            (work_dir / entry["file"]).chmod(0o644)  # mkstemp made it private; a checkpoint is shared
            shutil.move(str(work_dir / entry["file"]), target / entry["file"])
        (target / EXPORT_REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return target / EXPORT_REPORT


def export_or_warn(checkpoint: str | os.PathLike, model: Any = None) -> dict[str, Any]:
    """`export_checkpoint`, never failing the caller (the end of training): a summary for metrics.json."""
    try:
        report = json.loads(export_checkpoint(checkpoint, model).read_text())
    except (ExportError, BackendUnavailable, ImportError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return {"written": False, "reason": first}
    return {"written": True, "files": sorted(entry["file"] for entry in report["files"].values()),
            "max_abs_difference": report["max_abs_difference"]}
