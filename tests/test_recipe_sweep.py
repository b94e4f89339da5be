"""scripts/recipe_sweep.py at tiny size: a real (CPU) training run on generated crops, then the report."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_image

ROOT = Path(__file__).resolve().parent.parent


def _load_sweep():
    spec = importlib.util.spec_from_file_location("recipe_sweep", ROOT / "scripts" / "recipe_sweep.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["recipe_sweep"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def crops_npz(tmp_path: Path) -> Path:
    blobs, labels, sources = [], [], []
    for index in range(48):
        label = index % 2
        buffer = io.BytesIO()
        synthetic_image("fake" if label else "real", index, size=32).save(buffer, format="JPEG", quality=95)
        blobs.append(buffer.getvalue())
        labels.append(label)
        sources.append(f"{'fake' if label else 'real'}{index % 4 // 2}")
    rows = list(range(48))
    split = {"train": rows[:24], "validation": rows[24:36], "test": rows[36:]}
    logo = {"train": [r for r in rows[:24] if sources[r] != "fake1"], "validation": rows[24:36],
            "test": [r for r in rows[36:] if sources[r] != "fake1"], "heldout": [r for r in rows if sources[r] == "fake1"]}
    path = tmp_path / "crops.npz"
    np.savez(path, blobs=np.array(blobs, dtype=object),
             meta=json.dumps({"label": labels, "source": sources, "generator": [None] * 48}),
             splits=json.dumps({"seed42": split, "logo_fake1": logo}))
    return path


def test_sweep_trains_scores_and_renders(crops_npz: Path, tmp_path: Path, monkeypatch) -> None:
    sweep = _load_sweep()
    monkeypatch.setitem(sweep.RECIPES, "tiny", {"model": "mobilenet_v2_0.35", "image_size": 32, "epochs": 1,
                                                "batch_size": 8, "warmup_steps": 0,
                                                "augment": {"fake_degrade": 0.5}})
    out = tmp_path / "sweep"
    monkeypatch.setattr(sys, "argv", ["recipe_sweep.py", "--crops", str(crops_npz), "--output", str(out),
                                      "--configs", "tiny", "--splits", "seed42,logo_fake1", "--workers", "0"])
    sweep.main()
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [r["split"] for r in runs] == ["seed42", "logo_fake1"]
    assert 0.0 <= runs[0]["test_auroc"] <= 1.0 and 0.0 <= runs[1]["heldout_detected"] <= 1.0
    assert sum(s["n"] for s in runs[0]["test_per_source"].values()) == 12
    summary = json.loads((out / "summary.json").read_text())["summary"]["tiny"]
    assert summary["runs"] == 2 and "logo_fake1_auroc" in summary

    markdown = tmp_path / "search.md"
    monkeypatch.setattr(sys, "argv", ["recipe_sweep.py", "--render", str(out / "runs.jsonl"),
                                      "--markdown", str(markdown)])
    sweep.main()
    table = [line for line in markdown.read_text().splitlines() if line.startswith("| tiny")]
    assert len(table) == 1 and f"{summary['test_auroc']:.3f}" in table[0]
