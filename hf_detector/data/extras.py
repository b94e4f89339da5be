"""The optional parts of the install and the one-line error for a missing one.

`pip install hf-detector` is the light install: predict, evaluate, `Detector.from_pretrained()` and the app
on a checkpoint's ONNX export (numpy, Pillow, ONNX Runtime). The extras add the rest:

    hf-detector[torch]   PyTorch + transformers: pipeline(), Grad-CAM, --backend pytorch, export, quantize
    hf-detector[train]   the torch extra + datasets, evaluate, accelerate...: training, reports, Hub datasets
    hf-detector[dev]     the train extra + the test tools (the Makefile's environment)

`require(purpose, extra, *modules)` checks with `importlib.util.find_spec` (nothing is imported) and raises
`MissingExtra` ("training needs PyTorch: pip install 'hf-detector[train]'") when a module is absent.

Stage: data (imports nothing else of the package).
"""

from __future__ import annotations

import importlib.util

EXTRAS = ("torch", "train", "dev")
TORCH_MODULES = ("torch", "transformers")
# the names people know the distributions by, for the message
_DISPLAY = {"torch": "PyTorch", "transformers": "transformers", "pytorch_grad_cam": "grad-cam"}


class MissingExtra(ImportError):
    """A feature whose optional dependencies are not installed; the message is one line naming the extra."""


def installed(module: str) -> bool:
    """True when `module` can be imported (found on the path; not imported here)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a half-initialised module
        return False


def missing(*modules: str) -> list[str]:
    return [module for module in modules if not installed(module)]


def install_hint(extra: str) -> str:
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; one of {', '.join(EXTRAS)}")
    return f"pip install 'hf-detector[{extra}]'"


def message(purpose: str, extra: str, absent: list[str]) -> str:
    """'training needs PyTorch: pip install 'hf-detector[train]'' (PyTorch named first when it is missing)."""
    names = ["PyTorch"] if "torch" in absent else [_DISPLAY.get(module, module) for module in absent]
    return f"{purpose} needs {', '.join(names)}: {install_hint(extra)}"


def require(purpose: str, extra: str, *modules: str) -> None:
    """Raise `MissingExtra` when any of `modules` (default: torch and transformers) is not installed."""
    absent = missing(*(modules or TORCH_MODULES))
    if absent:
        raise MissingExtra(message(purpose, extra, absent))
