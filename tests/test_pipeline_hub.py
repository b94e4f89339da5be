"""`pipeline()` on a repository pushed with `hf-detector push` to the test Hub server, both ways.

With `import hf_detector` the registered classes load it and its scores are the Detector's on the PyTorch path.
Without the import, the repo's opt-in `auto_map` (hf_detector/hub/remote_code.py) makes transformers stop with
its short remote-code error instead of the 2,000-character list of model types, and `trust_remote_code=True`
runs hf_detector_shim.py: it works where hf-detector is installed and says in one line what to install where
it is not. The client side runs in fresh interpreters (transformers reads HF_ENDPOINT at import time, and the
"without the import" cases need a process that never imported hf_detector).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest_hub import ROOT, client_env, last_json, run_client, run_hub_cli, snapshot  # noqa: E402
from hub_server import HubServer  # noqa: E402

from hf_detector.hub.remote_code import MISSING_PACKAGE, SHIM_FILE  # noqa: E402

pytestmark = pytest.mark.slow

EXAMPLES = [str(ROOT / "examples" / name) for name in ("real_ffhq_01002.jpg", "fake_stylegan2_omi_104.jpg")]
MODEL_REPO = "tester/face-detector"
CNN_REPO = "tester/face-detector-cnn"

# A process that has never imported hf_detector (run without conftest_hub.LIGHT_IMPORT).
WITHOUT_IMPORT = r"""
import contextlib, importlib.abc, io, json, os, sys
from transformers import pipeline

sys.stdin = open(os.devnull)  # transformers' [y/N] prompt reads EOF at once, whatever stdin pytest was given

repo, cnn_repo, images = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
out = {}

def attempt(name, **kwargs):
    said = io.StringIO()  # transformers' [y/N] prompt: no answer on stdin, so it raises after printing it
    try:
        with contextlib.redirect_stdout(said):
            result = pipeline("image-classification", **kwargs)
        out[name] = {"ok": True, "processor": type(result.image_processor).__module__,
                     "model": type(result.model).__module__,
                     "scores": [{d["label"]: d["score"] for d in result(image, top_k=2)} for image in images]}
    except Exception as error:
        out[name] = {"ok": False, "type": type(error).__name__, "message": str(error)}
    out[name]["printed"] = said.getvalue()

attempt("default", model=repo)
attempt("default_cnn", model=cnn_repo)
out["imported_after_default"] = "hf_detector" in sys.modules


class NotInstalled(importlib.abc.MetaPathFinder):  # as if hf-detector were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "hf_detector" or name.startswith("hf_detector."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
attempt("trusted_not_installed", model=repo, trust_remote_code=True)
sys.meta_path.pop(0)
attempt("trusted", model=repo, trust_remote_code=True)
out["imported_by_shim"] = "hf_detector" in sys.modules
attempt("trusted_cnn", model=cnn_repo, trust_remote_code=True)
# Once the shim has imported hf_detector, transformers prefers the registered classes; load the CNN repo's shim
# classes by name, as trust_remote_code would in a fresh process, to score them too.
from transformers.dynamic_module_utils import get_class_from_dynamic_module
import hf_detector
shim_cnn = get_class_from_dynamic_module("hf_detector_shim.CustomCNNForImageClassification", cnn_repo)
model = shim_cnn.from_pretrained(cnn_repo, use_safetensors=True)
pipe = pipeline("image-classification", model=model, image_processor=cnn_repo)
out["shim_cnn"] = {"module": shim_cnn.__module__, "config": type(model.config).__module__,
                   "subclass": issubclass(shim_cnn, hf_detector.CustomCNNForImageClassification),
                   "scores": [{d["label"]: d["score"] for d in pipe(image, top_k=2)} for image in images]}
print(json.dumps(out))
"""

WITH_IMPORT = r"""
import contextlib, io, json, os, sys
import hf_detector

sys.stdin = open(os.devnull)  # were transformers to ask "[y/N]", it would not wait for an answer
from transformers import pipeline

repo, cnn_repo, images = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
out = {}
for name, model in (("main", repo), ("cnn", cnn_repo)):
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        pipe = pipeline("image-classification", model=model, model_kwargs={"use_safetensors": True})
    detector = hf_detector.Detector.from_pretrained(model, backend="pytorch")
    out[name] = {"printed": said.getvalue(), "processor": type(pipe.image_processor).__module__,
                 "model": type(pipe.model).__module__, "backend": detector.backend,
                 "pipeline": [{d["label"]: d["score"] for d in pipe(image, top_k=2)} for image in images],
                 "detector": [detector.predict(image).probabilities for image in images]}
