"""The light runtime and large photos, side by side with the code before issue 25 (the baseline revision).

    cold start     `hf-detector predict one.jpg` in a fresh process (bytecode cached by an untimed first run)
                   against `python -c "import torch"` on the same machine, alternated
    large photos   `hf-detector predict FOLDER` over 40 twelve-megapixel JPEGs and over the same 40 at 512 px
                   (shorter side): images/s of `main()` in a fresh process
    in-process     `Detector.iter_files` images/s on the benchmark images, default backend
    scores         p(fake) of the 12-MP photos: reduced-size JPEG decoding (Pillow's draft) against the
                   baseline's full decoding, and against this tree with the draft switched off

The baseline tree is `git archive BASELINE` unpacked into bench/.cache (never a worktree of the shared
repository); each side runs in its own subprocess with its tree first on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common
import numpy as np
from common import CACHE, ROOT
from PIL import Image

BASELINE = "1317a59"  # main before issue 25: flat modules, torch imported by every predict
PHOTOS = 40

_PREDICT = """
import resource, sys, time
start = time.perf_counter()
from hf_detector.cli import main
imported = time.perf_counter()
code = main(sys.argv[1:])
print(f"BENCH rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} "
      f"import_s={imported - start:.3f} run_s={time.perf_counter() - imported:.3f}", file=sys.stderr)
sys.exit(code)
"""

_IN_PROCESS = """
import json, sys, time
from hf_detector import Detector
detector = Detector.from_pretrained()
files, reps = sys.argv[2:], int(sys.argv[1])
list(detector.iter_files(files[:8]))  # warm-up: sessions, caches
rates = []
for _ in range(reps):
    start = time.perf_counter()
    results = list(detector.iter_files(files))
    rates.append(len(files) / (time.perf_counter() - start))
