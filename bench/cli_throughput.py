"""`hf-detector predict FOLDER` in a fresh process per backend: folder throughput, startup and peak memory."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT

_CHILD = """
import resource, sys, time
start = time.perf_counter()
import hf_detector.evaluation.evaluate, hf_detector.inference.detector
from hf_detector.cli import main
imported = time.perf_counter()
code = main(sys.argv[1:])
print(f"BENCH rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} "
      f"import_s={imported - start:.2f} run_s={time.perf_counter() - imported:.2f}", file=sys.stderr)
sys.exit(code)
"""


def cli_throughput(model: Path, files: list[str], reps: int) -> dict[str, dict[str, float]]:
    """`hf-detector predict FOLDER` in a fresh process per backend (startup included), alternated."""
    folder = Path(tempfile.mkdtemp(prefix="hf-bench-"))
    try:
        for i, path in enumerate(files):
            (folder / f"{i:05d}{Path(path).suffix}").symlink_to(path)
        results: dict[str, dict[str, list[float]]] = {}
        for rep in range(reps):
            for backend in (("pytorch", "auto") if rep % 2 == 0 else ("auto", "pytorch")):
                done = subprocess.run([sys.executable, "-c", _CHILD, "predict", str(folder), "--model", str(model),
                                       "--format", "csv", "--backend", backend],
                                      capture_output=True, text=True, cwd=ROOT, check=False)
                if done.returncode != 0:
                    raise RuntimeError(f"predict --backend {backend} failed: {done.stderr[-500:]}")
                fields = dict(item.split("=") for item in done.stderr.rsplit("BENCH ", 1)[1].split())
                row = results.setdefault(backend, {"ips": [], "seconds": [], "rss_mb": [], "import_s": []})
                row["ips"].append(len(files) / float(fields["run_s"]))
                row["seconds"].append(float(fields["run_s"]))
                row["rss_mb"].append(float(fields["rss_mb"]))
                row["import_s"].append(float(fields["import_s"]))
        return {k: {m: statistics.median(v) for m, v in row.items()} for k, row in results.items()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
