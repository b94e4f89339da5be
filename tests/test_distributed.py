"""Scale-out on this machine: 2 CPU processes (gloo) through the committed accelerate config.

1. Training: the tiny recipe on 2 processes (per-device batch 8) equals 1 process (batch 16) on the same
   data: same gathered validation/test logits, temperature, threshold and metrics; only rank 0 writes
   the run's files; every evaluation example is predicted exactly once although the last evaluation
   batches are padded by the distributed sampler.
2. Scoring: `hf-detector predict` sharded over 2 processes prints exactly what 1 process prints, and a
   sharded `evaluate` writes the same metrics as the single-process one.

Tolerance: the two runs differ only in the order float32 gradients are summed (DDP's all-reduce), which
moves the weights by ~1e-7 relative per step; after 6 Adam steps logits agree to ~1e-6. We allow 1e-4,
while a real scaling bug (a different global batch, a scaled loss, a duplicated evaluation example)
moves them by 1e-2 or more.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image_folder, tiny_training_argv

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "train" / "configs" / "accelerate_cpu_2proc.yaml"

# Records, in each launched process, the files it opens for writing under the output directory and the
# gathered predictions `training.predict_logits` hands to the metrics; then runs the real training main().
PROBE = """
import json, os, sys
from pathlib import Path

out, log_dir = os.path.realpath(sys.argv[1]), Path(sys.argv[2])
writes = []

