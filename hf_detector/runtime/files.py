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
    """sha256 of the checkpoint's `model.safetensors`: which weights an int8 file was built from."""
    digest = hashlib.sha256()
    with open(Path(checkpoint) / "model.safetensors", "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
