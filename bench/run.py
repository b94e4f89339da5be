"""`make bench`: speed of hf-detector, measured side by side, written to docs/performance.md.

Every comparison runs baseline (eager fp32 PyTorch) and candidate in the same process, with interleaved
repetitions, and is reported as a ratio: the machine is shared, so absolute milliseconds drift while
ratios hold. Sections: end-to-end latency at batch 1 and forward-only (our model, each backend and the
candidates that were not chosen), folder throughput and peak memory of `hf-detector predict`, the
same-run forward cost of ViT-base/16, Swin-base and ResNet-50 (random init: architecture cost only),
agreement of the fast path with fp32 on the benchmark images, training throughput, and the app under
load (bench/load_app.py), the light runtime's cold start and large photos against the code before the
restructuring (bench/startup.py). One module per benchmark under bench/ (common.py: what they share;
render.py: the page); this file runs them in order.

    python bench/run.py                 # full run (~5-10 min on 2 busy cores)
    python bench/run.py --quick         # fewer images and repetitions (smoke test)
    python bench/run.py --only startup  # one section, written into its part of docs/performance.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import agreement as agreement_section
import app_load as app_section
import cli_throughput as cli_section
import face_detectors as face_section
import int8_check as int8_section
import latency as latency_section
import model_change as model_section
import reference_models as reference_section
import render as render_section
import startup as startup_section
import torch
import training_speed as training_section
from common import CACHE, DATA, DOC, benchmark_images, machine, model_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few images and repetitions (smoke test)")
    parser.add_argument("--per-source", type=int, default=None, help="agreement images per source")
    parser.add_argument("--no-app", action="store_true", help="skip the app load test")
    parser.add_argument("--output", default=str(DOC))
    parser.add_argument("--from-json", default=None, help="re-render docs/performance.md from a saved run")
    parser.add_argument("--only", choices=["startup", "model"], default=None,
                        help="run one section and replace just its part of docs/performance.md")
    args = parser.parse_args(argv)
    if args.from_json:
        Path(args.output).write_text(render_section.render(json.loads(Path(args.from_json).read_text())))
        return 0
    quick = args.quick
    per_source = args.per_source or (3 if quick else 25)
    if args.only == "model":
        files, _, _ = benchmark_images(per_source)
        result = model_section.model_change(model_path()[0], files[:16 if quick else 48], reps=1 if quick else 3)
        model_section.write_section(Path(args.output), model_section.model_change_lines(result))
        print("\n".join(model_section.model_change_lines(result)))
        return 0
    if args.only == "startup":
        files, _, _ = benchmark_images(per_source)
        result = startup_section.startup(files, reps=3 if quick else 5, quick=quick)
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "startup_run.json").write_text(json.dumps(result, indent=2))
        startup_section.write_section(Path(args.output), startup_section.startup_lines(result))
        print("\n".join(startup_section.startup_lines(result)))
        return 0
    torch.manual_seed(0)
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "per_source": per_source,
                              "data_present": (DATA / "metadata.csv").exists()}
    model, note = model_path()
    report["model_note"] = note
    files, labels, _ = benchmark_images(per_source)
    report["n_images"] = len(files)
    small = files[: 8 if quick else 16]

    def step(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        value = fn()
        print(f"[bench] {name} done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "partial_run.json").write_text(json.dumps({**report, name: value}, indent=2, default=str))
        return value

    report["latency"] = step("latency", lambda: latency_section.latency(model, small, reps=1 if quick else 2))
    report["model_change"] = step("model change", lambda: model_section.model_change(
        model, files[:16 if quick else 48], reps=1 if quick else 3))
    scored = len(files) if not quick else 16
    report["int8"] = step("int8 quantisation",
                          lambda: int8_section.int8_candidate(model, files[:scored], labels[:scored], reps=5 if quick else 30,
                                                 quick=quick))
    report["reference"] = step("reference models", lambda: reference_section.reference_models(reps=2 if quick else 5))
    report["agreement"] = step("agreement", lambda: agreement_section.agreement(model, files, labels))
    report["face_detectors"] = step("face detectors", lambda: face_section.face_detectors(model, files, labels,
                                                                             reps=1 if quick else 2))
    cli_files = files[:16] if quick else files  # a folder of every benchmark image: throughput, not only startup
    report["n_cli"] = len(cli_files)
    report["cli"] = step("cli throughput", lambda: cli_section.cli_throughput(model, cli_files, reps=1 if quick else 2))
    report["training"] = step("training", lambda: training_section.training_throughput(steps=2 if quick else 4))
    report["trainer"] = step("trainer", lambda: training_section.trainer_throughput(steps=4 if quick else 40))
    report["startup"] = step("light runtime and large photos",
                             lambda: startup_section.startup(files, reps=3 if quick else 5, quick=quick))
    report["load_before_app"] = os.getloadavg()[0]
    report["app"] = "skipped (--no-app)" if args.no_app else step("app", lambda: app_section.app_load(model, quick))
    report["load_end"] = os.getloadavg()[0]
    Path(args.output).write_text(render_section.render(report))
    (CACHE).mkdir(parents=True, exist_ok=True)
    (CACHE / "last_run.json").write_text(json.dumps(report, indent=2, default=str))
    print(Path(args.output).read_text())
    print(f"peak RSS of the benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
