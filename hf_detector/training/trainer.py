"""Training with the transformers Trainer, in the shape of `run_image_classification.py`.

Flow: parse arguments -> load + split data -> cache face crops -> augment lazily -> model from the
registry -> Trainer (class-weighted, label-smoothed cross-entropy) -> calibrate on validation
(temperature baked into the classifier, threshold stored in the config) -> evaluate -> save
checkpoint, metrics JSON, plots and model card -> push to the Hub when asked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from datasets import Dataset, DatasetDict
from datasets import Image as ImageFeature
from transformers import Trainer, set_seed

from ..data.datasets import SplitSpec, load_faces, split_faces
from ..data.labels import REAL_ID
from ..data.weighting import class_weights_for, source_balanced_weights
from ..hub.push import HubError, TrainerHubMixin
from ..models import ModelSpec, create_model
from ..models.weights import WeightsError
from ..preprocessing.augmentation import build_train_augmentation
from ..preprocessing.processor import FaceImageProcessor
from .arguments import (  # noqa: F401  (re-exported: the training interface of this module)
    DEFAULT_TRAINING_ARGS,
    DataArguments,
    ModelArguments,
    augmentation_config_from,
    build_processor,
    parse_args,
    parse_source_caps,
)
from .calibration import bake_temperature
from .memory import keep_freed_memory

logger = logging.getLogger(__name__)


CROP_CACHE_VERSION = "faces-v1"  # bump when faces.py changes what a crop looks like


def cache_face_crops(dataset: Dataset, processor: FaceImageProcessor, num_proc: int = 1) -> Dataset:
    """Run the face stage once and keep the crops (lossless PNG, on disk): epochs only augment + resize.

    The cache key (datasets' fingerprint) sees only the face-stage settings, so runs that differ in
    input size, Kalman or augmentation reuse the same crops.
    """
    processor = FaceImageProcessor(do_face_crop=processor.do_face_crop, face_align=processor.face_align,
                                   face_margin=processor.face_margin, face_context=processor.face_context,
                                   crop_size=processor.crop_size,
                                   face_detect_size=processor.face_detect_size,
                                   face_detector=processor.face_detector,
                                   max_short_side=processor.max_short_side,
                                   reduced_jpeg_quality=processor.reduced_jpeg_quality)

    def crop_batch(batch: dict[str, list]) -> dict[str, list]:
        if num_proc > 1:
            # A forked worker: one torch thread each, as DataLoader workers do. The fork copies a parent's
            # OpenMP state, and a multi-threaded torch op in the child can then wait forever (libgomp).
            torch.set_num_threads(1)
        crops, methods, errors = [], [], []
        for image in batch["image"]:
            try:  # our own safe decoding: a corrupt file becomes an error row, not a crash in datasets
                source = image if not isinstance(image, dict) else (image.get("bytes") or image.get("path"))
                result = processor.crop(source)
                crops.append(result.image)
                methods.append(result.method)
                errors.append("")
            except Exception as error:  # a corrupt image is skipped with a warning, never a crash
                crops.append(None)
                methods.append("error")
                errors.append(str(error).splitlines()[0] if str(error) else type(error).__name__)
        return {"crop": crops, "crop_method": methods, "crop_error": errors}

    settings = f"{CROP_CACHE_VERSION}|{dataset._fingerprint}|{processor.do_face_crop}|{processor.face_align}|" \
               f"{processor.face_margin}|{processor.crop_size}"
    if processor.face_detect_size != 640:  # the default keeps the fingerprint (and caches) of earlier versions
        settings += f"|detect{processor.face_detect_size}"
    if processor.face_detector != "mtcnn":
        settings += f"|{processor.face_detector}"
    if processor.face_context:
        settings += f"|context{processor.face_context}"
    if (processor.max_short_side, processor.reduced_jpeg_quality) != (256, 95):
        settings += f"|short{processor.max_short_side}q{processor.reduced_jpeg_quality}"
    if isinstance(dataset.features.get("image"), ImageFeature):
        dataset = dataset.cast_column("image", ImageFeature(decode=False))
    with_crops = dataset.map(crop_batch, batched=True, batch_size=32, num_proc=num_proc if num_proc > 1 else None,
                             desc="face crops", new_fingerprint=hashlib.sha256(settings.encode()).hexdigest()[:32])
    with_crops = with_crops.cast_column("crop", ImageFeature())
    bad = [i for i, method in enumerate(with_crops["crop_method"]) if method == "error"]
    if bad:
        logger.warning("skipping %d unreadable images, e.g. %s", len(bad), with_crops[bad[0]]["crop_error"])
        with_crops = with_crops.select([i for i in range(len(with_crops)) if i not in set(bad)])
    methods = with_crops["crop_method"]
    counts = {m: methods.count(m) for m in sorted(set(methods))}
    logger.info("face crops: %s", counts)
    return with_crops.remove_columns([c for c in ("image", "crop_error") if c in with_crops.column_names])


# The second view's invisible noise: +-1 level of 255 (what a different JPEG decoder or resampler moves)
VIEW_NOISE_LEVELS = 1.0


def attach_transforms(splits: DatasetDict, processor: FaceImageProcessor, augmentation,
                      two_views: bool = False) -> None:
    """Lazy transforms: pixels are produced per batch, never decoded for the whole set at once.

    `two_views`: each training crop is augmented a second time (`pixel_values_2`, with +-1 level of uniform
    noise) for the consistency loss."""

    def train_transform(batch: dict[str, list]) -> dict[str, Any]:
        pairs = list(zip(batch["crop"], batch["label"], strict=True))
        crops = [augmentation(crop.convert("RGB"), label) for crop, label in pairs]
        features = {"pixel_values": processor.finish(crops), "labels": torch.tensor(batch["label"])}
        if two_views:
            second = processor.finish([augmentation(crop.convert("RGB"), label) for crop, label in pairs])
            # noise on the resized picture's 3 channels, mapped through the processor's linear rest (a residual
            # channel sees the noise's residual; a plain picture gets noise / std)
            noise = (torch.rand((second.shape[0], 3, *second.shape[2:])) * 2 - 1) * (VIEW_NOISE_LEVELS / 255)
            effect = np.stack([processor.pixel_noise_effect(n.permute(1, 2, 0).numpy()) for n in noise])
            features["pixel_values_2"] = second + torch.from_numpy(effect)
        if "sample_weight" in batch:
            features["sample_weight"] = torch.tensor(batch["sample_weight"], dtype=torch.float32)
        return features

    def eval_transform(batch: dict[str, list]) -> dict[str, Any]:
        return {"pixel_values": processor.finish([c.convert("RGB") for c in batch["crop"]]),
                "labels": torch.tensor(batch["label"])}

    for name, split in splits.items():
        split.set_transform(train_transform if name == "train" else eval_transform)


def cap_sources(train: Dataset, caps: dict[str, int], seed: int) -> Dataset:
    """`train` with at most caps[source] images of each capped source (a seeded draw, the rest untouched)."""
    sources = train["source"]
    unknown = sorted(set(caps) - set(sources))
    if unknown:
        raise ValueError(f"--train_source_cap names sources absent from the training split: {', '.join(unknown)}")
    order = np.random.default_rng(seed).permutation(len(sources))
    seen: dict[str, int] = {}
    keep = []
    for index in order:
        source = sources[index]
        seen[source] = seen.get(source, 0) + 1
        if source not in caps or seen[source] <= caps[source]:
            keep.append(int(index))
    return train.select(sorted(keep))


def collate(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    batch = {"pixel_values": torch.stack([e["pixel_values"] for e in examples]),
             "labels": torch.stack([torch.as_tensor(e["labels"]) for e in examples])}
    if "pixel_values_2" in examples[0]:
        batch["pixel_values_2"] = torch.stack([e["pixel_values_2"] for e in examples])
    if "sample_weight" in examples[0]:
        batch["sample_weight"] = torch.stack([torch.as_tensor(e["sample_weight"]) for e in examples])
    return batch


def jensen_shannon(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Per-sample Jensen-Shannon divergence of two predictions (AugMix's consistency term, in nats)."""
    log_a, log_b = logits_a.log_softmax(-1), logits_b.log_softmax(-1)
    log_mean = torch.logsumexp(torch.stack([log_a, log_b]), dim=0) - torch.log(torch.tensor(2.0))
    kl = torch.nn.functional.kl_div
    return (kl(log_mean, log_a, log_target=True, reduction="none").sum(-1)
            + kl(log_mean, log_b, log_target=True, reduction="none").sum(-1)) / 2


class DetectorTrainer(TrainerHubMixin, Trainer):
    """Cross-entropy with class weights (balance real vs fake) and label smoothing; with `consistency_weight`,
    cross-entropy on two augmented views of each crop plus that weight x their Jensen-Shannon divergence."""

    def __init__(self, *args: Any, class_weights: torch.Tensor | None = None, consistency_weight: float = 0.0,
                 backbone_lr_scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.class_weights = class_weights
        self.consistency_weight = float(consistency_weight)
        self.backbone_lr_scale = float(backbone_lr_scale)
        # compute_loss returns a per-batch mean, not a sum over `num_items_in_batch`: tell the Trainer, so it
        # divides by gradient_accumulation_steps (otherwise GA multiplies the loss and gradients).
        self.model_accepts_loss_kwargs = False

    def create_optimizer(self, model=None):
        """The Trainer's optimizer; with `backbone_lr_scale`, every parameter group split in two, the classifier
        head at the learning rate and the rest at scale x it (the scheduler then scales both alike)."""
        optimizer = super().create_optimizer(model)
        if self.backbone_lr_scale == 1.0:
            return optimizer
        model = self.model if model is None else model
        head = {id(p) for name, p in model.named_parameters() if name.startswith("classifier")}
        groups = []
        for group in optimizer.param_groups:
            settings = {k: v for k, v in group.items() if k != "params"}
            for is_head in (True, False):
                params = [p for p in group["params"] if (id(p) in head) == is_head]
                if params:
                    lr = settings["lr"] * (1.0 if is_head else self.backbone_lr_scale)
                    groups.append({**settings, "params": params, "lr": lr})
        # before the first step the optimizer holds no state, so its groups can be replaced
        optimizer.param_groups = []
        for group in groups:
            optimizer.add_param_group(group)
        return optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        sample_weight = inputs.pop("sample_weight", None)
        second = inputs.pop("pixel_values_2", None)
        if second is not None and model.training and self.consistency_weight:
            return self._consistency_loss(model, inputs, second, labels, sample_weight, return_outputs)
        outputs = model(**inputs)
        if sample_weight is not None and model.training:
            per_sample = torch.nn.functional.cross_entropy(
                outputs.logits, labels, reduction="none", label_smoothing=self.args.label_smoothing_factor)
            weight = sample_weight.to(per_sample.device)
            loss = (per_sample * weight).sum() / weight.sum()
        else:
            loss = torch.nn.functional.cross_entropy(
                outputs.logits, labels,
                weight=None if self.class_weights is None else self.class_weights.to(outputs.logits.device),
                label_smoothing=self.args.label_smoothing_factor)
        return (loss, outputs) if return_outputs else loss

    def _consistency_loss(self, model, inputs, second, labels, sample_weight, return_outputs):
        # One forward over both views: BatchNorm sees them together (AugMix does the same).
        outputs = model(pixel_values=torch.cat([inputs["pixel_values"], second]))
        first_logits, second_logits = outputs.logits.chunk(2)
        weight = (torch.ones_like(labels, dtype=first_logits.dtype) if sample_weight is None
                  else sample_weight.to(first_logits.device))
        if sample_weight is None and self.class_weights is not None:
            weight = self.class_weights.to(first_logits.device)[labels]
        smoothing = self.args.label_smoothing_factor
        cross_entropy = sum(torch.nn.functional.cross_entropy(logits, labels, reduction="none",
                                                              label_smoothing=smoothing)
                            for logits in (first_logits, second_logits)) / 2
        per_sample = cross_entropy + self.consistency_weight * jensen_shannon(first_logits, second_logits)
        loss = (per_sample * weight).sum() / weight.sum()
        outputs.logits = first_logits
        return (loss, outputs) if return_outputs else loss


def predict_logits(trainer: Trainer, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    output = trainer.predict(dataset, metric_key_prefix="predict")
    logits, labels = np.asarray(output.predictions), np.asarray(output.label_ids)
    # Data-parallel evaluation pads the last batches with repeated examples; `gather_for_metrics` drops
    # them again. Metrics must count every example exactly once, so check it rather than trust it.
    if len(logits) != len(dataset) or len(labels) != len(dataset):
        raise RuntimeError(f"gathered {len(logits)} predictions for {len(dataset)} examples "
                           f"({trainer.args.world_size} processes)")
    return logits, labels


def training_sources(train: Dataset) -> list[dict[str, Any]]:
    """Every source that trained the model, with its label, generator, licence and image count (model card)."""
    columns = train.column_names
    rows = zip(train["source"], train["label"],
               train["generator"] if "generator" in columns else [""] * len(train),
               train["license"] if "license" in columns else [""] * len(train), strict=True)
    table: dict[str, dict[str, Any]] = {}
    for source, label, generator, licence in rows:
        entry = table.setdefault(source, {"name": source, "label": "real" if label == REAL_ID else "fake",
                                          "generator": generator or "", "licenses": {}, "n": 0})
        entry["n"] += 1
        entry["licenses"][licence or "not stated"] = entry["licenses"].get(licence or "not stated", 0) + 1
    for entry in table.values():
        licences = entry.pop("licenses")
        entry["license"] = "; ".join(sorted(licences, key=licences.get, reverse=True))
        if entry["label"] == "fake" and entry["generator"] not in ("", "none"):
            entry["label"] = f"fake ({entry['generator']})"
    return sorted(table.values(), key=lambda e: (e["label"].startswith("fake"), e["name"]))


def _class_names(labels: np.ndarray) -> str:
    return "+".join("reals" if label == REAL_ID else "fakes" for label in sorted(set(labels.tolist())))


def evaluation_record(logits: np.ndarray, labels: np.ndarray, threshold: float,
                      sources: list[str] | None = None) -> dict[str, Any]:
    from ..evaluation.metrics import compute_metrics, per_source_breakdown, softmax

    scores = softmax(logits)[:, 1]
    record = compute_metrics(labels, scores, threshold=threshold)
    if sources is not None:
        record["per_source"] = per_source_breakdown(labels, scores, threshold, sources)
    return record


def last_complete_checkpoint(output_dir: str | os.PathLike, remove_incomplete: bool = False) -> str | None:
    """The newest `checkpoint-N` that was completely written, or None.

    The Trainer writes a checkpoint in place (weights, optimizer, scheduler, RNG, then
    `trainer_state.json` last), so a run killed while saving leaves a directory without a readable
    `trainer_state.json`; transformers' `get_last_checkpoint` would pick it and the resume would fail
    with a traceback. Incomplete ones newer than the chosen checkpoint are removed (with a warning) when
    `remove_incomplete`, so no half-written checkpoint is left behind.
    """
    root = Path(output_dir)
    if not root.is_dir():
        return None
    numbered = []
    for path in root.iterdir():
        match = _CHECKPOINT_RE.fullmatch(path.name)
        if match and path.is_dir():
            numbered.append((int(match.group(1)), path))
    chosen = None
    for step, path in sorted(numbered, reverse=True):
        if _checkpoint_complete(path, step):
            chosen = path
            break
        logger.warning("%s was not completely written (interrupted while saving?)%s", path,
                       ": removing it" if remove_incomplete else ": skipping it")
        if remove_incomplete:
            shutil.rmtree(path, ignore_errors=True)
    return str(chosen) if chosen is not None else None


_CHECKPOINT_RE = re.compile(r"checkpoint-(\d+)")


def _checkpoint_complete(path: Path, step: int) -> bool:
    try:
        state = json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    has_weights = any((path / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json"))
    return has_weights and state.get("global_step") == step


def check_output_dir(path: str) -> None:
    """Fail before training, not after an hour, when the checkpoint cannot be written."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"0" * 1024)
        probe.unlink()
    except OSError as error:
        raise SystemExit(f"error: cannot write to output_dir {path}: {error.strerror or error}") from None
    stats = os.statvfs(out)
    free_mb = stats.f_bavail * stats.f_frsize / 2**20
    if free_mb < 200:
        raise SystemExit(f"error: only {free_mb:.0f} MB free in {path}; a checkpoint needs about 100 MB")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    model_args, data_args, training_args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO,
                        handlers=[logging.StreamHandler(sys.stdout)])
    transformers.utils.logging.set_verbosity_warning()
    if training_args.should_save:
        check_output_dir(training_args.output_dir)
    set_seed(training_args.seed)
    keep_freed_memory()  # 1.5-2x train images/s on CPU (make bench): activations reuse their pages
    started = time.time()

    # 1. Data: fixed labels, stratified + identity-grouped splits, optional held-out generators.
    with training_args.main_process_first(desc="load data"):  # one download / Arrow cache build per node
        dataset = load_faces(data_args.data, revision=data_args.dataset_revision)

    # 2. Preprocessing: the processor saved with the checkpoint. The face stage runs once on the whole
    # set (cached on disk by datasets), so every split, hold-out and later run reuses the crops.
    processor = build_processor(model_args, data_args)
    with training_args.main_process_first(desc="face crops"):
        dataset = cache_face_crops(dataset, processor, data_args.preprocessing_num_workers)
    holdout = [h for h in data_args.holdout.split(",") if h.strip()]
    splits = split_faces(dataset, SplitSpec(data_args.validation_fraction, data_args.test_fraction,
                                            data_args.split_seed, holdout))
    # Subsets are drawn with the split's seed: which images a run sees is part of the split, so runs that
    # differ only in `seed` (init, order, augmentation: soup ingredients, seed spread) see the same images.
    if data_args.max_train_samples and "train" in splits:
        splits["train"] = splits["train"].shuffle(seed=data_args.split_seed).select(
            range(min(data_args.max_train_samples, len(splits["train"]))))
    caps = parse_source_caps(data_args.train_source_cap)
    if caps and "train" in splits:
        try:
            splits["train"] = cap_sources(splits["train"], caps, data_args.split_seed)
        except ValueError as error:  # a source the data does not have: one line, before any training
            raise SystemExit(f"error: {error}") from None
    if data_args.max_eval_samples:
        for name in [n for n in splits if n != "train"]:
            splits[name] = splits[name].shuffle(seed=data_args.split_seed).select(
                range(min(data_args.max_eval_samples, len(splits[name]))))

    crop_methods = {name: {m: split["crop_method"].count(m) for m in set(split["crop_method"])}
                    for name, split in splits.items()}
    sources = {name: list(split["source"]) for name, split in splits.items()}
    split_labels = {name: list(split["label"]) for name, split in splits.items()}
    augmentation_config = augmentation_config_from(data_args)
    data_sources = training_sources(splits["train"]) if "train" in splits else []  # before transforms
    if data_args.source_balance and "train" in splits:
        group = [name.strip() for name in data_args.balance_group.split(",") if name.strip()]
        weights = source_balanced_weights(split_labels["train"], sources["train"], groups=[group] if group else ())
        splits["train"] = splits["train"].add_column("sample_weight", weights.tolist())
    attach_transforms(splits, processor, build_train_augmentation(augmentation_config, seed=training_args.seed),
                      two_views=data_args.consistency_weight > 0)

    # 3. Model from the registry.
    try:
        model = create_model(ModelSpec(
            name=model_args.model, image_size=model_args.image_size, pretrained=model_args.pretrained,
            model_name_or_path=model_args.model_name_or_path, revision=model_args.model_revision,
            depth_multiplier=model_args.depth_multiplier, dropout=model_args.dropout,
            local_blocks=model_args.local_blocks,
            num_channels=processor.num_channels))
    except (WeightsError, ValueError) as error:  # missing or altered ImageNet weights, a bad combination
        raise SystemExit(f"error: {error}") from None
    channels = int(getattr(model.config, "num_channels", 3) or 3)
    if channels != processor.num_channels:  # e.g. a 3-channel checkpoint to start from with --highpass_beside
        raise SystemExit(f"error: the model takes {channels} input channels but the processor gives "
                         f"{processor.num_channels}")
    soup = [p.strip() for p in model_args.soup_with.split(",") if p.strip()]
    if soup:
        from .soup import SoupError, check_ingredients

        try:
            check_ingredients(model, soup)
        except SoupError as error:
            raise SystemExit(f"error: {error}") from None
    if model_args.channels_last:  # inputs stay NCHW: the convolutions follow the weights' layout
        model = model.to(memory_format=torch.channels_last)
    if model_args.freeze_backbone:
        for name, parameter in model.named_parameters():
            parameter.requires_grad = name.startswith("classifier")
    parameters = sum(p.numel() for p in model.parameters())

    class_weights = None
    if data_args.class_weights and "train" in splits:
        class_weights = class_weights_for(split_labels["train"])

    from ..evaluation.metrics import make_compute_metrics

    trainer = DetectorTrainer(
        model=model, args=training_args, data_collator=collate,
        train_dataset=splits.get("train") if training_args.do_train else None,
        eval_dataset=splits.get("validation"), processing_class=processor,
        compute_metrics=make_compute_metrics(), class_weights=class_weights,
        consistency_weight=data_args.consistency_weight, backbone_lr_scale=model_args.backbone_lr_scale)

    # 4. Train (resuming from the last complete checkpoint when asked).
    train_seconds, images_per_second = 0.0, 0.0
    if training_args.do_train:
        checkpoint = training_args.resume_from_checkpoint
        if checkpoint in ("True", "true", "last"):  # like the example script: continue the last checkpoint
            # only the main process removes half-written checkpoints; every process picks the same one
            checkpoint = last_complete_checkpoint(training_args.output_dir,
                                                  remove_incomplete=training_args.should_save)
            if checkpoint is None:
                logger.warning("no checkpoint in %s yet: training from the start", training_args.output_dir)
        t0 = time.time()
        result = trainer.train(resume_from_checkpoint=checkpoint)
        train_seconds = time.time() - t0
        images_per_second = result.metrics.get("train_samples_per_second", 0.0)
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()

    # 4b. Model soup: average with the other seeds' runs (each un-calibrated first), then calibrate the soup.
    if soup:
        from .soup import average_into

        average_into(trainer.model, soup)
        logger.info("model soup: averaged with %s", ", ".join(soup))

    # 5. Calibrate on validation: temperature (baked into the head) and decision threshold.
    threshold, temperature = 0.5, 1.0
    if data_args.calibrate and "validation" in splits:
        from ..evaluation.metrics import choose_threshold, fit_temperature, softmax

        logits, labels = predict_logits(trainer, splits["validation"])
        temperature = float(fit_temperature(logits, labels))
        bake_temperature(trainer.model, temperature)
        threshold = float(choose_threshold(labels, softmax(logits / temperature)[:, 1]))
        logger.info("calibration: temperature %.3f, threshold %.3f", temperature, threshold)
    trainer.model.config.detector_threshold = threshold
    trainer.model.config.detector_temperature = temperature

    # 6. Evaluate every split we have, with per-source breakdowns.
    evaluations: dict[str, Any] = {}
    eval_sets = {"validation": "validation", "test": "in-distribution test"}
    eval_sets.update({"heldout": f"held-out {'+'.join(holdout)}"} if holdout else {})
    wanted = {"validation": training_args.do_eval, "test": training_args.do_predict,
              "heldout": training_args.do_predict}
    predictions_for_plots = None
    outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split_name, title in eval_sets.items():
        if split_name in splits and wanted[split_name]:
            logits, labels = predict_logits(trainer, splits[split_name])
            outputs[split_name] = (logits, labels)
            evaluations[title] = evaluation_record(logits, labels, threshold, sources[split_name])
            if split_name in ("test", "validation"):
                from ..evaluation.metrics import softmax

                predictions_for_plots = (labels, softmax(logits)[:, 1], split_name)
    if "heldout" in outputs and "test" in outputs:
        # A held-out set is one class (a generator's fakes or a real source's photos): AUROC and the
        # per-source rates need the test split's other class beside it.
        (held_logits, held_labels), (test_logits, test_labels) = outputs["heldout"], outputs["test"]
        other = ~np.isin(test_labels, np.unique(held_labels))
        if other.any():
            evaluations[f"held-out {'+'.join(holdout)} vs test {_class_names(test_labels[other])}"] = \
                evaluation_record(
                    np.concatenate([held_logits, test_logits[other]]),
                    np.concatenate([held_labels, test_labels[other]]),
                    threshold, sources["heldout"] + [s for s, o in zip(sources["test"], other, strict=True) if o])
    wall = time.time() - started

    # 7. Save checkpoint (safetensors), processor, metrics, plots, card.
    record = {
        "model_name": Path(training_args.output_dir).name,
        "architecture": model_args.model,
        "base_model": model_args.model_name_or_path or getattr(model.config, "base_model", None),
        "datasets": [data_args.data],
        "license": "cc-by-nc-sa-4.0",
        "parameters": parameters,
        "threshold": threshold,
        "temperature": temperature,
        "training": {
            "epochs": training_args.num_train_epochs, "learning_rate": training_args.learning_rate,
            "batch_size": training_args.per_device_train_batch_size * max(1, training_args.world_size)
            * training_args.gradient_accumulation_steps, "processes": max(1, training_args.world_size),
            "optimizer": training_args.optim, "weight_decay": training_args.weight_decay,
            "label_smoothing": training_args.label_smoothing_factor, "image_size": model_args.image_size,
            "train_images": len(splits["train"]) if "train" in splits else 0,
            "wall_time_s": round(wall, 1), "train_time_s": round(train_seconds, 1),
            "images_per_second": round(images_per_second, 2), "seed": training_args.seed,
            "holdout": holdout, "train_source_cap": caps, "face_crop": data_args.face_crop, "face_align": data_args.face_align,
            "face_context": data_args.face_context, "face_detector": data_args.face_detector,
            "augment": asdict(augmentation_config), "kalman": data_args.kalman,
            "class_weights": data_args.class_weights, "source_balance": data_args.source_balance,
            "balance_group": data_args.balance_group, "consistency_weight": data_args.consistency_weight,
            "highpass_gain": data_args.highpass_gain, "highpass_beside": data_args.highpass_beside,
            "freeze_backbone": model_args.freeze_backbone, "backbone_lr_scale": model_args.backbone_lr_scale,
            "soup_with": soup,
            "crop_methods": crop_methods,
        },
        "evaluations": evaluations,
        "plots": [],
    }
    if data_sources:
        record["data_sources"] = data_sources
    if training_args.should_save:
        out = Path(training_args.output_dir)
        trainer.save_model(str(out))  # model.safetensors + config.json + preprocessor_config.json
        # No pickles in a checkpoint people download: the arguments go to JSON instead.
        (out / "training_args.bin").unlink(missing_ok=True)
        (out / "training_args.json").write_text(training_args.to_json_string())
        if predictions_for_plots is not None:
            from ..evaluation.plots import save_all_plots

            labels, scores, _ = predictions_for_plots
            state = out / "trainer_state.json"
            plots = save_all_plots(labels, scores, threshold, out, trainer_state=state if state.exists() else None)
            record["plots"] = [Path(p).name for p in plots]
        if model_args.int8:
            record["int8"] = build_int8_model(out, splits, threshold)
        record["onnx_export"] = build_onnx_export(out)
        (out / "metrics.json").write_text(json.dumps(record, indent=2, default=_json_default))
        # Per-image calibrated p(fake) of every evaluated split: reliability and "uncertain"-band analyses
        # of held-out sets need the scores, not only the summary.
        from ..evaluation.metrics import softmax

        (out / "predictions.json").write_text(json.dumps({
            name: {"scores": np.round(softmax(logits)[:, 1], 5).tolist(), "labels": labels.tolist(),
                   "sources": sources[name]} for name, (logits, labels) in outputs.items()}))
        _write_card(out)
        if training_args.push_to_hub:
            try:
                url = trainer.push_to_hub(commit_message="hf-detector: trained checkpoint, metrics, plots and card")
                logger.info("pushed to %s", url)
            except HubError as error:  # the trained checkpoint stays on disk, untouched
                raise SystemExit(f"error: push failed: {error} (the checkpoint is saved in {out})") from None
            finally:
                (out / "training_args.bin").unlink(missing_ok=True)

    summary = evaluations.get("in-distribution test") or evaluations.get("validation") or {}
    if trainer.is_world_process_zero():
        print(f"done in {wall / 60:.1f} min ({wall:.0f} s): {images_per_second:.1f} train images/s; "
              + ", ".join(f"{k} {summary[k]:.4f}" for k in ("accuracy", "balanced_accuracy", "roc_auc", "f1")
                          if isinstance(summary.get(k), (int, float)) and not math.isnan(summary[k])))
    return record


def split_pixels(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """All processed crops (N, C, H, W) and labels of an evaluation split (its eval transform)."""
    rows = [dataset[start:start + 64] for start in range(0, len(dataset), 64)]
    return (np.concatenate([row["pixel_values"].numpy() for row in rows]).astype(np.float32),
            np.concatenate([row["labels"].numpy() for row in rows]))


def build_int8_model(out: Path, splits: DatasetDict, threshold: float) -> dict[str, Any]:
    """The int8 model of the saved checkpoint (hf_detector/inference/int8.py), kept only when it predicts like fp32.

    Returns what happened, for metrics.json and the card; never fails the training run.
    """
    from ..runtime.onnx import onnx_available

    if not onnx_available():
        return {"kept": False, "reason": "onnxruntime not installed"}
    if "validation" not in splits or "test" not in splits:
        return {"kept": False, "reason": "needs a validation split (calibration) and a test split (check)"}
    from ..inference.int8 import QuantizationRefused, quantize_checkpoint

    calibration, calibration_labels = split_pixels(splits["validation"])
    check, labels = split_pixels(splits["test"])
    try:  # quantises the saved weights (reloaded from `out`), so the sha256 in the report is theirs
        report = quantize_checkpoint(out, calibration, check, labels, calibration_labels, threshold=threshold)
    except QuantizationRefused as error:
        logger.warning("%s", error)
        return {"kept": False, "reason": str(error)}
    logger.info("int8 model kept: %s", report.summary())
    return {"kept": True, **asdict(report)}


def build_onnx_export(out: Path) -> dict[str, Any]:
    """The saved checkpoint's fp32 ONNX export (hf_detector/inference/export.py), so that scoring it needs no torch
    and nothing is exported on a user's first call. Never fails the training run."""
    from ..runtime.onnx import onnx_available

    if not onnx_available():
        return {"written": False, "reason": "onnxruntime not installed"}
    from ..inference.export import export_or_warn

    summary = export_or_warn(out)  # from the saved weights, so the sha256 in export.json is theirs
    if not summary["written"]:
        logger.warning("no ONNX export: %s", summary["reason"])
    return summary


def _write_card(out: Path) -> None:
    try:
        from ..hub.card import write_card
    except ImportError:  # the card module is optional for training
        return
    try:
        write_card(out)
    except Exception as error:  # a card problem must not lose a finished training run
        logger.warning("model card not written: %s", error)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    main()
