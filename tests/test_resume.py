"""Interrupted training (issue 7): `kill -9` mid-run, then the same command with `--resume_from_checkpoint
last` ends at the same global step; half-written checkpoints are never resumed from nor left behind; an
output directory that cannot be written (or a full disk) stops the run before any data is loaded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import make_image_folder, tiny_training_argv

from hf_detector.training import trainer as training

ROOT = Path(__file__).resolve().parents[1]
MAX_STEPS = 8

# `hf-detector train` with two test hooks: a pause per step (so the kill lands mid-run, not after the
# end) and a file that counts the optimisation steps this process ran.
CLI_WITH_HOOKS = r"""
import os, sys, time
import hf_detector.training.trainer as training
step = training.DetectorTrainer.training_step
def counted_step(self, *args, **kwargs):
    time.sleep(float(os.environ.get("TEST_STEP_DELAY", "0")))
    with open(os.environ["TEST_STEP_LOG"], "a") as log:
        log.write("step\n")
    return step(self, *args, **kwargs)
training.DetectorTrainer.training_step = counted_step
from hf_detector.cli import main
sys.exit(main(sys.argv[1:]))
"""


def complete(checkpoint: Path) -> bool:
    step = int(checkpoint.name.split("-")[1])
    return training._checkpoint_complete(checkpoint, step)


def checkpoints(out: Path) -> dict[int, Path]:
    return {int(p.name.split("-")[1]): p for p in out.glob("checkpoint-*") if p.is_dir()}


def write_checkpoint(path: Path, step: int, state: bool = True, weights: bool = True) -> Path:
    path.mkdir(parents=True)
    if weights:
        (path / "model.safetensors").write_bytes(b"weights")
    if state:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


# ----------------------------------------------------------------------------------------------- fast


def test_last_complete_checkpoint_skips_and_removes_half_written_ones(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "run"
    write_checkpoint(out / "checkpoint-2", 2)
    write_checkpoint(out / "checkpoint-4", 4)
    write_checkpoint(out / "checkpoint-6", 6, state=False)  # killed before trainer_state.json
    (write_checkpoint(out / "checkpoint-8", 8, weights=True) / "trainer_state.json").write_text('{"global_')
    write_checkpoint(out / "checkpoint-10", 10, weights=False)
    (out / "checkpoint-12").write_text("a file, not a checkpoint")
    assert training.last_complete_checkpoint(out) == str(out / "checkpoint-4")
    assert sorted(checkpoints(out)) == [2, 4, 6, 8, 10]  # only looked
    with caplog.at_level("WARNING"):
        assert training.last_complete_checkpoint(out, remove_incomplete=True) == str(out / "checkpoint-4")
    assert sorted(checkpoints(out)) == [2, 4]
    assert "checkpoint-6 was not completely written" in caplog.text
    assert training.last_complete_checkpoint(tmp_path / "nothing-here") is None


def test_unwritable_output_dir_stops_before_training(tmp_path: Path) -> None:
    # Tests run as root, where chmod does not stop writes: a path below a regular file cannot be created.
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    out = blocker / "out"
    with pytest.raises(SystemExit) as caught:
        training.check_output_dir(str(out))
    assert str(caught.value).startswith(f"error: cannot write to output_dir {out}: Not a directory")
    # the whole command: the output check comes before the data is even looked at
    with pytest.raises(SystemExit) as caught:
        training.main(tiny_training_argv(tmp_path / "no-such-data", out, model="custom_cnn", image_size=24))
    assert str(caught.value).startswith("error: cannot write to output_dir")


def test_full_disk_stops_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training.os, "statvfs",
                        lambda path: SimpleNamespace(f_bavail=10, f_frsize=4096))  # 40 kB free
    with pytest.raises(SystemExit, match=r"^error: only 0 MB free in .*out; a checkpoint needs about 100 MB"):
        training.check_output_dir(str(tmp_path / "out"))


# ----------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_kill_9_mid_training_then_resume_ends_at_the_same_step(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "faces", per_class=8, size=32)
    out = tmp_path / "run"
    argv = ["train", *tiny_training_argv(data, out, model="custom_cnn", image_size=24, max_steps=MAX_STEPS,
                                         extra=["--save_strategy", "steps", "--save_steps", "2",
                                                "--per_device_train_batch_size", "4", "--do_train",
                                                "--calibrate", "false"])]
    steps_log = tmp_path / "steps.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TEST_STEP_LOG": str(steps_log),
           "TEST_STEP_DELAY": "0.5"}
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen([sys.executable, "-c", CLI_WITH_HOOKS, *argv], cwd=ROOT, env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 900
        try:
            while not (out / "checkpoint-4" / "trainer_state.json").exists():
                assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no checkpoint-4 within 900 s"
                time.sleep(0.1)
        finally:
            os.kill(first.pid, signal.SIGKILL)  # the process this test started, nothing else
            first.wait()
    assert first.returncode == -signal.SIGKILL
    assert not (out / "metrics.json").exists()  # it really died mid-run
    saved = checkpoints(out)
    last = max(step for step, path in saved.items() if complete(path))
    assert 4 <= last < MAX_STEPS
    if all(complete(path) for path in saved.values()):  # the kill missed a save: make one half-written
        half = out / f"checkpoint-{last + 2}"
        half.mkdir()
        (half / "model.safetensors").write_bytes((saved[last] / "model.safetensors").read_bytes()[:1000])

    steps_log.unlink()
    env["TEST_STEP_DELAY"] = "0"
    resumed = subprocess.run([sys.executable, "-c", CLI_WITH_HOOKS, *argv, "--resume_from_checkpoint", "last"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    assert "was not completely written" in resumed.stdout + resumed.stderr
    assert len(steps_log.read_text().splitlines()) == MAX_STEPS - last  # continued, did not start over
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == MAX_STEPS
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "metrics.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "metrics.json").read_text())["training"]["train_images"] > 0
    assert all(complete(path) for path in checkpoints(out).values())  # nothing half-written is left
    assert MAX_STEPS in checkpoints(out)
