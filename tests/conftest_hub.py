"""Helpers for tests that talk to the test Hub server (`hub_server.HubServer`) through the real client.

`huggingface_hub` (and transformers, datasets) read `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_DISABLE_XET`... once, at
import time, and the pytest process has usually imported them already. So the client side runs in a fresh
subprocess with `client_env(...)`: the real library, pointed at the local server, with an empty cache.

`run_client(code, env)` runs Python code there. `LIGHT_IMPORT` makes `hf_detector.hub` / `hf_detector.card`
importable without running `hf_detector/__init__.py` (which imports torch and transformers: ~10 s per
subprocess on a busy 2-core machine), for the tests that do not need a model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from hub_server import HubServer

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_test_write_token"
USER = "tester"
READ_TOKEN = "hf_test_read_token"

LIGHT_IMPORT = textwrap.dedent(f"""
    import importlib.util, sys
    # The real package spec (so submodules and importlib.resources work), without executing __init__.py.
    _spec = importlib.util.spec_from_file_location(
        "hf_detector", {str(ROOT / "hf_detector" / "__init__.py")!r},
        submodule_search_locations=[{str(ROOT / "hf_detector")!r}])
    sys.modules.setdefault("hf_detector", importlib.util.module_from_spec(_spec))
""")

# Variables from the developer's shell that would send the client elsewhere than the test server.
_SCRUB = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN_PATH",
          "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE", "HF_DATASETS_CACHE", "HUGGING_FACE_HUB_TOKEN",
          "HF_XET_CACHE", "HF_ASSETS_CACHE", "HF_STORED_TOKENS_PATH")


def start_server() -> HubServer:
    """A fresh server on 127.0.0.1 (free port) with a write token for `tester` and a read-only one."""
    return HubServer(token=TOKEN, user=USER, extra_tokens={READ_TOKEN: ("reader", "read")}).start()


def _pythonpath(env: dict[str, str]) -> str:
    return os.pathsep.join(p for p in (str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH")) if p)


def client_env(endpoint: str, hf_home: Path, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    """Environment for a client subprocess: this endpoint, this token, Xet off, an empty private HF_HOME."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and k != "HF_TOKEN"}
    env.update({
        "HF_ENDPOINT": endpoint,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(hf_home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "0",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",  # the machine is shared: no thread storms from torch in subprocesses
        "PYTHONPATH": _pythonpath(env),
    })
    if token is not None:
        env["HF_TOKEN"] = token
    env.update(extra)
    return env


def run_client(code: str, env: dict[str, str], *args: str, light: bool = True, timeout: float = 180,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `code` (dedented) in a fresh interpreter with `env`; `sys.argv[1:]` = args."""
    source = (LIGHT_IMPORT if light else "") + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", source, *args], env=env, cwd=str(cwd or ROOT),
                          capture_output=True, text=True, timeout=timeout)


def run_hub_cli(env: dict[str, str], *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`hf-detector push|push-space ...` through `hub.register_commands` (what cli.py wires)."""
    code = "import sys; from hf_detector.hub import push as hub; sys.exit(hub.main(sys.argv[1:]))"
    return run_client(code, env, *argv, timeout=timeout)


def last_json(proc: subprocess.CompletedProcess[str]) -> Any:
    """The last stdout line of a client run, parsed as JSON (clients print their results that way)."""
    assert proc.returncode == 0, (
        f"client failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def snapshot(path: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under path: to prove a failed push left the directory untouched."""
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*")) if p.is_file()}


def write_metrics(model_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A metrics.json in the trainer's shape (the card reads it), plus one small PNG plot."""
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15"
           b"\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00"
           b"\x00IEND\xaeB`\x82")
    (model_dir / "confusion_matrix.png").write_bytes(png)
    record: dict[str, Any] = {
        "model_name": "tiny-detector",
        "architecture": "mobilenet_v2",
        "base_model": "google/mobilenet_v2_1.0_224",
        "datasets": ["tester/faces-real-vs-fake"],
        "license": "cc-by-nc-sa-4.0",
        "parameters": 123456,
        "threshold": 0.5,
        "temperature": 1.0,
        "training": {"epochs": 1, "learning_rate": 0.001, "batch_size": 4, "image_size": 32,
                     "train_images": 8,
                     "wall_time_s": 1.5, "images_per_second": 5.3, "recipe": "tiny-test"},
        "evaluations": {
            "in-distribution test": {
                "accuracy": 0.75, "balanced_accuracy": 0.74, "precision": 0.8, "recall": 0.7, "f1": 0.7467,
                "roc_auc": 0.81, "average_precision": 0.79, "ece": 0.05, "n": 40,
                "per_source": {"ffhq": {"n": 20, "accuracy": 0.8, "fraction_predicted_fake": 0.2},
                               "stylegan2": {"n": 20, "accuracy": 0.7, "fraction_predicted_fake": 0.7}},
            },
            "held-out sdfd": {"accuracy": 0.6, "roc_auc": 0.66, "n": 20, "recall": 0.4},
            "jpeg q75": {"accuracy": 0.7, "f1": 0.69, "n": 40, "roc_auc": None},
        },
        "plots": ["confusion_matrix.png"],
    }
    record.update(overrides)
    (model_dir / "metrics.json").write_text(json.dumps(record, indent=2))
    return record
