"""Loading and secrets (issue 7): safetensors only, no remote code, no pickles, checked ImageNet weights,
tokens never written out.

The Hub side (token never printed on 401 / server down, pickles never uploaded) is tested against the
test Hub server in tests/test_hub.py: test_push_with_bad_token_is_401, test_push_when_server_is_down,
test_push_rejects_a_directory_without_safetensors.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hf_TESTsecretTOKENnotRealAtAll0123456789"


def project_sources() -> list[Path]:
    files = sorted((ROOT / "hf_detector").rglob("*.py")) + [ROOT / "app.py", ROOT / "train" / "train.py"]
    return [f for f in files if f.exists()]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def unsafe_calls(source: str) -> list[str]:
    """Calls that could run code from a file: pickle loads, torch.load without weights_only=True,
    trust_remote_code set to anything but a literal False, numpy loads with allow_pickle=True."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        literal = {k: v.value for k, v in keywords.items() if isinstance(v, ast.Constant)}
        where = f"line {node.lineno}: {name}"
        module, _, function = name.rpartition(".")
        if module in ("pickle", "cPickle", "dill", "joblib") and function in ("load", "loads", "Unpickler"):
            found.append(where)
        if name == "torch.load" and literal.get("weights_only") is not True:
            found.append(f"{where} without weights_only=True")
        if "trust_remote_code" in keywords and literal.get("trust_remote_code") is not False:
            found.append(f"{where} with trust_remote_code")
        if name in ("np.load", "numpy.load") and literal.get("allow_pickle") is True:
            found.append(f"{where} with allow_pickle=True")
    return found


def test_the_checker_catches_what_it_should() -> None:
    bad = ("import pickle, torch\npickle.load(f)\ntorch.load(p)\ntorch.load(p, weights_only=False)\n"
           "AutoModel.from_pretrained(x, trust_remote_code=True)\nnp.load(p, allow_pickle=True)\n")
    assert len(unsafe_calls(bad)) == 5
    good = "torch.load(p, map_location='cpu', weights_only=True)\nAutoModel.from_pretrained(x)\n"
    assert unsafe_calls(good) == []


@pytest.mark.parametrize("path", project_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_code_runs_from_loaded_files(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert unsafe_calls(source) == [], path
    assert "trust_remote_code=True" not in source.replace(" ", "")
    assert "import pickle" not in source and "from pickle" not in source


def test_imagenet_weights_with_a_wrong_sha256_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hf_detector.models import mobilenet_v2

    fake = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save({"features.0.0.weight": torch.zeros(1)}, fake)  # a loadable file, just not the right one

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load reached before the checksum was checked")

    monkeypatch.setattr(mobilenet_v2.torch, "load", never)
    with pytest.raises(mobilenet_v2.WeightsError, match="sha256 .* does not match"):
        mobilenet_v2.load_torchvision_state_dict(fake)


def _pickle_that_runs_code(path: Path, marker: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {marker}",))

    torch.save({"classifier.weight": Payload()}, path)


def test_checkpoint_with_only_pytorch_model_bin_is_refused(tmp_path: Path) -> None:
    from transformers import MobileNetV2Config

    from hf_detector.inference.detector import Detector, ModelLoadError
    from hf_detector.preprocessing.processor import FaceImageProcessor

    checkpoint = tmp_path / "pickled"
    MobileNetV2Config(depth_multiplier=0.35, image_size=32, num_labels=2).save_pretrained(checkpoint)
    FaceImageProcessor(size=32).save_pretrained(checkpoint)
    marker = tmp_path / "code-ran"
    _pickle_that_runs_code(checkpoint / "pytorch_model.bin", marker)
    with pytest.raises(ModelLoadError) as caught:
        Detector.from_pretrained(checkpoint, backend="pytorch")
    message = str(caught.value)
    assert message.startswith(f"cannot load model from {checkpoint}") and "\n" not in message
    assert "safetensors" in message
    assert not marker.exists()


def test_tokens_are_never_written_into_training_args_or_cards(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from transformers import TrainingArguments

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from conftest_hub import write_metrics

    from hf_detector.hub.card import build_card, write_card

    monkeypatch.setenv("HF_TOKEN", SECRET)
    out = tmp_path / "run"
    out.mkdir()
    args = TrainingArguments(output_dir=str(out), hub_token=SECRET, push_to_hub=True, hub_model_id="tester/x",
                             report_to="none", use_cpu=True)
    # what training.main writes beside the checkpoint (it deletes training_args.bin, the pickle)
    (out / "training_args.json").write_text(args.to_json_string())
    (out / "config.json").write_text(json.dumps({"model_type": "mobilenet_v2", "id2label": {"0": "real",
                                                                                           "1": "fake"}}))
    write_metrics(out)
    card_text = str(build_card(out, repo_id="tester/x"))
    write_card(out)
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_bytes().decode("utf-8", "replace"), path
    assert SECRET not in card_text and "hub_token" not in card_text