print("BENCH " + json.dumps({"ips": sorted(rates)[len(rates) // 2], "backend": detector.backend,
                             "scores": [r.prediction.p_fake if r.prediction else None for r in results]}))
"""

# The model's own noise floor on the same photos: the full decode's reduced picture (what the face stage sees)
# scored as it is and with an invisible +-1 level of uniform noise (three draws). No decoding path other than
# the identical one can be expected to stay closer to the full decode's scores than this.
_NOISE_FLOOR = """
import io, json, sys
import numpy as np
from PIL import Image
from hf_detector import Detector
from hf_detector.data.images import load_image
detector = Detector.from_pretrained()
diffs, exact = [], []
for path in sys.argv[1:]:
    full = load_image(path)
    small = detector.processor.cap_resolution(full)[0]
    reference = detector.predict(small).p_fake
    pixels = np.asarray(small, dtype=np.int16)
    for seed in range(3):
        noise = np.random.default_rng(seed).integers(-1, 2, pixels.shape)
        noisy = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
        diffs.append(abs(detector.predict(noisy).p_fake - reference))
    # the same reduction computed exactly: Lanczos over every full-size pixel, without the box pre-reduction
    # that reducing_gap=3 applies (a more accurate resize, not a cheaper one), then the same JPEG round trip
    resized = full.convert("RGB").resize(small.size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    resized.save(buffer, format="JPEG", quality=detector.processor.reduced_jpeg_quality)
    exact.append(abs(detector.predict(Image.open(buffer)).p_fake - reference))
print("BENCH " + json.dumps({"max": max(diffs), "mean": sum(diffs) / len(diffs),
                             "exact_max": max(exact), "exact_mean": sum(exact) / len(exact)}))
"""


def baseline_tree(revision: str = BASELINE) -> Path:
    """The baseline revision's files (package, checkpoints) unpacked once into bench/.cache, with today's
    bundled model in place of its own."""
    target = CACHE / f"baseline-{revision}"
    if not (target / "hf_detector" / "__init__.py").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    # The baseline code scores today's bundled weights: the comparison is of code paths (imports, decoding),
    # not of models (the bundled model was retrained since the baseline revision).
    bundled, theirs = ROOT / "hf_detector" / "checkpoints" / "default", target / "checkpoints" / "default"
    if (not (theirs / "model.safetensors").exists()
            or (theirs / "model.safetensors").read_bytes() != (bundled / "model.safetensors").read_bytes()):
        shutil.rmtree(theirs, ignore_errors=True)
        shutil.copytree(bundled, theirs, ignore=shutil.ignore_patterns("onnx", "checkpoint-*"))
    return target


def _env(tree: Path, draft: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # bytecode cached
    env["PYTHONPATH"] = str(tree)
    if not draft:
        env["HF_DETECTOR_JPEG_DRAFT"] = "0"
    return env


def _fields(stderr: str) -> dict[str, float]:
    return {k: float(v) for k, v in (item.split("=") for item in stderr.rsplit("BENCH ", 1)[1].split())}


def make_photos(sources: list[str], folder: Path, count: int = PHOTOS) -> tuple[list[str], list[str]]:
    """`count` 12-MP JPEGs (4000 x 3000, the face photo enlarged, sensor-like noise so the file is photo-sized,
    q92) and the same pictures at 512 px on the shorter side."""
    big, small = folder / "12mp", folder / "512px"
    big.mkdir(parents=True, exist_ok=True)
    small.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, path in enumerate(sources[:count]):
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        width, height = rgb.size
        side = min(width, height * 4 // 3)  # a 4:3 window around the centre
        box = ((width - side) // 2, (height - side * 3 // 4) // 2)
        rgb = rgb.crop((box[0], box[1], box[0] + side, box[1] + side * 3 // 4)).resize((4000, 3000),
                                                                                        Image.Resampling.LANCZOS)
        pixels = np.asarray(rgb, dtype=np.int16) + rng.normal(0, 3, (3000, 4000, 1)).astype(np.int16)
        rgb = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        rgb.save(big / f"{i:03d}.jpg", quality=92)
        rgb.resize((683, 512), Image.Resampling.LANCZOS).save(small / f"{i:03d}.jpg", quality=92)
    return sorted(map(str, big.glob("*.jpg"))), sorted(map(str, small.glob("*.jpg")))


def _predict(tree: Path, paths: list[str]) -> tuple[float, dict[str, float]]:
    """Wall seconds of one `hf-detector predict` process and its own timings."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PREDICT, "predict", *paths, "--format", "csv"],
                          capture_output=True, text=True, cwd=tempfile.gettempdir(), env=_env(tree), check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"predict failed in {tree}: {done.stderr[-800:]}")
    return wall, _fields(done.stderr)


def _import_torch() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True, env=_env(ROOT))
    return time.perf_counter() - start


def _in_process(tree: Path, files: list[str], reps: int, draft: bool = True) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _IN_PROCESS, str(reps), *files], capture_output=True, text=True,
                          cwd=tempfile.gettempdir(), env=_env(tree, draft), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"in-process run failed in {tree}: {done.stderr[-800:]}")
    return json.loads(done.stdout.rsplit("BENCH ", 1)[1])


def _noise_floor(files: list[str]) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _NOISE_FLOOR, *files], capture_output=True, text=True,
                          cwd=tempfile.gettempdir(), env=_env(ROOT, draft=False), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"noise-floor run failed: {done.stderr[-800:]}")
    return json.loads(done.stdout.rsplit("BENCH ", 1)[1])


