"""The ONNX files a checkpoint ships in its `onnx/` folder, and which of them are valid for its weights.

A file is used only while its report records the sha256 of the very `model.safetensors` beside it:
retrained or edited weights never run a stale export.

Stage: runtime (imports nothing else of the package; json and hashlib only).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

INT8_DIR = "onnx"
INT8_FILE = "model_int8.onnx"
REPORT_FILE = "quantization.json"


def weights_sha256(checkpoint: str | os.PathLike) -> str:
    """sha256 of the checkpoint's `model.safetensors`: which weights an int8 or fp32 export was built from."""
    return file_sha256(Path(checkpoint) / "model.safetensors")


def validated_int8(checkpoint: str | os.PathLike | None) -> Path | None:
    """The checkpoint's int8 model when its report passed for exactly these weights, else None."""
    if checkpoint is None:
        return None
    folder = Path(checkpoint) / INT8_DIR
    try:
        report = json.loads((folder / REPORT_FILE).read_text())
        if (report.get("passed") is True and (folder / INT8_FILE).is_file()
                and report.get("weights_sha256") == weights_sha256(checkpoint)):
            return folder / INT8_FILE
    except (OSError, ValueError, AttributeError):
        pass
    return None


# The fp32 export (hf_detector.inference.export): the classifier and the face detector's networks.
CLASSIFIER_FILE = "model.onnx"
EXPORT_REPORT = "export.json"


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of one file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validated_export(checkpoint: str | os.PathLike | None) -> dict[str, Path] | None:
    """The checkpoint's fp32 ONNX files by role ("classifier", "blazeface", "mtcnn-pnet", ...) when
    `onnx/export.json` names exactly the `model.safetensors` beside it and every file is there, else None."""
    if checkpoint is None:
        return None
    folder = Path(checkpoint) / INT8_DIR
    try:
        report = json.loads((folder / EXPORT_REPORT).read_text())
        if report.get("weights_sha256") != weights_sha256(checkpoint):
            return None
        files: dict[str, Path] = {}
        for role, entry in report["files"].items():
            name = str(entry["file"])
            path = folder / name
            # a plain file name inside onnx/ (a downloaded report never points elsewhere), of the recorded size
            if Path(name).name != name or not path.is_file() or path.stat().st_size != int(entry["bytes"]):
                return None
            files[str(role)] = path
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return files if "classifier" in files else None
