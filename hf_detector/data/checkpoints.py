"""Where the bundled default checkpoint lives (committed safetensors under hf_detector/checkpoints/default, package data: the wheel carries it).

Stage: data (imports nothing else of the package).
"""

from __future__ import annotations

from pathlib import Path

# The bundled default checkpoint (committed safetensors); the one copy in the repository, shipped in the wheel.
DEFAULT_MODEL: Path = Path(__file__).resolve().parent.parent / "checkpoints" / "default"


def default_model_available() -> bool:
    """True when the bundled checkpoint has its config and weights."""
    return (DEFAULT_MODEL / "config.json").exists() and any(DEFAULT_MODEL.glob("*.safetensors"))