def audit(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writing and os.path.realpath(os.fsdecode(path)).startswith(out):
            writes.append(os.path.relpath(os.path.realpath(os.fsdecode(path)), out))
    elif event in ("os.rename", "os.replace") and isinstance(args[1], (str, bytes, os.PathLike)):
        if os.path.realpath(os.fsdecode(args[1])).startswith(out):
            writes.append(os.path.relpath(os.path.realpath(os.fsdecode(args[1])), out))

sys.addaudithook(audit)
import hf_detector.training.trainer as training

calls, original = [], training.predict_logits

def recording(trainer, dataset):
    logits, labels = original(trainer, dataset)
    calls.append({"examples": len(dataset), "logits": logits.tolist(), "labels": labels.tolist()})
    return logits, labels

training.predict_logits = recording
training.main(sys.argv[3:])
rank = os.environ.get("RANK", "0")
(log_dir / f"rank{rank}.json").write_text(json.dumps({"writes": sorted(set(writes)), "calls": calls}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _launch(args: list[str], processes: int, timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    if processes > 1:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIG),
                   "--num_processes", str(processes), "--main_process_port", str(_free_port()), *args]
    else:
        command = [sys.executable, *args]
    started = time.perf_counter()
    result = subprocess.run(command, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result, seconds


def _train(tmp_path: Path, data: Path, name: str, processes: int,
           monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict[int, dict], float]:
    """processes == 1 runs in this process (no second start-up of torch); otherwise a 2-process launch."""
    out, logs = tmp_path / name, tmp_path / f"{name}-logs"
    logs.mkdir()
    argv = tiny_training_argv(data, out, model="custom_cnn", image_size=24, max_steps=6, extra=[
        "--augment", "false", "--dropout", "0.0",  # nothing random besides the shared sampler order
        "--per_device_train_batch_size", str(16 // processes),  # the same global batch of 16
        "--per_device_eval_batch_size", "5",  # 16 examples over 2 processes: the last batches are padded
        "--save_strategy", "steps", "--save_steps", "3"])
    if processes == 1:
        import hf_detector.training.trainer as training

        calls, original = [], training.predict_logits

        def recording(trainer, dataset):
            logits, labels = original(trainer, dataset)
            calls.append({"examples": len(dataset), "logits": logits.tolist(), "labels": labels.tolist()})
            return logits, labels

        monkeypatch.setattr(training, "predict_logits", recording)
        started = time.perf_counter()
        training.main(argv)
        seconds = time.perf_counter() - started
        (logs / "rank0.json").write_text(json.dumps({"writes": [], "calls": calls}))
    else:
        probe = tmp_path / "probe.py"
        probe.write_text(PROBE)
        _, seconds = _launch([str(probe), str(out), str(logs), *argv], processes)
    ranks = {int(p.stem.removeprefix("rank")): json.loads(p.read_text()) for p in logs.glob("rank*.json")}
    return json.loads((out / "metrics.json").read_text()), ranks, seconds


@pytest.mark.slow
def test_two_process_training_matches_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_image_folder(tmp_path / "faces", per_class=32)  # train 32 / validation 16 / test 16
    one, one_ranks, one_seconds = _train(tmp_path, data, "one", 1, monkeypatch)
    two, two_ranks, two_seconds = _train(tmp_path, data, "two", 2, monkeypatch)
    print(f"\ntiny training wall time: 1 process (in this one) {one_seconds:.1f} s, "
          f"2 processes (launch and imports included) {two_seconds:.1f} s")
    assert sorted(two_ranks) == [0, 1] and sorted(one_ranks) == [0]

    # Every process sees all gathered predictions, one per example, in the dataset's order.
    reference = one_ranks[0]["calls"]
    for rank in (0, 1):
        calls = two_ranks[rank]["calls"]
        assert [c["examples"] for c in calls] == [c["examples"] for c in reference] == [16, 16, 16]
        for got, want in zip(calls, reference, strict=True):
            assert len(got["logits"]) == len(got["labels"]) == got["examples"]
            assert got["labels"] == want["labels"]
            np.testing.assert_allclose(got["logits"], want["logits"], atol=1e-4, rtol=0)
    max_difference = max(np.abs(np.subtract(g["logits"], w["logits"])).max()
                         for g, w in zip(two_ranks[0]["calls"], reference, strict=True))
    print(f"largest logit difference 1 vs 2 processes: {max_difference:.2e}")

    # Same calibration and metrics, computed on all predictions (n = the split's size).
    assert two["temperature"] == pytest.approx(one["temperature"], abs=1e-4)
    assert two["threshold"] == pytest.approx(one["threshold"], abs=1e-4)
    assert two["training"]["batch_size"] == one["training"]["batch_size"] == 16
    assert (two["training"]["processes"], one["training"]["processes"]) == (2, 1)
    for title, record in one["evaluations"].items():
        for key in ("accuracy", "roc_auc", "average_precision", "f1", "ece"):
            assert two["evaluations"][title][key] == pytest.approx(record[key], abs=1e-4), (title, key)
        assert np.asarray(two["evaluations"][title]["confusion_matrix"]).sum() == 16

    # Only the main process wrote the run's files; rank 1 writes at most its own RNG state in checkpoints.
    assert {"metrics.json", "README.md", "training_args.json"} <= set(two_ranks[0]["writes"])
    assert all(Path(p).name == "rng_state_1.pth" for p in two_ranks[1]["writes"]), two_ranks[1]["writes"]
    out = tmp_path / "two"
    assert (out / "model.safetensors").exists() and (out / "checkpoint-6" / "model.safetensors").exists()
    assert sorted(p.name for p in (out / "checkpoint-6").glob("rng_state*")) == ["rng_state_0.pth",
                                                                                 "rng_state_1.pth"]


# One launch runs the three sharded commands (predict, evaluate, evaluate --streaming) back to back.
SCORING = """
import contextlib, sys
from hf_detector.cli import main

data, model, out = sys.argv[1:4]
common = ["--model", model, "--batch-size", "4", "--backend", "pytorch"]
with open(f"{out}/predict.json", "w") as handle, contextlib.redirect_stdout(handle):
    code = main(["predict", data, "--format", "json", *common])
code |= main(["evaluate", "--data", data, "--output", f"{out}/eval/metrics.json", *common])
code |= main(["evaluate", "--data", data, "--output", f"{out}/stream/metrics.json", "--streaming", *common])
sys.exit(code)
"""


@pytest.mark.slow
def test_sharded_predict_and_evaluate_match_one_process(tmp_path: Path, trained_tiny_model: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    from hf_detector.cli import main as cli_main

    data = make_image_folder(tmp_path / "faces", per_class=9, sources=3)  # 18 images: uneven shards
    (data / "real" / "broken.png").write_bytes(b"not an image")  # an error row must stay in its place
    common = ["--model", str(trained_tiny_model), "--batch-size", "4", "--backend", "pytorch"]
    assert cli_main(["predict", str(data), "--format", "json", *common]) == 0
    rows_one = json.loads(capsys.readouterr().out)
    assert cli_main(["evaluate", "--data", str(data), "--output", str(tmp_path / "one.json"), *common]) == 0
    want = json.loads((tmp_path / "one.json").read_text())

    script = tmp_path / "scoring.py"
    script.write_text(SCORING)
    _, seconds = _launch([str(script), str(data), str(trained_tiny_model), str(tmp_path)], 2)
    print(f"\nsharded predict + evaluate + streamed evaluate, 2 processes: {seconds:.1f} s (launch included)")
    rows_two = json.loads((tmp_path / "predict.json").read_text())
    assert len(rows_two) == 19 and [r["file"] for r in rows_two] == [r["file"] for r in rows_one]
    assert [r["label"] for r in rows_two] == [r["label"] for r in rows_one]
    assert [r["error"] is None for r in rows_two] == [r["error"] is None for r in rows_one]
    assert sum(r["label"] == "error" for r in rows_two) == 1
    np.testing.assert_allclose([r["p_fake"] or 0.0 for r in rows_two], [r["p_fake"] or 0.0 for r in rows_one],
                               atol=1e-5, rtol=0)

    # Metrics on the merged predictions of both processes equal the single-process metrics.
    keys = ("accuracy", "balanced_accuracy", "roc_auc", "average_precision", "f1", "ece", "threshold")
    got = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert (got["n_images"], got["n_scored"], got["n_errors"], got["processes"]) == (19, 18, 1, 2)
    for key in keys:
        assert got[key] == pytest.approx(want[key], abs=1e-6), key
    assert got["per_source"] == want["per_source"] and got["errors"][0]["file"].endswith("broken.png")
    assert (tmp_path / "eval" / "metrics_roc.png").exists()
    assert not (tmp_path / "eval" / "metrics.json.parts").exists()  # parts merged and removed

    # Streamed with `datasets` and split by node (example i on process i % 2): the same metrics.
    streamed = json.loads((tmp_path / "stream" / "metrics.json").read_text())
    assert streamed["streaming"] and streamed["n_scored"] == 18
    for key in keys:
        assert streamed[key] == pytest.approx(want[key], abs=1e-6), key
    assert streamed["per_source"] == want["per_source"]


def test_merge_refuses_missing_or_duplicated_rows(tmp_path: Path) -> None:
    from hf_detector.evaluation.sharded import merge_parts, part_path

    part_path(tmp_path, 0, 2).write_text('{"index": 0}\n{"index": 2}\n')
    with pytest.raises(RuntimeError, match="process 1"):
        merge_parts(tmp_path, 2)
    part_path(tmp_path, 1, 2).write_text('{"index": 1}\n{"index": 1}\n')
    with pytest.raises(RuntimeError, match="4 rows"):
        merge_parts(tmp_path, 2, expected=3)
    part_path(tmp_path, 1, 2).write_text('{"index": 1}\n')
    assert [r["index"] for r in merge_parts(tmp_path, 2, expected=3)] == [0, 1, 2]
