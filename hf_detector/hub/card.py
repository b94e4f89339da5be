"""Model card: `model_card.md` (Jinja) + `ModelCardData` rendered from what a training run leaves behind.

Inputs, all read from the checkpoint directory and all optional except `config.json`: `config.json`
(architecture, labels, `detector_threshold`, `image_size`), `preprocessor_config.json`, `metrics.json` (the
trainer's record: model, data, hyperparameters, evaluations, plots) and `training_args.json`. Every metric of
every evaluation set becomes one `EvalResult` in the card's `model-index`, so the Hub shows the numbers and
`ModelCard.load(repo_id).data.eval_results` gives them back.

This module only needs `huggingface_hub` and `jinja2` (no torch), so pushing a card is cheap.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import re
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..data.labels import ID2LABEL
from . import remote_code

TEMPLATE_NAME = "model_card.md"
DEFAULT_LICENSE = "apache-2.0"
TASK_TYPE = "image-classification"
TASK_NAME = "Real vs AI-generated face classification"
BASE_TAGS = ["image-classification", "deepfake-detection", "ai-generated-image-detection", "faces",
             "hf-detector"]
# Keys of an evaluation record that are not metrics (counts, breakdowns) and so not EvalResults.
NON_METRIC_KEYS = {"n", "threshold", "per_source", "support", "tp", "fp", "tn", "fn", "confusion_matrix"}
METRIC_ORDER = ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "average_precision",
                "ece", "recall_real", "recall_fake", "log_loss", "brier"]
METRIC_NAMES = {
    "accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "precision": "Precision (fake)",
    "recall": "Recall (fake)", "f1": "F1 (fake)", "roc_auc": "ROC AUC",
    "average_precision": "Average precision",
    "ece": "Expected calibration error", "recall_real": "Recall (real)", "recall_fake": "Recall (fake)",
    "log_loss": "Log loss", "brier": "Brier score",
}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def template_path(name: str = TEMPLATE_NAME) -> Path:
    """A Jinja template: the repo-root copy in a source checkout, else the one in hf_detector/templates."""
    root = Path(__file__).resolve().parent.parent.parent / name
    if name == TEMPLATE_NAME and root.is_file():
        return root
    return Path(str(importlib.resources.files("hf_detector") / "templates" / name))


def packaged_template(name: str) -> str:
    """Text of a template shipped inside the package (`hf_detector/templates/NAME`)."""
    return (importlib.resources.files("hf_detector") / "templates" / name).read_text(encoding="utf-8")


def _is_hub_id(value: Any) -> bool:
    """Hub metadata (`datasets`, `base_model`) must hold repo ids, not the local paths a run may have used."""
    if not isinstance(value, str) or ".." in value:
        return False
    return bool(_REPO_ID.match(value)) and not Path(value).exists()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, (dict, list)):
        return "`" + json.dumps(value, separators=(", ", ": "), default=str) + "`"
    return "n/a" if value is None or value == "" else str(value)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "default"


def _split_of(set_name: str) -> str:
    return "validation" if "valid" in set_name.lower() else "test"


def eval_results(metrics: dict[str, Any], dataset_type: str) -> list[EvalResult]:
    """One `EvalResult` per (evaluation set, metric): the card's model-index."""
    results = []
    for set_name, record in (metrics.get("evaluations") or {}).items():
        if not isinstance(record, dict):
            continue
        for key in _metric_keys(record):
            results.append(EvalResult(
                task_type=TASK_TYPE, task_name=TASK_NAME,
                dataset_type=str(record.get("dataset") or dataset_type),
                # dataset_config keeps the sets apart: the Hub groups model-index results by (task, dataset
                # type, config, split), not by name, so without it every set would merge into the first one.
                dataset_name=str(set_name), dataset_config=_slug(set_name), dataset_split=_split_of(set_name),
                metric_type=key,
                metric_name=METRIC_NAMES.get(key, key), metric_value=_number(record[key]),
            ))
    return results


def _metric_keys(record: dict[str, Any]) -> list[str]:
    keys = [k for k, v in record.items() if k not in NON_METRIC_KEYS and _number(v) is not None]
    return sorted(keys, key=lambda k: (METRIC_ORDER.index(k) if k in METRIC_ORDER else len(METRIC_ORDER), k))