print(json.dumps(out))
"""


def _tiny_custom_cnn(out: Path) -> Path:
    """The prototype's CNN at 32 px, untrained, with the project's processor (no face stage: fast)."""
    import torch

    from hf_detector.models import ModelSpec, create_model
    from hf_detector.preprocessing.processor import FaceImageProcessor

    torch.manual_seed(0)
    model = create_model(ModelSpec(name="custom_cnn", image_size=32, pretrained=False))
    model.save_pretrained(out)
    FaceImageProcessor(do_face_crop=False, crop_size=48, size=32).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def pushed(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("pipeline-hub")
    from hf_detector import DEFAULT_MODEL

    model = work / "default"  # a copy: the bundled model may be retrained while this runs
    shutil.copytree(DEFAULT_MODEL, model, ignore=shutil.ignore_patterns("checkpoint-*", "__pycache__"))
    cnn = _tiny_custom_cnn(work / "cnn")
    env = client_env(hub.url, work / "home")
    before = {str(path): snapshot(path) for path in (model, cnn)}
    for path, repo in ((model, MODEL_REPO), (cnn, CNN_REPO)):
        proc = run_hub_cli(env, "push", "--model", str(path), "--repo-id", repo, timeout=300)
        assert proc.returncode == 0, proc.stderr
    assert {str(path): snapshot(path) for path in (model, cnn)} == before  # configs rendered in memory only
    return {"work": work, "model": model, "cnn": cnn}


@pytest.fixture(scope="module")
def without_import(pushed: dict, hub: HubServer) -> dict:
    env = client_env(hub.url, pushed["work"] / "home-without")
    proc = run_client(WITHOUT_IMPORT, env, MODEL_REPO, CNN_REPO, json.dumps(EXAMPLES), light=False, timeout=900)
    return last_json(proc)


@pytest.fixture(scope="module")
def with_import(pushed: dict, hub: HubServer) -> dict:
    env = client_env(hub.url, pushed["work"] / "home-with")
    proc = run_client(WITH_IMPORT, env, MODEL_REPO, CNN_REPO, json.dumps(EXAMPLES), light=False, timeout=900)
    return last_json(proc)


def _same_scores(pipeline_scores: list[dict], reference: list[dict]) -> None:
    assert len(pipeline_scores) == len(reference) == len(EXAMPLES)
    for got, want in zip(pipeline_scores, reference, strict=True):
        assert set(got) == set(want) == {"real", "fake"}
        for label in want:
            assert got[label] == pytest.approx(want[label], abs=1e-5)


def test_pushed_repo_carries_the_opt_in_auto_map(pushed: dict, hub: HubServer) -> None:
    files = hub.files(MODEL_REPO)
    processor = json.loads(files["preprocessor_config.json"])
    reference = f"{SHIM_FILE[:-3]}.FaceImageProcessor"
    assert processor["auto_map"] == {"AutoImageProcessor": {"pil": reference, "torchvision": reference}}
    local = json.loads((pushed["model"] / "preprocessor_config.json").read_text())
    assert {k: v for k, v in processor.items() if k != "auto_map"} == local
    assert files["config.json"] == (pushed["model"] / "config.json").read_bytes()  # MobileNetV2: built in
    shim = files[SHIM_FILE].decode()
    assert "from hf_detector.preprocessing.processor import FaceImageProcessor" in shim
    cnn = hub.files(CNN_REPO)
    assert set(json.loads(cnn["config.json"])["auto_map"]) == {"AutoConfig", "AutoModelForImageClassification"}
    assert "import hf_detector" in files["README.md"].decode() and SHIM_FILE in files["README.md"].decode()


def test_with_import_pipeline_scores_are_the_detectors(with_import: dict) -> None:
    for name in ("main", "cnn"):
        run = with_import[name]
        assert "custom code" not in run["printed"]  # no [y/N] prompt: the registered classes win
        assert run["processor"] == "hf_detector.preprocessing.processor" and run["backend"] == "pytorch"
        _same_scores(run["pipeline"], run["detector"])
    assert with_import["cnn"]["model"] == "hf_detector.models.custom_cnn"
    fake, real = with_import["main"]["pipeline"][1], with_import["main"]["pipeline"][0]
    assert fake["fake"] > 0.5 > real["fake"]  # the bundled model tells the two examples apart


def test_without_import_the_error_is_short_and_says_what_to_do(without_import: dict) -> None:
    for name, repo in (("default", MODEL_REPO), ("default_cnn", CNN_REPO)):
        run = without_import[name]
        assert not run["ok"] and run["type"] == "ValueError"
        assert len(run["message"]) < 500 and "mobilenet_v2" not in run["message"]  # not the model-type list
        assert f"The repository {repo} contains custom code" in run["message"]
        assert "trust_remote_code=True" in run["message"]
    assert not without_import["imported_after_default"]  # nothing ran: trust_remote_code is off by default
    missing = without_import["trusted_not_installed"]
    assert not missing["ok"] and missing["type"] == "ImportError"
    assert missing["message"] == f"{MISSING_PACKAGE} (No module named 'hf_detector')"
    assert "\n" not in missing["message"]


def test_trust_remote_code_runs_the_shim_over_the_installed_package(without_import: dict,
                                                                    with_import: dict) -> None:
    trusted = without_import["trusted"]
    assert trusted["ok"], trusted
    assert trusted["processor"].startswith("transformers_modules.")  # the repo's hf_detector_shim.py ...
    assert without_import["imported_by_shim"]  # ... which imported the installed package
    _same_scores(trusted["scores"], with_import["main"]["detector"])
    cnn = without_import["trusted_cnn"]
    assert cnn["ok"], cnn
    _same_scores(cnn["scores"], with_import["cnn"]["detector"])
    shim_cnn = without_import["shim_cnn"]
    assert shim_cnn["module"].startswith("transformers_modules.") and shim_cnn["subclass"]
    assert shim_cnn["config"] == shim_cnn["module"]  # its config class is the shim's too
    _same_scores(shim_cnn["scores"], with_import["cnn"]["detector"])
