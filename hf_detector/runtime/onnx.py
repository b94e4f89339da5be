"""ONNX Runtime plumbing shared by the face detectors and the classifier: sessions, threads, exports.

Backends (chosen by `hf_detector.inference.backends.resolve_backend`; numbers in docs/performance.md):

    backend "pytorch"  plain eager fp32 PyTorch (the reference; `--backend pytorch` forces it)
    backend "onnx"     ONNX Runtime fp32: the model is exported once per checkpoint (cached on disk);
                       logits within 1e-3 of PyTorch, so the same predictions
    backend "int8"     the checkpoint's static int8 model (`hf_detector.inference.int8`)
    backend "auto"     "int8" when the checkpoint has a validated int8 model, else "onnx" when
                       `onnxruntime` and `onnx` are installed, else "pytorch"

Every fp32 export is checked against PyTorch on a random batch before it is used; a model that does
not export or does not match runs on PyTorch (with a warning) instead of failing.

Stage: runtime (imports nothing else of the package). torch is imported only by the export functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

BACKENDS = ("auto", "pytorch", "onnx", "int8")
# Largest |logit| difference accepted between an export and PyTorch on the check batch.
EXPORT_TOLERANCE = 1e-3

_SESSION_LOCK = threading.Lock()


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here (the message says what to install)."""


def onnx_available() -> bool:
    """Both halves present: `onnx` (for the one-time export) and `onnxruntime` (to run it)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def requested_backend(backend: str | None = "auto") -> str:
    """The backend asked for: `backend`, else $HF_DETECTOR_BACKEND, else "auto" (validated, lower case)."""
    name = (backend or os.environ.get("HF_DETECTOR_BACKEND") or "auto").lower()
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return name


def face_backend(backend: str | None = "auto") -> str:
    """The face detector's backend for a classifier backend: int8 is for the classifier only; "auto" is
    ONNX Runtime when installed (same boxes within 1e-3 px)."""
    name = requested_backend(backend)
    if name == "auto":
        return "onnx" if onnx_available() else "pytorch"
    return "onnx" if name == "int8" else name


def cache_dir() -> Path:
    """Where exported models live: $HF_DETECTOR_CACHE, else ~/.cache/hf_detector/onnx."""
    root = os.environ.get("HF_DETECTOR_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "hf_detector" / "onnx"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError:
        path = Path(tempfile.gettempdir()) / f"hf_detector-onnx-{os.getuid() if hasattr(os, 'getuid') else 0}"
        path.mkdir(parents=True, exist_ok=True)
    return path


def fingerprint(module: torch.nn.Module, extra: str = "") -> str:
    """Content hash of the weights (+ architecture text, torch version): the export cache key."""
    import torch

    digest = hashlib.sha256()
    digest.update(f"{torch.__version__}|{type(module).__qualname__}|{extra}".encode())
    config = getattr(module, "config", None)
    if config is not None and hasattr(config, "to_json_string"):
        digest.update(config.to_json_string(use_diff=False).encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def session_options(threads: int = 1) -> Any:
    """CPU session options: `threads` intra-op threads, no spin-waiting (the cores are often shared)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _export(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str,
            output_names: list[str], dynamic_axes: dict[str, dict[int, str]]) -> None:
    """TorchScript-based ONNX export (opset 17) written atomically (several processes may race)."""
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), buffer, input_names=[input_name], output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=17, dynamo=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(buffer.getvalue())
    os.replace(tmp, path)


def session_from_file(path: str | os.PathLike, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session for an exported file (no torch involved)."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])


def _load_session(module: torch.nn.Module, example: torch.Tensor, name: str, input_name: str,
                  output_names: list[str], dynamic_axes: dict[str, dict[int, str]], threads: int) -> Any:
    import onnxruntime as ort

    path = cache_dir() / f"{name}-{fingerprint(module, str(tuple(example.shape[1:])))}.onnx"
    with _SESSION_LOCK:
        if not path.exists():
            _export(module, example, path, input_name, output_names, dynamic_axes)
        return ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])


def default_threads() -> int:
    """Intra-op threads of the classifier session: $HF_DETECTOR_THREADS, else torch's setting when torch is
    loaded, else $OMP_NUM_THREADS, else the CPUs this process may run on (never importing torch for it)."""
    value = os.environ.get("HF_DETECTOR_THREADS")
    if value:
        return max(1, int(value))
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return max(1, torch.get_num_threads())
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit():
        return max(1, int(omp))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))



def describe() -> dict[str, Any]:
    """Versions for the benchmark report."""
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "onnx_available": onnx_available()}
    with contextlib.suppress(ImportError):
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    return json.loads(json.dumps(info))
