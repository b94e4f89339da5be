"""Model card rendering: metadata, model-index from metrics.json, sections, validation on the test Hub."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest_hub import ROOT, write_metrics  # noqa: E402
from hub_server import HubServer  # noqa: E402

from hf_detector.hub import card  # noqa: E402

SECTIONS = ("## Intended use and misuse", "## Training data", "## Training procedure", "## Evaluation",
            "## Limitations", "## How to use")


@pytest.fixture
def validate_against(hub: HubServer, monkeypatch: pytest.MonkeyPatch):
    """`card.validate()` posts to `constants.ENDPOINT/api/validate-yaml`, read at call time: point it here
    (and lift the offline switch the shared conftest sets, for this one local request)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return hub


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({
        "architectures": ["MobileNetV2ForImageClassification"], "model_type": "mobilenet_v2",
        "id2label": {"0": "real", "1": "fake"}, "detector_threshold": 0.42, "detector_temperature": 1.3}))
    (d / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "FaceImageProcessor", "size": {"height": 224, "width": 224},
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}))
    write_metrics(d)
    return d


def test_packaged_template_is_identical_to_the_repo_root_template() -> None:
    root = (ROOT / "model_card.md").read_text(encoding="utf-8")
    assert (ROOT / "hf_detector" / "templates" / "model_card.md").read_text(encoding="utf-8") == root
    assert card.packaged_template("model_card.md") == root
    assert card.template_path() == ROOT / "model_card.md"


def test_card_metadata(checkpoint: Path) -> None:
    data = card.build_card(checkpoint, repo_id="tester/tiny").data
    assert data.license == "cc-by-nc-sa-4.0"
    assert data.base_model == "google/mobilenet_v2_1.0_224"
    assert data.datasets == ["tester/faces-real-vs-fake"]
    assert data.pipeline_tag == "image-classification" and data.library_name == "transformers"
    assert {"image-classification", "deepfake-detection", "mobilenet_v2"} <= set(data.tags)
    assert data.model_name == "tiny-detector"


def test_every_metric_of_every_set_is_an_eval_result(checkpoint: Path) -> None:
    metrics = json.loads((checkpoint / "metrics.json").read_text())
    results = card.build_card(checkpoint).data.eval_results
    got = {(r.dataset_name, r.metric_type): r.metric_value for r in results}
    expected = {(name, key): value for name, record in metrics["evaluations"].items()
                for key, value in record.items() if key not in ("n", "per_source") and value is not None}
    assert got == expected  # roc_auc None (one class) is left out, counts are not metrics
    for r in results:
        assert r.task_type == "image-classification"
        assert r.dataset_type == "tester/faces-real-vs-fake"
        assert r.dataset_split == "test"
    # One model-index entry per evaluation set (the Hub groups by dataset config, not by name).
    model_index = card.build_card(checkpoint).data.to_dict()["model-index"]
    assert [res["dataset"]["name"] for res in model_index[0]["results"]] == list(metrics["evaluations"])


def test_card_text_sections_tables_and_plots(checkpoint: Path) -> None:
    text = str(card.build_card(checkpoint, repo_id="tester/tiny"))
    assert "More information needed" not in text
    for heading in SECTIONS:
        assert heading in text
    assert "| in-distribution test | 40 | 0.7500 |" in text
    assert "| held-out sdfd | 20 | 0.6000 |" in text
    assert "| in-distribution test | stylegan2 | 20 | 0.7000 | 0.7000 |" in text
    assert "![confusion_matrix.png](confusion_matrix.png)" in text
    assert "p(fake) ≥ **0.420**" in text and "T = 1.300" in text
    assert "import hf_detector" in text  # FaceImageProcessor needs the Auto registration
    assert 'model="tester/tiny"' in text and "hf-detector predict --model tester/tiny" in text
    assert "`learning_rate` | 0.0010" in text and "Recipe: `tiny-test`" in text
    assert "unseen generators" in text.lower() and "compression" in text.lower()
    assert "edited real photos" in text.lower()


def test_card_is_robust_to_missing_files(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    model_card = card.build_card(tmp_path)
    text = str(model_card)
    assert model_card.data.eval_results is None and "model-index" not in text
    assert "More information needed" not in text
    assert "reports no numbers" in text and "trained from scratch" in text
    assert model_card.data.license == card.DEFAULT_LICENSE


def test_local_paths_stay_out_of_hub_metadata(checkpoint: Path, tmp_path: Path) -> None:
    write_metrics(checkpoint, datasets=[str(tmp_path), "org/hub-dataset"], base_model=str(tmp_path))
    model_card = card.build_card(checkpoint)
    assert model_card.data.datasets == ["org/hub-dataset"]
    assert model_card.data.base_model is None
    assert f"`{tmp_path}`" in str(model_card)  # still named in the training data section


def test_write_card_round_trips(checkpoint: Path) -> None:
    path = card.write_card(checkpoint, repo_id="tester/tiny")
    assert path == checkpoint / "README.md"
    loaded = ModelCard.load(path)
    built = card.build_card(checkpoint, repo_id="tester/tiny")
    assert loaded.data.to_dict() == built.data.to_dict()
    assert [(r.dataset_name, r.metric_type, r.metric_value) for r in loaded.data.eval_results] == \
        [(r.dataset_name, r.metric_type, r.metric_value) for r in built.data.eval_results]


def test_card_validates_on_the_hub(checkpoint: Path, validate_against: HubServer) -> None:
    card.build_card(checkpoint, repo_id="tester/tiny").validate()
    card.build_card(checkpoint.parent / "nothing-here").validate()
    assert any(p == "/api/validate-yaml" and s == 200 for _, p, s in validate_against.requests)


def test_broken_metadata_fails_validation(hub: HubServer) -> None:
    # What the Hub does with a model-index the client could not parse: 400 with the reasons.
    content = "---\nmodel-index:\n- results:\n  - metrics: [{value: 1}]\n---\n# x\n"
    request = urllib.request.Request(f"{hub.url}/api/validate-yaml", method="POST",
                                     data=json.dumps({"content": content, "repoType": "model"}).encode(),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    assert excinfo.value.code == 400
    assert "name" in json.loads(excinfo.value.read())["errors"][0]["message"]
