"""The app under concurrent load (bench/load_app.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import ROOT


def app_load(model: Path, quick: bool) -> dict[str, Any] | str:
    tracked = subprocess.run(["git", "ls-files", "app.py"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    if not tracked:
        return "pending: app.py is not committed yet"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "load_app.py"), "--model", str(model), "--json",
                           *(["--requests", "2"] if quick else [])],
                          capture_output=True, text=True, cwd=ROOT, check=False, timeout=1800)
    last = done.stdout.strip().splitlines()[-1:] or [""]
    if last[0].startswith("{"):  # exit status 1 = some requests failed: still a result, errors counted
        return json.loads(last[0])
    return f"failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"