def startup(files: list[str], reps: int = 5, quick: bool = False) -> dict[str, Any]:
    """Every number of the section, each pair measured in the same run (alternated where timed)."""
    baseline = baseline_tree()
    trees = {"now": ROOT, "baseline": baseline}
    one = files[0]
    out: dict[str, Any] = {"baseline": BASELINE}
    for tree in trees.values():  # untimed: compile bytecode, build the baseline's ONNX export cache
        _predict(tree, [one])
    cold: dict[str, list[float]] = {"import torch": [], "now": [], "baseline": []}
    for rep in range(reps):
        order = ["import torch", "now", "baseline"]
        for name in order[rep % 3:] + order[:rep % 3]:
            cold[name].append(_import_torch() if name == "import torch" else _predict(trees[name], [one])[0])
    out["cold_s"] = {name: statistics.median(values) for name, values in cold.items()}
    out["cold_runs"] = cold

    folder = Path(tempfile.mkdtemp(prefix="hf-bench-photos-"))
    try:
        count = 8 if quick else PHOTOS
        big, small = make_photos(files, folder, count)
        out["photos"] = {"count": len(big), "mb_12mp": sum(Path(p).stat().st_size for p in big) / len(big) / 2**20}
        folders: dict[str, dict[str, list[float]]] = {}
        # Five alternated rounds: the share sits near 0.5x and one round's spreads by a few hundredths.
        for rep in range(2 if quick else 5):
            for name in (("now", "baseline") if rep % 2 == 0 else ("baseline", "now")):
                for kind, paths in (("12mp", big), ("512px", small)):
                    _, fields = _predict(trees[name], paths)
                    folders.setdefault(f"{name} {kind}", []).append(len(paths) / fields["run_s"])
        out["folder_ips"] = {key: statistics.median(values) for key, values in folders.items()}
        out["folder_runs"] = folders

        scored = {name: _in_process(tree, big, reps=1) for name, tree in trees.items()}
        no_draft = _in_process(ROOT, big, reps=1, draft=False)
        now, before, full = (np.array(r["scores"], dtype=float) for r in (scored["now"], scored["baseline"], no_draft))
        out["scores_12mp"] = {
            "max_abs_vs_baseline": float(np.max(np.abs(now - before))),
            "mean_abs_vs_baseline": float(np.mean(np.abs(now - before))),
            "max_abs_draft_vs_full_decode": float(np.max(np.abs(now - full))),
            "max_abs_full_decode_vs_baseline": float(np.max(np.abs(full - before))),
            "label_changes_vs_baseline": int(np.sum((now >= 0.5) != (before >= 0.5))),
            "noise_floor": _noise_floor(big),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    images = files[: 32 if quick else len(files)]
    rates: dict[str, list[float]] = {"now": [], "baseline": []}
    backends: dict[str, str] = {}
    # Four alternated processes each, median of their medians: on 2 shared cores one process's rate spreads by
    # +-10 % (189-236 images/s for the same tree), more than the difference being measured.
    for rep in range(1 if quick else 4):
        for name in (("now", "baseline") if rep % 2 == 0 else ("baseline", "now")):
            result = _in_process(trees[name], images, reps=3)
            rates[name].append(result["ips"])
            backends[name] = result["backend"]
    out["in_process"] = {"images": len(images), "ips": {k: statistics.median(v) for k, v in rates.items()},
                         "backend": backends}
    return out


def _round_spread(r: dict[str, Any]) -> str:
    """The 12-MP share of each round (12-MP and 512-px folders measured back to back): how far one run moves."""
    runs = r.get("folder_runs")
    if not runs:
        return ""
    shares = [big / small for big, small in zip(runs["now 12mp"], runs["now 512px"], strict=True)]
    return f" (per round {min(shares):.2f}-{max(shares):.2f}x over {len(shares)} rounds)"


def startup_lines(r: dict[str, Any] | str | None) -> list[str]:
    """The section of docs/performance.md."""
    if not isinstance(r, dict):
        return [] if r is None else ["", "## Light runtime and large photos", "", str(r)]
    cold, ips, scores = r["cold_s"], r["folder_ips"], r["scores_12mp"]
    torch_s = cold["import torch"]
    large_now, large_before = ips["now 12mp"] / ips["now 512px"], ips["baseline 12mp"] / ips["baseline 512px"]
    inproc = r["in_process"]
    verdict = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    lines = [
        "", "## Light runtime and large photos", "",
        f"Measured by `bench/startup.py`, side by side in one run with the code before the restructuring "
        f"(revision `{r['baseline']}`, unpacked with `git archive`, scoring the same bundled weights; each side in its own processes). The default "
        "path now runs from the checkpoint's verified ONNX export (`checkpoints/default/onnx/`) with numpy, "
        "Pillow, OpenCV and onnxruntime: no torch, no transformers.", "",
        "| | now | before | `python -c \"import torch\"` |", "|---|---|---|---|",
        f"| cold `hf-detector predict one.jpg` (fresh process, bytecode cached; median of "
        f"{len(r['cold_runs']['now'])}) | {cold['now']:.2f} s ({cold['now'] / torch_s:.2f}x) | "
        f"{cold['baseline']:.2f} s ({cold['baseline'] / torch_s:.2f}x) | {torch_s:.2f} s |",
        f"| `predict` over {r['photos']['count']} 12-MP JPEGs (4000 x 3000, {r['photos']['mb_12mp']:.1f} MB each) | "
        f"{ips['now 12mp']:.1f} images/s | {ips['baseline 12mp']:.1f} images/s | |",
        f"| `predict` over the same {r['photos']['count']} at 512 px | {ips['now 512px']:.1f} images/s | "
        f"{ips['baseline 512px']:.1f} images/s | |",
        f"| 12-MP images/s as a share of 512-px | **{large_now:.2f}x** | {large_before:.2f}x | |",
        f"| in-process `Detector.iter_files`, {inproc['images']} benchmark images ({inproc['backend']['now']}) | "
        f"{inproc['ips']['now']:.1f} images/s | {inproc['ips']['baseline']:.1f} images/s | |",
        "",
        f"- cold predict ≤ 0.5x `import torch`: **{cold['now'] / torch_s:.2f}x**: {verdict(cold['now'] <= 0.5 * torch_s)}",
        f"- 12-MP folder ≥ 0.5x the 512-px folder's images/s: **{large_now:.2f}x**: {verdict(large_now >= 0.5)}"
        f"{_round_spread(r)}",
        f"- in-process images/s not lower than before: {inproc['ips']['now']:.1f} vs {inproc['ips']['baseline']:.1f}: "
        f"{verdict(inproc['ips']['now'] >= 0.95 * inproc['ips']['baseline'])} (5 % measurement margin on shared cores)",
        f"- scores on the 12-MP photos, reduced-size JPEG decoding (Pillow's `draft`, then the same Lanczos + JPEG "
        f"q95 reduction) vs the full decoding before: max |Δp(fake)| **{scores['max_abs_vs_baseline']:.4f}** "
        f"(mean {scores['mean_abs_vs_baseline']:.4f}, {scores['label_changes_vs_baseline']} labels changed at 0.5); "
        f"this tree with the draft switched off (`HF_DETECTOR_JPEG_DRAFT=0`) vs before: "
        f"{scores['max_abs_full_decode_vs_baseline']:.4f}; within 0.01: "
        f"{verdict(scores['max_abs_vs_baseline'] <= 0.01)}",
    ]
    if "noise_floor" in scores:
        floor = scores["noise_floor"]
        lines.append(
            f"- the model's own noise floor on the same photos: an invisible +-1 level of noise on the full decode's "
            f"reduced picture moves scores by up to **{floor['max']:.4f}** (mean {floor['mean']:.4f}, 3 draws), "
            f"so a decoding that differs from the full one by even one level cannot be expected to stay within 0.01; the draft's shift is "
            f"{scores['max_abs_vs_baseline'] / max(floor['max'], 1e-9):.2f}x that floor")
        if "exact_max" in floor:
            lines.append(
                f"- the resize itself is inside that floor: the same reduction computed exactly from the full decode "
                f"(Lanczos over every pixel, without the box pre-reduction of `reducing_gap=3` that today's code "
                f"uses) moves scores by up to **{floor['exact_max']:.4f}** (mean {floor['exact_mean']:.4f}); the "
                f"draft's {scores['max_abs_vs_baseline']:.4f} (mean {scores['mean_abs_vs_baseline']:.4f}) is no "
                f"larger than that of a more accurate resize, and 0.01 at worst is below what either can promise")
    lines += [
        "- The 12-MP photos are the benchmark faces enlarged to 4000 x 3000 with sensor-like noise added (so the "
        "files are photo-sized); their content is smoother than a real 12-MP photo's.",
    ]
    return lines


START, END = "<!-- startup section: bench/startup.py -->", "<!-- end of startup section -->"


def write_section(doc: Path, lines: list[str]) -> None:
    """Replace (or append) this section between its markers in docs/performance.md."""
    common.write_section(doc, START, END, lines)
