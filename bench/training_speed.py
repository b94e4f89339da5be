"""Training throughput: the compute-only step and the real Trainer (DataLoader workers, freed memory kept)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import DATA, ROOT, interleaved, median_ms


def training_throughput(steps: int) -> dict[str, Any]:
    """Default recipe's train step (MobileNetV2 1.0, 128 px, batch 32, AdamW) + the per-image data cost."""
    from PIL import Image

    from hf_detector.models import create_model
    from hf_detector.preprocessing.augmentation import build_train_augmentation
    from hf_detector.preprocessing.processor import FaceImageProcessor
    from hf_detector.training.memory import keep_freed_memory

    keep_freed_memory()  # as train/train.py does (one-way: the sections before this ran with glibc's defaults)
    recipe = json.loads((ROOT / "train" / "configs" / "default.json").read_text())
    batch, size = int(recipe["per_device_train_batch_size"]), int(recipe["image_size"])
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 2, (batch,))
    steps_by_layout = {}
    for layout, memory_format in (("standard", torch.contiguous_format), ("channels_last", torch.channels_last)):
        torch.manual_seed(0)
        model = create_model(recipe["model"], image_size=size).train().to(memory_format=memory_format)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(model=model, optimizer=optimizer) -> None:
            loss = model(pixel_values=x, labels=y).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        steps_by_layout[layout] = step
    times = interleaved(steps_by_layout, reps=steps)  # the Trainer runs channels_last (training argument)
    seconds, standard = times["channels_last"], statistics.median(times["standard"])
    augment = build_train_augmentation()
    processor = FaceImageProcessor(crop_size=recipe["crop_size"], size=size)
    crop = Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8))
    data = interleaved({"data": lambda: processor.finish([augment(crop)])}, reps=64)["data"]
    n_train = None
    if (DATA / "metadata.csv").exists():
        n_train = int(0.7 * sum(1 for _ in open(DATA / "metadata.csv", encoding="utf-8")) - 0.7)
    out: dict[str, Any] = {"batch": batch, "image_size": size, "epochs": recipe["num_train_epochs"],
                           "step_s": statistics.median(seconds), "ips": batch / statistics.median(seconds),
                           "ips_standard": batch / standard,
                           "data_ms_per_image": median_ms(data), "n_train_approx": n_train,
                           "workers": recipe.get("preprocessing_num_workers")}
    if n_train:
        out["projected_min"] = recipe["num_train_epochs"] * n_train / out["ips"] / 60
    for state in (ROOT / "hf_detector" / "checkpoints" / "default" / "train_results.json",
                  ROOT / "hf_detector" / "checkpoints" / "default" / "metrics.json", ROOT / "runs" / "default" / "metrics.json",
                  ROOT / "runs" / "default" / "trainer_state.json"):
        if state.exists():
            try:
                text = json.loads(state.read_text())
            except ValueError:
                continue
            history = text.get("log_history", [text]) if isinstance(text, dict) else []
            for entry in history:
                if isinstance(entry, dict) and "train_runtime" in entry:
                    out["recorded"] = {"file": str(state.relative_to(ROOT)), "train_runtime_s": entry["train_runtime"],
                                       "train_samples_per_second": entry.get("train_samples_per_second")}
            if "recorded" in out:
                break
    return out


TRAINER_CONFIGS = {  # name: (DataLoader workers, keep freed memory: hf_detector.training.memory, on by default)
    "default": (0, True), "glibc_malloc": (0, False), "one_worker": (1, True)}


def trainer_throughput(steps: int) -> dict[str, Any] | str:
    """The real Trainer (train/train.py, default recipe) for a few steps on the cached face crops: the default
    (data in the main process, freed memory kept), glibc's default malloc (HF_DETECTOR_KEEP_FREED_MEMORY=0) and
    one DataLoader worker, each twice in ABCCBA order after an untimed warm-up run: median images/s as the
    Trainer reports it (its first steps included)."""
    if not (DATA / "metadata.csv").exists():
        return "skipped (needs ../shared/data/faces)"
    order = list(TRAINER_CONFIGS)
    rates: dict[str, list[float]] = {name: [] for name in order}
    peak_mb: dict[str, list[float]] = {name: [] for name in order}
    with tempfile.TemporaryDirectory(prefix="hf-bench-train-") as folder:
        # a short untimed run first (the first process pays for cold file caches), then ABCCBA: a drifting
        # machine load hits every configuration alike
        for run, name in enumerate([None, *order, *reversed(order)]):
            workers, keep = TRAINER_CONFIGS[name or "default"]
            out = Path(folder) / f"run{run}"
            argv = ["train/train.py", "train/configs/default.json", "--output_dir", str(out),
                    "--max_steps", str(steps if name else 2), "--eval_strategy", "no",
                    "--save_strategy", "no", "--calibrate", "false", "--int8", "false", "--do_train", "true",
                    "--do_eval", "false", "--disable_tqdm", "true", "--dataloader_num_workers", str(workers)]
            env = {**os.environ, "HF_DETECTOR_KEEP_FREED_MEMORY": "1" if keep else "0"}
            log = Path(folder) / f"run{run}.log"
            with open(log, "wb") as sink:
                child = subprocess.Popen([sys.executable, *argv], stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT,
                                         env=env)
                _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS (kB on Linux)
                child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [str(child.returncode)]
                return f"failed ({tail[0]})"
            if name:
                rates[name].append(json.loads((out / "train_results.json").read_text())["train_samples_per_second"])
                peak_mb[name].append(usage.ru_maxrss / 1024)
    return {"steps": steps, "ips": {name: statistics.median(values) for name, values in rates.items()},
            "runs": rates, "peak_rss_mb": {name: max(values) for name, values in peak_mb.items()}}
