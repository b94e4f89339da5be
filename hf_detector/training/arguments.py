"""The training arguments: `ModelArguments`, `DataArguments` (+ transformers' `TrainingArguments`) and parsing.

A JSON argument file works, and later flags override it; `build_processor` turns the preprocessing
flags into the checkpoint's `FaceImageProcessor`.

Stage: training (imports data, runtime, preprocessing, models, inference, evaluation, hub).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, TrainingArguments

from ..models import available_models
from ..preprocessing.augmentation import AugmentationConfig, check_probability
from ..preprocessing.processor import FaceImageProcessor


@dataclass
class ModelArguments:
    model: str = field(default="mobilenet_v2", metadata={"help": f"architecture: {', '.join(available_models())}"})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "start from a Hub id (e.g. google/mobilenet_v2_1.0_224) or local checkpoint"})
    model_revision: str | None = field(default=None, metadata={"help": "Hub revision of model_name_or_path"})
    image_size: int = field(default=128, metadata={"help": "model input size (96/128/160/224/256)"})
    pretrained: bool = field(default=True, metadata={"help": "ImageNet initialisation where offline weights exist"})
    depth_multiplier: float = field(default=1.0, metadata={"help": "MobileNetV2 width (1.0 or 0.35)"})
    local_blocks: int = field(default=5, metadata={
        "help": "mobilenet_v2_local: MobileNetV2 blocks kept before the per-location classifier (5: each location "
                "sees 59 px)"})
    dropout: float | None = field(default=None, metadata={"help": "classifier dropout (model default if unset)"})
    freeze_backbone: bool = field(default=False, metadata={"help": "train the classifier head only"})
    backbone_lr_scale: float = field(default=1.0, metadata={
        "help": "learning-rate multiplier for every layer but the classifier head (e.g. 0.1: fine-tune the "
                "ImageNet features gently while the head learns at the full rate)"})
    channels_last: bool = field(default=True, metadata={
        "help": "train in channels-last memory layout (convolutions ~1.5x faster on CPU); same saved weights"})
    int8: bool = field(default=True, metadata={
        "help": "after training, build the static int8 model (calibrated on validation) and keep it only if it "
                "predicts like fp32 on the test split (hf_detector/inference/int8.py); needs onnxruntime"})
    soup_with: str = field(default="", metadata={
        "help": "comma-separated checkpoints of the same architecture (runs with other seeds) whose weights are "
                "averaged with this run's before calibration: a model soup (hf_detector/training/soup.py)"})


@dataclass
class DataArguments:
    data: str | None = field(default=None, metadata={"help": "imagefolder directory (real/, fake/) or Hub dataset id"})
    dataset_revision: str | None = field(default=None, metadata={"help": "Hub dataset revision"})
    validation_fraction: float = field(default=0.15)
    test_fraction: float = field(default=0.15)
    split_seed: int = field(default=42)
    holdout: str = field(default="", metadata={"help": "comma-separated sources/generators to hold out entirely"})
    max_train_samples: int | None = field(default=None, metadata={
        "help": "train on a subset of this many images, drawn with split_seed (the same images for every seed)"})
    train_source_cap: str = field(default="", metadata={
        "help": "at most N training images of a source, e.g. 'ffhq-140k=100' (comma-separated; drawn with "
                "split_seed after max_train_samples): how a held-out row moves with the amount of one source"})
    max_eval_samples: int | None = field(default=None, metadata={
        "help": "evaluate on subsets of this many images, drawn with split_seed"})
    face_crop: bool = field(default=True, metadata={"help": "detect and crop the face (centre crop otherwise)"})
    face_align: bool = field(default=True, metadata={"help": "landmark alignment of every face"})
    face_margin: float = field(default=-0.25, metadata={"help": "context around the face box; negative = inner face"})
    face_context: float = field(default=0.0, metadata={
        "help": "> 0: frame the face with its surroundings instead of aligning it: a square of this many times "
                "the face box, cut inside the image (no padding); 0 = the aligned crop of face_margin"})
    crop_size: int = field(default=128, metadata={"help": "resolution of the canonical face crop"})
    face_detect_size: int = field(default=640, metadata={
        "help": "longest side of the copy the face detector searches (the crop is cut at full resolution)"})
    face_detector: str = field(default="mtcnn", metadata={
        "help": "face detector that frames every face: mtcnn (finds small faces) or blazeface (~7x faster; "
                "MTCNN takes over where it finds none)"})
    max_short_side: int = field(default=256, metadata={
        "help": "downscale images whose shorter side is longer, before the face stage, in training and in "
                "inference alike (0 = native resolution; ../shared/data/faces is <= 256 already)"})
    reduced_jpeg_quality: int = field(default=95, metadata={
        "help": "JPEG quality of the re-encoding after that reduction, as the dataset was made (0 = none)"})
    augment: bool = field(default=True, metadata={"help": "master switch of the augmentations below"})
    aug_flip: bool = field(default=True)
    aug_rotate: bool = field(default=True)
    aug_resized_crop: bool = field(default=True)
    aug_crop_scale_min: float = field(default=0.8, metadata={
        "help": "smallest area fraction the random resized crop keeps (0 < x <= 1; the crop is then resized back): "
                "lower = wider scale jitter, so a face's framing scale cannot be a cue"})
    aug_jpeg: bool = field(default=True)
    aug_blur: bool = field(default=True)
    aug_rescale: bool = field(default=True)
    aug_colour: bool = field(default=True)
    aug_degrade_probability: float = field(default=0.5, metadata={
        "help": "probability of each quality degradation (rescale, blur, JPEG) that is switched on: lower keeps "
                "more clean images, higher more robustness to recompressed and resized inputs"})
    aug_fake_degrade: float = field(default=0.0, metadata={
        "help": "probability of an extra down-up rescale of FAKE images only (fakes are all sharp here)"})
    aug_real_sharpen: float = field(default=0.0, metadata={
        "help": "probability of an unsharp mask on REAL images only (so that sharp does not mean fake)"})
    aug_real_ffhq_reframe: float = field(default=0.0, metadata={
        "help": "probability of putting a REAL photo in FFHQ's frame (its alignment and padding) before the other "
                "augmentations, so that the FFHQ frame, which nearly all fakes here have, stops meaning fake"})
    kalman: bool = field(default=False, metadata={"help": "Kalman-filter denoising (the prototype's), opt-in"})
    kalman_process_noise: float = field(default=1e-3)
    kalman_measurement_noise: float = field(default=1e-2)
    highpass_gain: float = field(default=0.0, metadata={
        "help": "> 0: the model sees the high-pass residual of its input (minus a 3x3 binomial blur) times this "
                "gain instead of the picture, in training and inference alike (0 = the picture)"})
    highpass_beside: bool = field(default=False, metadata={
        "help": "with --highpass_gain: give the model the residual as 3 more channels beside the picture (a "
                "6-channel stem; ImageNet weights start with zeros for the new channels) instead of replacing it"})
    consistency_weight: float = field(default=0.0, metadata={
        "help": "> 0: every training crop is augmented twice (plus +-1 level of noise on the second view) and "
                "the loss adds this weight x the Jensen-Shannon divergence of the two predictions (AugMix's "
                "consistency; ~1.8x the training time); 0 = one view, plain cross-entropy"})
    class_weights: bool = field(default=True, metadata={"help": "weight the loss by inverse class frequency"})
    source_balance: bool = field(default=False, metadata={
        "help": "weight every sample so each source counts equally within its class (and classes equally); "
                "keeps rare sources such as FFHQ-style real portraits from being drowned out"})
    balance_group: str = field(default="", metadata={
        "help": "with source_balance: comma-separated sources that share a look (e.g. the FFHQ-aligned ones, "
                "real and fake); that group and the rest are each class-balanced on their own"})
    calibrate: bool = field(default=True, metadata={"help": "temperature scaling + threshold on validation"})
    preprocessing_num_workers: int = field(default=1, metadata={"help": "processes for the face-crop cache"})


# The prototype's choices (Adam, lr 1e-4, cross-entropy) plus quiet, CPU-friendly defaults; any of them
# can be overridden on the command line or in a JSON argument file.
DEFAULT_TRAINING_ARGS: dict[str, Any] = {
    "output_dir": "runs/hf-detector",
    "learning_rate": 1e-4,
    "optim": "adamw_torch",
    "weight_decay": 0.0,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "num_train_epochs": 3,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "logging_steps": 10,
    "report_to": "none",
    "remove_unused_columns": False,
    "seed": 42,
    "dataloader_num_workers": 0,
    "ddp_find_unused_parameters": False,  # every parameter gets a gradient (frozen ones are not DDP's)
}


# The DataArguments flags that are probabilities; `parse_args` range-checks them.
_PROBABILITY_FLAGS = ("aug_degrade_probability", "aug_fake_degrade", "aug_real_sharpen", "aug_real_ffhq_reframe")


def augmentation_config_from(data_args: DataArguments) -> AugmentationConfig:
    """The training augmentation the `--aug_*` flags describe (the identity with `--augment false`)."""
    if not data_args.augment:
        return AugmentationConfig.none()
    degrade = data_args.aug_degrade_probability
    return AugmentationConfig(
        flip=data_args.aug_flip, rotate=data_args.aug_rotate, resized_crop=data_args.aug_resized_crop,
        jpeg=degrade if data_args.aug_jpeg else 0.0, blur=degrade if data_args.aug_blur else 0.0,
        rescale=degrade if data_args.aug_rescale else 0.0,
        colour=data_args.aug_colour, fake_degrade=data_args.aug_fake_degrade,
        real_sharpen=data_args.aug_real_sharpen, crop_scale=(data_args.aug_crop_scale_min, 1.0),
        real_ffhq_reframe=data_args.aug_real_ffhq_reframe)


def parse_source_caps(text: str) -> dict[str, int]:
    """`--train_source_cap` 'a=10,b=0' as {source: at most this many training images}; ValueError in one line."""
    caps: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        source, _, count = item.partition("=")
        if not source.strip() or not count.strip().isdigit():
            raise ValueError(f"--train_source_cap takes SOURCE=N items (N >= 0), got {item!r}")
        caps[source.strip()] = int(count)
    return caps


def parse_args(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    if len(argv) >= 1 and argv[0].endswith(".json"):  # an argument file, overridable by later flags
        file_args = json.loads(Path(argv[0]).read_text())
        argv = _dict_to_argv(file_args) + argv[1:]
    parser.set_defaults(**{k: v for k, v in DEFAULT_TRAINING_ARGS.items()})
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    if data_args.data is None and not training_args.resume_from_checkpoint:
        parser.error("--data is required (an imagefolder directory or a Hub dataset id)")
    try:  # before any data is read, naming the flag rather than the config field
        for name in _PROBABILITY_FLAGS:
            check_probability(f"--{name}", getattr(data_args, name))
        if not 0 < data_args.aug_crop_scale_min <= 1:
            raise ValueError(f"--aug_crop_scale_min must be in (0, 1], got {data_args.aug_crop_scale_min}")
        if not model_args.backbone_lr_scale > 0:
            raise ValueError(f"--backbone_lr_scale must be > 0 (--freeze_backbone trains the head only), "
                             f"got {model_args.backbone_lr_scale}")
        if data_args.consistency_weight < 0:
            raise ValueError(f"--consistency_weight must be >= 0 (0 = off), got {data_args.consistency_weight}")
        parse_source_caps(data_args.train_source_cap)
        build_processor(model_args, data_args)  # the processor's own checks (face_context, max_short_side, ...)
    except ValueError as error:
        parser.error(str(error))
    # Like the example script, but with no --do_* flag at all we train, evaluate and predict (note that
    # TrainingArguments turns do_eval on by itself whenever an eval strategy is set).
    if not any(arg.split("=")[0] in ("--do_train", "--do_eval", "--do_predict") for arg in argv):
        training_args.do_train = training_args.do_eval = training_args.do_predict = True
    return model_args, data_args, training_args


def _dict_to_argv(values: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, list):
            argv += [f"--{key}", *map(str, value)]
        else:
            argv += [f"--{key}", str(value)]
    return argv


def build_processor(model_args: ModelArguments, data_args: DataArguments) -> FaceImageProcessor:
    return FaceImageProcessor(
        do_face_crop=data_args.face_crop, face_align=data_args.face_align, face_margin=data_args.face_margin,
        face_context=data_args.face_context, crop_size=data_args.crop_size, face_detect_size=data_args.face_detect_size,
        face_detector=data_args.face_detector, max_short_side=data_args.max_short_side, reduced_jpeg_quality=data_args.reduced_jpeg_quality,
        size=model_args.image_size,
        do_kalman=data_args.kalman,
        kalman_process_noise=data_args.kalman_process_noise,
        kalman_measurement_noise=data_args.kalman_measurement_noise,
        highpass_gain=data_args.highpass_gain,
        highpass_beside=data_args.highpass_beside,
    )
