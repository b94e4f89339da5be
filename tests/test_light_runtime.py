"""The light runtime: with the checkpoint's ONNX export, scoring imports neither torch nor transformers.

`hf-detector export` (and the end of training) writes the classifier's and the face detector's fp32 ONNX
files into the checkpoint, with the sha256 of the weights they came from; `Detector`, `predict` and
`evaluate` then run numpy + Pillow + onnxruntime only. Each check runs in a fresh subprocess, since this
pytest process has imported torch long ago.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=600, cwd=str(ROOT))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundled checkpoint's configs and weights, exported by the `hf-detector export` command."""
    from hf_detector.cli import main as cli_main
    from hf_detector.data.checkpoints import DEFAULT_MODEL

    folder = tmp_path_factory.mktemp("exported") / "model"
    folder.mkdir()
    for name in ("config.json", "preprocessor_config.json", "model.safetensors"):
        shutil.copy(DEFAULT_MODEL / name, folder / name)
    assert cli_main(["export", "--model", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def face_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The app's example faces (BlazeFace finds them) + a faceless image (MTCNN's fallback search runs too)."""
    from conftest import synthetic_image

    faceless = tmp_path_factory.mktemp("faceless") / "noise.png"
    synthetic_image("real", 3, size=300).save(faceless)
    return sorted((ROOT / "examples").glob("*.jpg"))[:3] + [faceless]


LIGHT_SCORE = """
    import json, sys
    import hf_detector
    from hf_detector import Detector
    assert "torch" not in sys.modules and "transformers" not in sys.modules, "import hf_detector is heavy"
    detector = Detector.from_pretrained(sys.argv[1])
    results = [r.prediction.p_fake for r in detector.predict_files(sys.argv[2:])]
    print(json.dumps({"backend": detector.backend, "scores": results,
                      "heavy": sorted(m for m in ("torch", "transformers", "torchvision") if m in sys.modules)}))
"""


def test_export_is_verified_and_tied_to_the_weights(exported: Path) -> None:
    from hf_detector.runtime.files import validated_export

    report = json.loads((exported / "onnx" / "export.json").read_text())
    assert {"classifier", "blazeface", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet"} <= set(report["files"])
    assert max(report["max_abs_difference"].values()) < 1e-2
    assert validated_export(exported) is not None
    edited = exported.parent / "edited"
    shutil.copytree(exported, edited)
    with open(edited / "model.safetensors", "ab") as handle:  # other weights: the export no longer applies
        handle.write(b"\0")
    assert validated_export(edited) is None


def test_default_path_scores_without_torch_and_like_pytorch(exported: Path, face_files: list[Path]) -> None:
    files = [str(path) for path in face_files]
    done = _run(LIGHT_SCORE, str(exported), *files)
    assert done.returncode == 0, done.stderr
    light = json.loads(done.stdout.strip().splitlines()[-1])
    assert light["backend"] == "onnx" and light["heavy"] == [], light

    from hf_detector.inference.detector import Detector

    reference = Detector.from_pretrained(str(exported), backend="pytorch")
    scores = [reference.predict(path).p_fake for path in files]
    np.testing.assert_allclose(light["scores"], scores, atol=1e-4)


def test_cli_predict_is_light(exported: Path, face_files: list[Path]) -> None:
    code = """
        import sys
        from hf_detector.cli import main
        code = main(["predict", "--model", sys.argv[1], "--format", "json", *sys.argv[2:]])
        assert "torch" not in sys.modules and "transformers" not in sys.modules, sorted(sys.modules)
        sys.exit(code)
    """
    done = _run(code, str(exported), *map(str, face_files[:2]))
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 2


def test_pipeline_after_a_light_import() -> None:
    code = """
        import sys
        import hf_detector
        assert "transformers" not in sys.modules
        from transformers import pipeline
        classifier = pipeline("image-classification", model=str(hf_detector.DEFAULT_MODEL))
        print(type(classifier.image_processor).__name__)
    """
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "FaceImageProcessor"


def test_cli_evaluate_is_light(exported: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for label in ("real", "fake"):
        (data / label).mkdir(parents=True)
        for path in sorted((ROOT / "examples").glob(f"{label}_*.jpg")):
            shutil.copy(path, data / label / path.name)
    code = """
        import sys
        from hf_detector.cli import main
        code = main(["evaluate", "--model", sys.argv[1], "--data", sys.argv[2], "--output", sys.argv[3]])
        heavy = [m for m in ("torch", "transformers") if m in sys.modules]
        assert not heavy, heavy
        sys.exit(code)
    """
    done = _run(code, str(exported), str(data), str(tmp_path / "out" / "metrics.json"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["n"] == 4
