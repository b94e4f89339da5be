"""The bundled model against the one it replaced: end-to-end latency at batch 1, side by side in one process.

Issue 24's speed rule: the retrained bundled model may cost at most 2x the previous one end to end. The previous
model is `git archive PREVIOUS hf_detector/checkpoints/default` (the commit before the retraining), unpacked into
bench/.cache; both run the default path (ONNX Runtime, each from its own verified export), each image once per
model per repetition, alternating which goes first.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import common
from common import CACHE, ROOT, interleaved, median_ms

PREVIOUS = "d28f153^"  # the bundled model before it was retrained on the 8,952-image set
CHECKPOINT = "hf_detector/checkpoints/default"


def previous_checkpoint(revision: str = PREVIOUS) -> Path:
    commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    target = CACHE / f"model-{commit}"
    if not (target / CHECKPOINT / "model.safetensors").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", revision, CHECKPOINT], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / CHECKPOINT


def model_change(model: Path, files: list[str], reps: int) -> dict[str, Any]:
    from hf_detector.inference.detector import Detector

    detectors = {"now": Detector.from_pretrained(str(model)), "previous": Detector.from_pretrained(str(previous_checkpoint()))}
    for detector in detectors.values():  # warm-up: sessions, caches
        detector.predict(files[0])
    times: dict[str, list[float]] = {name: [] for name in detectors}
    for path in files:
        measured = interleaved({name: lambda d=d, p=path: d.predict(p) for name, d in detectors.items()}, reps=reps,
                               warmup=0)
        for name, values in measured.items():
            times[name] += values
    e2e = {name: median_ms(values) for name, values in times.items()}
    return {"previous": PREVIOUS, "images": len(files), "reps": reps, "e2e_ms": e2e,
            "backend": {name: d.backend for name, d in detectors.items()}, "ratio": e2e["now"] / e2e["previous"]}


def model_change_lines(r: dict[str, Any] | None) -> list[str]:
    if not isinstance(r, dict):
        return [] if r is None else ["", "## The bundled model against the previous one", "", str(r)]
    verdict = "met" if r["ratio"] <= 2.0 else "**not met**"
    return [
        "", "## The bundled model against the previous one", "",
        f"`bench/model_change.py`: end-to-end latency at batch 1 (path -> probabilities, median of {r['images']} "
        f"benchmark images x {r['reps']}), today's bundled model and the one before its retraining (`{r['previous']}`), "
        f"alternated in one process, both on {r['backend']['now']}: **{r['e2e_ms']['now']:.1f} ms** vs "
        f"{r['e2e_ms']['previous']:.1f} ms = **{r['ratio']:.2f}x** (at most 2x: {verdict}). Same architecture and "
        "input size: the retraining changed weights, calibration and threshold only.",
    ]


START, END = "<!-- model-change section: bench/model_change.py -->", "<!-- end of model-change section -->"


def write_section(doc: Path, lines: list[str]) -> None:
    """Replace (or append) this section between its markers in docs/performance.md."""
    common.write_section(doc, START, END, lines)
