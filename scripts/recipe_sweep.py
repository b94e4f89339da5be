"""Recipe search: many short trainings side by side on the cached face crops (a GPU makes it minutes).

This is a search tool, not the training pipeline (that is `hf-detector train`, the Trainer). It reuses
the pipeline's parts -- the exported crops and splits (scripts/export_crops.py), the augmentation
(hf_detector.preprocessing.augmentation), the model registry, the loss weighting (hf_detector.data.weighting), the threshold
rule (hf_detector.evaluation.metrics.choose_threshold) -- in a plain torch loop, so that each lever of issue 3 can be
scored on what matters: the in-distribution test split over several split seeds (the FFHQ-style reals are
only ~16 per test split, so one split is noise), every real source's false-positive rate, and
leave-one-generator-out. The winning recipe is then trained with the real CLI (train/configs/*.json).

    python scripts/recipe_sweep.py --crops runs/crops.npz --output runs/sweep --configs base,fake_degrade
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader, Dataset
from transformers import get_cosine_schedule_with_warmup

from hf_detector.data.labels import FAKE_ID, REAL_ID
from hf_detector.data.weighting import class_weights_for, source_balanced_weights
from hf_detector.evaluation.metrics import choose_threshold
from hf_detector.models import ModelSpec, create_model
from hf_detector.preprocessing.augmentation import AugmentationConfig, TrainAugmentation
from hf_detector.preprocessing.processor import FaceImageProcessor


@dataclasses.dataclass
class Recipe:
    """The levers of train/configs/default.json that act after the face stage."""

    epochs: float = 3
    learning_rate: float = 3e-4
    batch_size: int = 32
    warmup_steps: int = 30
    image_size: int = 128
    label_smoothing: float = 0.1
    source_balance: bool = True
    model: str = "mobilenet_v2"
    depth_multiplier: float = 1.0
    freeze_backbone: bool = False
    augment: dict[str, Any] = dataclasses.field(default_factory=dict)  # AugmentationConfig overrides
    no_augment: bool = False


RECIPES: dict[str, dict[str, Any]] = {
    "base": {},
    "epochs5": {"epochs": 5},
    "fake_degrade": {"augment": {"fake_degrade": 0.5}},
    "fake_degrade_sharpen": {"augment": {"fake_degrade": 0.5, "real_sharpen": 0.3}},
    "real_sharpen": {"augment": {"real_sharpen": 0.3}},
    "no_source_balance": {"source_balance": False},
    "lr1e-3": {"learning_rate": 1e-3},
    "strong_degrade": {"augment": {"rescale": 0.8, "blur": 0.8, "jpeg": 0.8}},
    "light_degrade": {"augment": {"rescale": 0.25, "blur": 0.25, "jpeg": 0.25}},
    "size160": {"image_size": 160},
    "size224": {"image_size": 224},
    "no_augment": {"no_augment": True},
    "no_smoothing": {"label_smoothing": 0.0},
    "fake_degrade_epochs5": {"epochs": 5, "augment": {"fake_degrade": 0.5}},
}


class CropSet(Dataset):
    def __init__(self, blobs: list[bytes], labels: list[int], weights: np.ndarray | None,
                 processor: FaceImageProcessor, augmentation: TrainAugmentation | None) -> None:
        self.blobs, self.labels, self.weights = blobs, labels, weights
        self.processor, self.augmentation = processor, augmentation

    def __len__(self) -> int:
        return len(self.blobs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, float]:
        image = Image.open(io.BytesIO(self.blobs[index])).convert("RGB")
        if self.augmentation is not None:
            image = self.augmentation(image, self.labels[index])
        weight = 1.0 if self.weights is None else float(self.weights[index])
        return self.processor.finish_one(image), self.labels[index], weight


def _worker_init(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    dataset: CropSet = info.dataset
    torch.set_num_threads(1)
    if dataset.augmentation is not None:  # decorrelate workers; persistent workers keep drawing across epochs
        dataset.augmentation.reseed(info.seed % 2**31)


def _scores(model: torch.nn.Module, pixels: torch.Tensor, device: torch.device) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for start in range(0, len(pixels), 256):
            batch = pixels[start:start + 256].to(device, non_blocking=True).contiguous(
                memory_format=torch.channels_last)
            out.append(torch.softmax(model(pixel_values=batch).logits.float(), -1)[:, FAKE_ID].cpu())
    return torch.cat(out).numpy()


def _per_source(scores: np.ndarray, labels: np.ndarray, sources: np.ndarray, threshold: float) -> dict:
    result = {}
    for name in sorted(set(sources)):
        mask = sources == name
        result[name] = {"n": int(mask.sum()), "label": int(labels[mask][0]),
                        "called_fake": int((scores[mask] >= threshold).sum())}
    return result


def worst_source_threshold(scores: np.ndarray, labels: np.ndarray, sources: np.ndarray) -> float:
    """Threshold maximising the worst per-source accuracy (reals: not called fake; fakes: detected)."""
    candidates = np.unique(np.concatenate([scores, [0.5]]))
    best, best_value = 0.5, -1.0
    for t in candidates:
        worst = min(np.mean((scores[sources == s] >= t) == bool(labels[sources == s][0])) for s in set(sources))
        if worst > best_value:
            best, best_value = float(t), worst
    return best


def train_and_score(recipe: Recipe, blobs: list[bytes], meta: dict, split: dict[str, list[int]],
                    device: torch.device, workers: int, seed: int) -> dict:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    labels_all, sources_all = np.asarray(meta["label"]), np.asarray(meta["source"])
    processor = FaceImageProcessor(size=recipe.image_size)
    train_ids = split["train"]
    train_labels, train_sources = labels_all[train_ids].tolist(), sources_all[train_ids].tolist()
    weights = source_balanced_weights(train_labels, train_sources) if recipe.source_balance else None
    augmentation = None if recipe.no_augment else TrainAugmentation(AugmentationConfig(**recipe.augment), seed)
    train_set = CropSet([blobs[i] for i in train_ids], train_labels, weights, processor, augmentation)
    loader = DataLoader(train_set, batch_size=recipe.batch_size, shuffle=True, num_workers=workers,
                        worker_init_fn=_worker_init, persistent_workers=workers > 0, pin_memory=device.type == "cuda",
                        drop_last=False, generator=torch.Generator().manual_seed(seed))

    model = create_model(ModelSpec(name=recipe.model, image_size=recipe.image_size,
                                   depth_multiplier=recipe.depth_multiplier)).to(device)
    model = model.to(memory_format=torch.channels_last)
    if recipe.freeze_backbone:
        for name, parameter in model.named_parameters():
            parameter.requires_grad = name.startswith("classifier")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=recipe.learning_rate,
                                  weight_decay=0.0)
    total_steps = math.ceil(recipe.epochs * len(loader))
    scheduler = get_cosine_schedule_with_warmup(optimizer, recipe.warmup_steps, total_steps)
    class_weights = class_weights_for(train_labels).to(device)

    started, step, seen = time.time(), 0, 0
    model.train()
    while step < total_steps:
        for pixels, labels, sample_weight in loader:
            pixels = pixels.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            labels, sample_weight = labels.to(device), sample_weight.to(device, torch.float32)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(pixel_values=pixels).logits.float()
            if recipe.source_balance:  # as DetectorTrainer.compute_loss
                per_sample = torch.nn.functional.cross_entropy(logits, labels, reduction="none",
                                                               label_smoothing=recipe.label_smoothing)
                loss = (per_sample * sample_weight).sum() / sample_weight.sum()
            else:
                loss = torch.nn.functional.cross_entropy(logits, labels, weight=class_weights,
                                                         label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            seen += len(labels)
            if step >= total_steps:
                break
            model.train()
    train_seconds = time.time() - started

    def pixels_of(ids: list[int]) -> torch.Tensor:
        return torch.stack([processor.finish_one(Image.open(io.BytesIO(blobs[i])).convert("RGB")) for i in ids])

    result: dict[str, Any] = {"train_seconds": round(train_seconds, 1), "images_per_second": round(seen / train_seconds, 1)}
    val_ids, test_ids = split["validation"], split["test"]
    val_scores = _scores(model, pixels_of(val_ids), device)
    threshold = choose_threshold(labels_all[val_ids], val_scores)
    worst_threshold = worst_source_threshold(val_scores, labels_all[val_ids], sources_all[val_ids])
    test_scores = _scores(model, pixels_of(test_ids), device)
    test_labels, test_sources = labels_all[test_ids], sources_all[test_ids]
    result.update(threshold=threshold, worst_threshold=worst_threshold,
                  test_auroc=float(roc_auc_score(test_labels, test_scores)),
                  test_per_source=_per_source(test_scores, test_labels, test_sources, threshold),
                  test_per_source_worst=_per_source(test_scores, test_labels, test_sources, worst_threshold))
    if "heldout" in split:
        held_ids = split["heldout"]
        held_scores = _scores(model, pixels_of(held_ids), device)
        reals = test_labels == REAL_ID
        both = np.concatenate([test_scores[reals], held_scores])
        truth = np.concatenate([np.zeros(reals.sum()), np.ones(len(held_scores))])
        result.update(heldout_auroc=float(roc_auc_score(truth, both)),
                      heldout_detected=float(np.mean(held_scores >= threshold)))
    del loader
    return result


def summarise(runs: list[dict]) -> dict[str, Any]:
    """Per recipe: mean test AUROC over seeds, pooled per-source rates, LOGO AUROC per generator."""
    summary: dict[str, Any] = {}
    by_recipe: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        by_recipe[run["recipe"]].append(run)
    for name, items in by_recipe.items():
        full = [r for r in items if r["split"].startswith("seed")]
        row: dict[str, Any] = {"runs": len(items)}
        if full:
            row["test_auroc"] = float(np.mean([r["test_auroc"] for r in full]))
            for key, suffix in (("test_per_source", ""), ("test_per_source_worst", "_worst")):
                pooled: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
                for r in full:
                    for source, s in r[key].items():
                        pooled[source][0] += s["called_fake"]
                        pooled[source][1] += s["n"]
                        pooled[source][2] = s["label"]
                rates = {s: c / n if lab == FAKE_ID else c / n for s, (c, n, lab) in pooled.items()}
                row[f"called_fake{suffix}"] = {s: round(v, 3) for s, v in sorted(rates.items())}
                real_rates = [rates[s] for s, (_, _, lab) in pooled.items() if lab == REAL_ID]
                fake_rates = [rates[s] for s, (_, _, lab) in pooled.items() if lab == FAKE_ID]
                row[f"worst_real_fpr{suffix}"] = round(max(real_rates), 3) if real_rates else None
                row[f"worst_fake_detected{suffix}"] = round(min(fake_rates), 3) if fake_rates else None
        for r in items:
            if "heldout_auroc" in r:
                row[f"{r['split']}_auroc"] = round(r["heldout_auroc"], 3)
                row[f"{r['split']}_detected"] = round(r["heldout_detected"], 3)
        summary[name] = row
    return summary


def render_markdown(runs: list[dict], source: str) -> str:
    """docs/recipe_search.md from the runs (JSON lines): every number computed here, none typed."""
    summary = summarise(runs)
    common = sorted(set.intersection(*[{r["split"] for r in runs if r["recipe"] == name and r["split"].startswith("seed")}
                                       for name in summary]))

    def common_auroc(name: str) -> float:
        return float(np.mean([r["test_auroc"] for r in runs if r["recipe"] == name and r["split"] in common]))

    def cell(row: dict, key: str, digits: int = 2) -> str:
        value = row.get(key)
        return "—" if value is None else f"{value:.{digits}f}"

    def logo(row: dict, generator: str) -> str:
        if f"logo_{generator}_auroc" not in row:
            return "—"
        return f"{row[f'logo_{generator}_auroc']:.2f} / {row[f'logo_{generator}_detected']:.2f}"

    lines = [
        "# Recipe search (issue 3)",
        "",
        f"Generated by `python scripts/recipe_sweep.py --render {source} --markdown docs/recipe_search.md` from the "
        "runs in `docs/recipe_search/` (each a JSON line written by the sweep). The runs were made on a lent H100 "
        "with `scripts/export_crops.py` + `scripts/recipe_sweep.py`: the pipeline's own crops, splits, augmentation, "
        "model and loss weighting in a plain torch loop (bf16 autocast), 3 epochs of the default recipe unless the "
        "recipe says otherwise. One run per split; a time budget cut some recipes short (— = not run).",
        "",
        f"- **AUROC (seeds {', '.join(s[4:] for s in common)})**: mean in-distribution test AUROC over the split "
        "seeds every recipe ran, so rows compare like with like; **all seeds**: over every seed the recipe ran.",
        "- **called fake**: pooled over the seed splits, at the validation-chosen threshold (Youden's J, as the "
        "Trainer does); **worst-source threshold**: the same models with the threshold that maximises the worst "
        "per-source accuracy on validation.",
        "- **LOGO**: the generator left out of training; AUROC of its fakes against the test reals / fraction detected.",
        "",
        f"| recipe | changes | AUROC (seeds {'+'.join(s[4:] for s in common)}) | AUROC (all seeds) | ffhq-wfir called "
        "fake | worst real source called fake | worst generator detected | worst-source threshold: ffhq-wfir / worst "
        "generator | LOGO sdfd | LOGO omi | LOGO sg3pool |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in summary.items():
        changes = json.dumps(RECIPES.get(name, {})).replace("|", "/") if RECIPES.get(name) else "default recipe"
        ffhq = row.get("called_fake", {}).get("ffhq-wfir")
        ffhq_worst = row.get("called_fake_worst", {}).get("ffhq-wfir")
        worst_pair = "—" if ffhq_worst is None else f"{ffhq_worst:.2f} / {row['worst_fake_detected_worst']:.2f}"
        lines.append(f"| {name} | `{changes}` | {common_auroc(name):.3f} | {cell(row, 'test_auroc', 3)} | "
                     f"{'—' if ffhq is None else f'{ffhq:.2f}'} | {cell(row, 'worst_real_fpr')} | "
                     f"{cell(row, 'worst_fake_detected')} | {worst_pair} | {logo(row, 'sdfd')} | {logo(row, 'omi')} | "
                     f"{logo(row, 'sg3pool')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", default="runs/crops.npz")
    parser.add_argument("--output", default="runs/sweep")
    parser.add_argument("--configs", default="base", help=f"comma-separated, of {sorted(RECIPES)}")
    parser.add_argument("--splits", default="seed42,seed7,seed123,logo_sdfd,logo_omi,logo_sg3pool")
    parser.add_argument("--time_budget", type=float, default=1e9, help="seconds; later runs are skipped")
    parser.add_argument("--workers", type=int, default=max(0, (os.cpu_count() or 1) - 2))
    parser.add_argument("--max_train", type=int, default=None, help="tiny smoke runs")
    parser.add_argument("--epochs", type=float, default=None, help="override every recipe's epochs")
    parser.add_argument("--render", nargs="*", help="runs.jsonl files to summarise instead of training")
    parser.add_argument("--markdown", default="docs/recipe_search.md")
    args = parser.parse_args()

    if args.render:
        runs = [json.loads(line) for path in args.render for line in Path(path).read_text().splitlines() if line]
        Path(args.markdown).write_text(render_markdown(runs, " ".join(args.render)))
        print(f"{len(runs)} runs -> {args.markdown}")
        return

    started = time.time()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    data = np.load(args.crops, allow_pickle=True)  # our own export: object array of JPEG bytes
    blobs, meta, splits = list(data["blobs"]), json.loads(str(data["meta"])), json.loads(str(data["splits"]))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    skipped: list[str] = []
    for recipe_name in args.configs.split(","):
        overrides = dict(RECIPES[recipe_name])
        if args.epochs is not None:
            overrides["epochs"] = args.epochs
        recipe = Recipe(**overrides)
        for split_name in args.splits.split(","):
            if time.time() - started > args.time_budget:
                skipped.append(f"{recipe_name}/{split_name}")
                continue
            split = dict(splits[split_name])
            if args.max_train:
                split = {k: v[: args.max_train] if k == "train" else v[: args.max_train // 2] for k, v in split.items()}
            seed = int(split_name[4:]) if split_name.startswith("seed") else 42
            result = train_and_score(recipe, blobs, meta, split, device, args.workers, seed)
            result.update(recipe=recipe_name, split=split_name)
            runs.append(result)
            print(json.dumps({k: v for k, v in result.items() if not k.startswith("test_per_source")}), flush=True)
            with (out / "runs.jsonl").open("a") as handle:
                handle.write(json.dumps(result) + "\n")
    summary = summarise(runs)
    (out / "summary.json").write_text(json.dumps({"device": str(device), "summary": summary, "skipped": skipped,
                                                  "recipes": {n: RECIPES[n] for n in args.configs.split(",")},
                                                  "seconds": round(time.time() - started)}, indent=1))
    for name, row in summary.items():
        print(name, json.dumps(row))
    print(f"done in {time.time() - started:.0f} s on {device}; skipped {len(skipped)} runs")


if __name__ == "__main__":
    main()
