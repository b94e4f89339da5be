"""Shared fixtures: tiny generated image folders with a learnable real/fake difference."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the unit tests may reach the Hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


def synthetic_image(label: str, index: int, size: int = 64) -> Image.Image:
    """Real: smooth colour gradients. Fake: warmer colours plus a checkerboard (learnable in a few steps)."""
    rng = np.random.default_rng(index * 2 + (label == "fake"))
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(3 * x + rng.uniform(0, 6)), np.cos(2 * y + rng.uniform(0, 6)), x * y], -1)
    image = 0.5 + 0.3 * base + rng.normal(0, 0.02, base.shape)
    if label == "fake":
        checker = ((np.indices((size, size)).sum(0) % 2) * 2 - 1)[..., None]
        image = image + 0.15 * checker + np.array([0.25, 0.0, -0.25])
    return Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8))


def make_image_folder(root: Path, per_class: int = 12, size: int = 64, sources: int = 2) -> Path:
    """An imagefolder directory with metadata.csv (`source` column), like ../shared/data/faces."""
    rows = []
    for label in ("fake", "real"):  # 'fake' sorts first on disk: the fixed mapping must not care
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            name = f"{label}/{label}_{i:03d}.png"
            synthetic_image(label, i, size).save(root / name)
            rows.append({"file_name": name, "source": f"{label}-src{i % sources}", "label": label})
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file_name", "label", "source"])
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def one_thread():
    """One torch intra-op thread for a test module: on two shared cores, forwards and MTCNN are ~10x faster
    than with two oversubscribed threads. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield None
    torch.set_num_threads(before)


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "faces")


@pytest.fixture(scope="session")
def trained_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MobileNetV2 really trained by the Trainer CLI for a few steps; shared by several tests."""
    from hf_detector.training.trainer import main

    root = tmp_path_factory.mktemp("tiny")
    data = make_image_folder(root / "faces", per_class=16)
    out = root / "model"
    main(tiny_training_argv(data, out, model="mobilenet_v2_0.35", image_size=32, max_steps=6))
    return out


def tiny_training_argv(data: Path, out: Path, model: str = "mobilenet_v2_0.35", image_size: int = 32,
                       max_steps: int = 4, extra: list[str] | None = None) -> list[str]:
    return ["--model", model, "--data", str(data), "--output_dir", str(out), "--image_size", str(image_size),
            "--crop_size", str(max(image_size, 48)), "--face_crop", "false", "--max_steps", str(max_steps),
            "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16",
            "--learning_rate", "1e-3", "--eval_strategy", "no", "--save_strategy", "no",
            "--logging_steps", "1", "--validation_fraction", "0.25", "--test_fraction", "0.25",
            "--disable_tqdm", "true", "--use_cpu", "true", *(extra or [])]


@pytest.fixture(scope="module")
def hub():
    """A Hub-compatible HTTP server on 127.0.0.1 (tests/hub_server.py), one per test module."""
    from conftest_hub import start_server

    server = start_server()
    yield server
    server.stop()