def _evaluation_tables(metrics: dict[str, Any]) -> dict[str, Any]:
    evaluations = {k: v for k, v in (metrics.get("evaluations") or {}).items() if isinstance(v, dict)}
    columns: list[str] = []
    for record in evaluations.values():
        columns += [k for k in _metric_keys(record) if k not in columns]
    columns.sort(key=lambda k: (METRIC_ORDER.index(k) if k in METRIC_ORDER else len(METRIC_ORDER), k))
    rows = [{"name": name, "n": _fmt(record.get("n")) if record.get("n") is not None else "n/a",
             "cells": [_fmt(_number(record.get(c))) for c in columns]}
            for name, record in evaluations.items()]
    per_source = []
    for name, record in evaluations.items():
        for source, stats in sorted((record.get("per_source") or {}).items()):
            if isinstance(stats, dict):
                per_source.append({"set": name, "source": source, "n": _fmt(stats.get("n")),
                                   "accuracy": _fmt(_number(stats.get("accuracy"))),
                                   "fake_rate": _fmt(_number(stats.get("fraction_predicted_fake")))})
    return {"eval_columns": [METRIC_NAMES.get(c, c) for c in columns], "eval_rows": rows,
            "per_source_rows": per_source}


def _leave_out_table(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The leave-out table `make report` stores in metrics.json (header, rows of strings), if well formed."""
    table = metrics.get("leave_out_table")
    if not isinstance(table, dict) or not isinstance(table.get("header"), list) or not table.get("rows"):
        return None
    width = len(table["header"])
    rows = [[str(c) for c in row] for row in table["rows"] if isinstance(row, list) and len(row) == width]
    return {"header": [str(h) for h in table["header"]], "rows": rows, "budget": str(table.get("budget") or "")}


def build_card(model_dir: Path | str, repo_id: str | None = None) -> ModelCard:
    """Render the model card of a checkpoint directory (pure: reads files, writes nothing)."""
    model_dir = Path(model_dir)
    config = remote_code.read_json(model_dir / "config.json")
    processor = remote_code.read_json(model_dir / "preprocessor_config.json")
    metrics = remote_code.read_json(model_dir / "metrics.json")
    training_args = remote_code.read_json(model_dir / "training_args.json")
    training = metrics.get("training") if isinstance(metrics.get("training"), dict) else {}

    model_name = str(metrics.get("model_name") or (repo_id.split("/")[-1] if repo_id else model_dir.name))
    datasets = [d for d in (metrics.get("datasets") or []) if isinstance(d, str)]
    hub_datasets = [d for d in datasets if _is_hub_id(d)]
    base_model = metrics.get("base_model") if _is_hub_id(metrics.get("base_model")) else None
    architecture = str(metrics.get("architecture") or config.get("model_type") or "image classifier")
    architectures = config.get("architectures") or []
    license_id = str(metrics.get("license") or DEFAULT_LICENSE)
    results = eval_results(metrics, dataset_type=hub_datasets[0] if hub_datasets else "imagefolder")
    tags = BASE_TAGS + [t for t in (architecture.lower(), str(config.get("model_type") or "")) if t]

    card_data = ModelCardData(
        license=license_id, library_name="transformers", pipeline_tag=TASK_TYPE, tags=tags,
        datasets=hub_datasets or None, base_model=base_model, model_name=model_name,
        eval_results=results or None, metrics=sorted({r.metric_type for r in results}) or None,
    )

    id2label = {int(k): v for k, v in (config.get("id2label") or ID2LABEL).items()}
    threshold = _number(config.get("detector_threshold"))
    threshold = threshold if threshold is not None else _number(metrics.get("threshold"))
    temperature = _number(config.get("detector_temperature"))
    temperature = temperature if temperature is not None else _number(metrics.get("temperature"))
    image_size = training.get("image_size") or config.get("image_size") or _processor_size(processor)
    hyper = {k: v for k, v in training.items() if v is not None and v != {} and v != []}
    for key in ("learning_rate", "num_train_epochs", "per_device_train_batch_size", "weight_decay", "seed"):
        if key in training_args and key not in hyper:
            hyper[key] = training_args[key]
    processor_class = str(processor.get("image_processor_type") or "the saved image processor")
    plots = [p for p in (metrics.get("plots") or []) if isinstance(p, str) and (model_dir / p).exists()]
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path()),
        repo_id=repo_id or f"<namespace>/{model_name}",
        model_title=model_name,
        architecture=architecture,
        architecture_class=architectures[0] if architectures else architecture,
        parameters=_fmt(metrics.get("parameters")) if metrics.get("parameters") else None,
        labels=[{"id": i, "name": n} for i, n in sorted(id2label.items())],
        threshold=_fmt(threshold, 3) if threshold is not None else "0.500",
        temperature=_fmt(temperature, 3) if temperature is not None else None,
        image_size=image_size,
        license_id=license_id,
        base_model_id=base_model,
        base_model_text=metrics.get("base_model") if metrics.get("base_model") and not base_model else None,
        data_sources=_data_sources(metrics, datasets),
        hyperparameters=[{"name": k, "value": _fmt(v)} for k, v in hyper.items() if k != "recipe"],
        recipe=training.get("recipe"),
        processor_class=processor_class,
        needs_import=remote_code.needs_registration(config, processor),
        custom_model=remote_code.is_custom_model(config),
        shim_file=remote_code.SHIM_FILE,
        missing_package_error=remote_code.MISSING_PACKAGE,
        preprocessing=_preprocessing(processor),
        plots=plots,
        int8_summary=_int8_summary(model_dir),
        leave_out=_leave_out_table(metrics),
        **_evaluation_tables(metrics),
    )


def _int8_summary(model_dir: Path) -> str | None:
    """The int8 model's check, when one is validated for these very weights (hf_detector.quantize)."""
    from ..runtime.files import INT8_DIR, REPORT_FILE, validated_int8

    if validated_int8(model_dir) is None:
        return None
    checks = json.loads((model_dir / INT8_DIR / REPORT_FILE).read_text()).get("checks", {})
    parts = []
    for name, check in checks.items():
        text = (f"on the {name} split its labels agree with fp32 on {check['agreement']:.2%} of "
                f"{check['images']} images ({check['disagreements']} differ)")
        if check.get("auroc_fp32") is not None and check.get("auroc_int8") is not None:
            text += f", AUROC {check['auroc_fp32']:.4f} -> {check['auroc_int8']:.4f}"
        parts.append(text)
    return "; ".join(parts) or None


def _processor_size(processor: dict[str, Any]) -> Any:
    size = processor.get("size") or processor.get("crop_size")
    if isinstance(size, dict):
        return size.get("height") or size.get("shortest_edge") or next(iter(size.values()), None)
    return size


def _preprocessing(processor: dict[str, Any]) -> list[dict[str, str]]:
    keys = ("max_short_side", "reduced_jpeg_quality", "size", "crop_size", "do_center_crop", "do_normalize",
            "image_mean", "image_std", "do_face_crop", "face_align", "face_margin", "face_context", "face_detector",
            "face_detect_size", "do_kalman", "resample", "highpass_gain", "highpass_beside")
    optional = ("highpass_gain", "highpass_beside")
    # the residual options only where they are on (checkpoints before them have no such keys; 0/False = off)
    return [{"name": k, "value": _fmt(processor[k])} for k in keys
            if k in processor and (k not in optional or processor[k])]


def _data_sources(metrics: dict[str, Any], datasets: list[str]) -> list[dict[str, str]]:
    """Sources and licences: `metrics["data_sources"]` when the run recorded them, else the datasets."""
    sources = []
    for item in metrics.get("data_sources") or []:
        if isinstance(item, dict) and item.get("name"):
            sources.append({"name": str(item["name"]), "license": str(item.get("license") or "see source"),
                            "url": str(item.get("url") or ""), "label": str(item.get("label") or ""),
                            "n": _fmt(item.get("n")) if item.get("n") is not None else ""})
    if sources:
        return sources
    for name in datasets:
        hub = _is_hub_id(name)
        sources.append({"name": name, "url": f"https://huggingface.co/datasets/{name}" if hub else "",
                        "license": "as stated on the dataset card" if hub
                        else "as stated by the local source",
                        "label": "real + fake", "n": ""})
    return sources


def write_card(model_dir: Path | str, repo_id: str | None = None) -> Path:
    """Render the card and save it as `model_dir/README.md` (what the Hub and `push_to_hub` show)."""
    path = Path(model_dir) / "README.md"
    build_card(model_dir, repo_id=repo_id).save(path)
    return path
