"""Shared by the benchmarks: paths, the machine, the benchmark images, the model, interleaved timing."""

from __future__ import annotations

import csv
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "faces"
DOC = ROOT / "docs" / "performance.md"
CACHE = ROOT / "bench" / ".cache"


# -- helpers ---------------------------------------------------------------------------------------
def median_ms(values: list[float]) -> float:
    return 1000.0 * statistics.median(values)


def interleaved(fns: dict[str, Callable[[], Any]], reps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each fn, repetitions interleaved (A B C A B C ...), order rotated each round."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def machine() -> dict[str, Any]:
    cpu = "unknown"
    flags: set[str] = set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    from hf_detector.runtime.onnx import describe

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "isa": ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
                             if f in flags) or "none listed",
            "load_1min": os.getloadavg()[0], **describe()}


def benchmark_images(per_source: int, seed: int = 0) -> tuple[list[str], list[int], list[str]]:
    """Stratified by source from ../shared/data/faces; the bundled examples when the data is absent."""
    if (DATA / "metadata.csv").exists():
        rows = list(csv.DictReader(open(DATA / "metadata.csv", newline="", encoding="utf-8")))
        by_source: dict[str, list[dict]] = {}
        for row in rows:
            by_source.setdefault(row["source"], []).append(row)
        rng = random.Random(seed)
        picked = []
        for source in sorted(by_source):
            picked += rng.sample(by_source[source], min(per_source, len(by_source[source])))
        rng.shuffle(picked)
        return ([str(DATA / r["file_name"]) for r in picked], [int(r["label"] == "fake") for r in picked],
                [r["source"] for r in picked])
    examples = sorted((ROOT / "examples").glob("*.jpg"))
    return [str(p) for p in examples], [int("fake" in p.name) for p in examples], ["examples"] * len(examples)


def model_path() -> tuple[Path, str]:
    """hf_detector/checkpoints/default when it exists, else an (untrained-head) MobileNetV2 1.0 at 128 px made here."""
    from hf_detector import DEFAULT_MODEL, default_model_available

    if default_model_available():
        return DEFAULT_MODEL, "hf_detector/checkpoints/default"
    path = CACHE / "mobilenet_v2-128"
    if not (path / "config.json").exists():
        from hf_detector.models import create_model
        from hf_detector.preprocessing.processor import FaceImageProcessor

        torch.manual_seed(0)
        create_model("mobilenet_v2", image_size=128).save_pretrained(path)
        FaceImageProcessor().save_pretrained(path)
    return path, "stand-in: MobileNetV2 1.0, 128 px, ImageNet features + untrained head (no bundled model yet)"


# MTCNN search sizes tried as candidates (agreement and face-detector sections)
SMALL_DETECT_SIZES = (160, 128)


def write_section(doc: Path, start: str, end: str, lines: list[str]) -> None:
    """Replace (or append) one section between its markers in docs/performance.md, leaving the rest as it is."""
    text = doc.read_text() if doc.exists() else ""
    block = "\n".join([start, *lines, end])
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)
