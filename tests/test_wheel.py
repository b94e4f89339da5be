"""The package as users install it: the wheel built from this checkout, installed with its core dependencies
only into a fresh virtual environment, run from an empty folder offline.

The wheel must carry the bundled model (weights, configs, card, ONNX export) and nothing of a training run's
intermediate checkpoints; the light install (no torch) must score a JPEG, a HEIC and an AVIF face with
`hf-detector predict`, run `hf-detector evaluate`, `Detector.from_pretrained()` and the app's handler, give
the scores of this checkout's Detector, and name the extra a torch-only command needs. pip resolves the
dependencies from the configured indexes through its cache (a rerun installs from the cache).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FACE = ROOT / "examples" / "real_ffhq_01002.jpg"
pytestmark = pytest.mark.slow

# pip / build output meaning "the package index cannot be reached", not "the package is broken"
OFFLINE_MARKERS = ("No matching distribution found", "Could not find a version that satisfies",
                   "NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution",
                   "Network is unreachable", "ProxyError", "Connection refused", "ConnectTimeout")
MODEL_FILES = ("config.json", "preprocessor_config.json", "model.safetensors", "README.md", "metrics.json",
               "onnx/model.onnx", "onnx/blazeface.onnx", "onnx/mtcnn-pnet.onnx", "onnx/mtcnn-rnet.onnx",
               "onnx/mtcnn-onet.onnx", "onnx/export.json")


def _run(command: list[str], what: str, cwd: Path, env: dict[str, str] | None = None,
         timeout: int = 900) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        output = done.stdout + done.stderr
        reason = next((line.strip() for line in output.splitlines() if any(m in line for m in OFFLINE_MARKERS)),
                      None)
        if reason:
            pytest.skip(f"{what}: the package index is not reachable ({reason[:200]})")
        pytest.fail(f"{what} failed ({done.returncode}):\n{output[-4000:]}")
    return done


def _clean_env(home: Path) -> dict[str, str]:
    """The environment of a user's shell: offline Hub, nothing of this checkout or this venv on any path."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "VIRTUAL_ENV", "HF_", "HUGGINGFACE_", "CONDA"))}
    env.update({"HF_HUB_OFFLINE": "1", "PYTHONNOUSERSITE": "1", "HF_HOME": str(home / "hf"),
                "MPLCONFIGDIR": str(home / "mpl"), "GRADIO_ANALYTICS_ENABLED": "False",
                "PATH": os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                        if not p.startswith(sys.prefix))})
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build` of the checkout: the sdist, then the wheel built from it (no stale build/ tree)."""
    if importlib.util.find_spec("build") is None:
        pytest.skip("the `build` module is not installed (pip install build)")
    out = tmp_path_factory.mktemp("dist")
    done = _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], "python -m build", cwd=out)
    deprecated = [line for line in (done.stdout + done.stderr).splitlines() if "deprecat" in line.lower()]
    assert not deprecated, deprecated  # e.g. setuptools' "`project.license` as a TOML table is deprecated"
    wheels = sorted(out.glob("hf_detector-*.whl"))
    assert len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return wheels[0]


def test_the_wheel_carries_the_model(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    prefix = "hf_detector/checkpoints/default/"
    missing = [name for name in MODEL_FILES if prefix + name not in names]
    assert not missing, missing
    assert not [name for name in names if "/checkpoint-" in name], "an intermediate checkpoint was packaged"
    assert "hf_detector/templates/model_card.md" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    metadata = next(zipfile.ZipFile(wheel).read(n) for n in names if n.endswith(".dist-info/METADATA")).decode()
    assert "License-Expression: Apache-2.0" in metadata
    core = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not [line for line in core if any(heavy in line for heavy in ("torch", "transformers", "datasets"))], core


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its core dependencies only."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", str(venv)], "python -m venv", cwd=venv.parent)
    python = venv / "bin" / "python"
    env = _clean_env(venv.parent)
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
          str(wheel)], "pip install of the wheel", cwd=venv.parent, env=env)
    return venv


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A face as JPEG, HEIC and AVIF; a tiny real/fake folder (the app's examples, one of them as HEIC)."""
    from PIL import Image

    import hf_detector.data.images  # noqa: F401 (registers the HEIF writer too)

    folder = tmp_path_factory.mktemp("inputs")
    face = Image.open(FACE).convert("RGB")
    files = {"jpeg": folder / "face.jpg", "heic": folder / "face.heic", "avif": folder / "face.avif"}
    shutil.copy(FACE, files["jpeg"])
    face.save(files["heic"], format="HEIF", quality=90)
    face.save(files["avif"], format="AVIF", quality=90)
    data = folder / "data"
    for label in ("real", "fake"):
        (data / label).mkdir(parents=True)
        for index, example in enumerate(sorted((ROOT / "examples").glob(f"{label}_*.jpg"))):
            if index == 0:
                Image.open(example).convert("RGB").save(data / label / f"{example.stem}.heic", format="HEIF")
            else:
                shutil.copy(example, data / label / example.name)
    files["data"] = data
    return files


APP_CHECK = """
    import importlib.util, json, sys
    import hf_detector
    from hf_detector import Detector
    from hf_detector.app import ui
    detector = Detector.from_pretrained()
    label, verdict, boxed, crop, heatmap, hints = ui.make_classify(detector)(sys.argv[1])
    print(json.dumps({
        "package": hf_detector.__file__, "model": str(hf_detector.DEFAULT_MODEL), "backend": detector.backend,
        "scores": [r.prediction.p_fake for r in detector.predict_files(sys.argv[1:])],
        "app_decision": label["decision"], "app_p_fake": label["probabilities"]["fake"],
        "gradcam_panel": heatmap.label, "torch": importlib.util.find_spec("torch") is not None,
        "transformers": importlib.util.find_spec("transformers") is not None,
    }))
"""


def test_light_install_scores_like_the_checkout(installed: Path, inputs: dict[str, Path],
                                                tmp_path: Path) -> None:
    bin_dir = installed / "bin"
    env = _clean_env(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    faces = [str(inputs[kind]) for kind in ("jpeg", "heic", "avif")]

    predicted = json.loads(_run([str(bin_dir / "hf-detector"), "predict", "--format", "json", *faces],
                                "hf-detector predict", cwd=empty, env=env).stdout)
    assert [row["error"] for row in predicted] == [None, None, None], predicted
    assert all(row["face_found"] for row in predicted)

    report = json.loads(_run([str(bin_dir / "python"), "-c", textwrap.dedent(APP_CHECK), *faces],
                             "Detector.from_pretrained() and the app", cwd=empty, env=env).stdout
                        .strip().splitlines()[-1])
    site = str(installed / "lib")
    assert report["package"].startswith(site) and report["model"].startswith(site), report
    assert report["torch"] is False and report["transformers"] is False, "the light install pulled in torch"
    assert report["backend"] in ("onnx", "int8")
    assert "pip install 'hf-detector[torch]'" in report["gradcam_panel"]

    from hf_detector.inference.detector import Detector

    checkout = Detector.from_pretrained()
    expected = [checkout.predict(path).p_fake for path in faces]
    np.testing.assert_allclose(report["scores"], expected, atol=1e-4)
    np.testing.assert_allclose([row["p_fake"] for row in predicted], expected, atol=1e-4)
    assert abs(report["app_p_fake"] - expected[0]) < 1e-4

    output = tmp_path / "out" / "metrics.json"
    _run([str(bin_dir / "hf-detector"), "evaluate", "--data", str(inputs["data"]), "--output", str(output)],
         "hf-detector evaluate", cwd=empty, env=env)
    record = json.loads(output.read_text())
    assert record["n_images"] == 4 and record["n_errors"] == 0, record.get("errors")

    train = subprocess.run([str(bin_dir / "hf-detector"), "train", "--help"], cwd=str(empty), env=env,
                           capture_output=True, text=True, timeout=300)
    assert train.returncode == 2
    assert train.stderr.strip() == "error: training needs PyTorch: pip install 'hf-detector[train]'"
    assert list(empty.iterdir()) == [], "the commands wrote into the working directory"
