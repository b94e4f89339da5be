"""Scale-out: sharded batch scoring across `accelerate launch` / `torchrun` processes.

Training needs nothing from this module: `train/train.py` runs unchanged under `accelerate launch` or
`torchrun` (the Trainer wraps the model in DDP, shards the batches, gathers predictions with
`gather_for_metrics`, and `hf_detector.training` writes files from the main process only).

Scoring (`hf-detector predict` / `evaluate` started by a distributed launcher, or `evaluate --streaming`):

- every process loads the detector and scores its share of the inputs: a contiguous slice of the file
  list (`PartialState.split_between_processes`), or, for a dataset streamed with `datasets`
  (`load_dataset(..., streaming=True)`, nothing stored on disk), every `world_size`-th example
  (`split_dataset_by_node(strategy="examples")`, so example `i` is scored by rank `i % world_size`);
- each process appends its rows, each with its global input index, to
  `part-{rank:05d}-of-{world:05d}.jsonl` in the parts directory as they are scored;
- after a barrier the main process merges the parts in input order, checks that every input index is
  there exactly once, and returns the rows (predict) or computes the metric record (evaluate) exactly as
  a single process would.

The parts directory must be visible to the main process: beside `--output`, or `--parts-dir`, on a
shared filesystem when the processes run on several machines; on one machine a temporary directory
chosen by the main process is used when neither is given.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ..data.labels import ID2LABEL, LABEL_ALIASES, DataError, label_to_id
from ..inference.detector import Detector, FileResult, Prediction

# Processes wait for the slowest shard at the final barrier; shards are equal in size, but a generous
# timeout keeps a long screening job on uneven machines from failing at the very end.
BARRIER_TIMEOUT = timedelta(hours=6)


def launched_distributed() -> bool:
    """True under `accelerate launch` / `torchrun` with more than one process (WORLD_SIZE > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


class _CPUDevice:
    """The device of a single process: "cpu", without importing torch for it (the light runtime)."""

    type = "cpu"

    def __str__(self) -> str:
        return "cpu"


_CPU = _CPUDevice()


@dataclass
class Shard:
    """Where this process stands: rank, number of processes, device, and the accelerate state (or None)."""

    rank: int = 0
    world_size: int = 1
    device: Any = field(default_factory=lambda: _CPU)  # a torch.device under a launch
    state: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wait(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()

    def split(self, count: int) -> list[int]:
        """This process's contiguous slice of range(count) (sizes differ by at most one, no padding)."""
        if self.state is None:
            return list(range(count))
        with self.state.split_between_processes(list(range(count))) as mine:
            return list(mine)

    def broadcast(self, value: Any) -> Any:
        if self.state is None:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]


def current_shard() -> Shard:
    """The process's place in a distributed launch (initialises torch.distributed: gloo on CPU, nccl on GPU)."""
    if not launched_distributed():
        return Shard()
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available(), timeout=BARRIER_TIMEOUT)
    return Shard(rank=state.process_index, world_size=state.num_processes, device=state.device, state=state)


def _on_device(model: Any, device: Any) -> Any:
    """`model` run on an accelerator while Detector keeps handing it CPU tensors (torch only when needed)."""
    import torch

    class _OnDevice(torch.nn.Module):
        """Runs the wrapped classifier on an accelerator while Detector keeps handing it CPU tensors."""

        def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
            super().__init__()
            self.inner = model.to(device)
            self.config = model.config
            self.device_ = device

        def forward(self, pixel_values: torch.Tensor) -> Any:
            output = self.inner(pixel_values=pixel_values.to(self.device_))
            output.logits = output.logits.float().cpu()
            return output

    return _OnDevice(model, device).eval()


def load_on_shard(load_detector: Callable[[], Detector], shard: Shard) -> Detector:
    """Load once per process, the main process first (one Hub download per machine), on the shard's device."""
    if shard.state is not None:
        with shard.state.main_process_first():
            detector = load_detector()
    else:
        detector = load_detector()
    if shard.device.type != "cpu" and getattr(detector, "backend", "pytorch") == "pytorch":
        detector.model = _on_device(detector.model, shard.device)  # one GPU per process
    return detector


# -- rows and part files -------------------------------------------------------------------------------
def prediction_row(result: FileResult) -> dict[str, Any]:
    """The row `hf-detector predict` prints for one file (same keys as the single-process CLI)."""
    if result.prediction is None:
        return {"file": result.path, "label": "error", "p_fake": None, "face_found": None, "error": result.error}
    p = result.prediction
    return {"file": result.path, "label": p.label, "p_fake": round(p.p_fake, 6), "face_found": p.face_found,
            "error": None}


def _scored_row(index: int, result: FileResult, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"index": index, "file": result.path, "error": result.error, **extra}
    if result.prediction is not None:
        p = result.prediction
        row.update(label=p.label, p_fake=p.p_fake, probabilities=p.probabilities, face_found=p.face_found,
                   crop_method=p.crop_method)
    return row


def part_path(parts_dir: Path, rank: int, world_size: int) -> Path:
    return parts_dir / f"part-{rank:05d}-of-{world_size:05d}.jsonl"


def resolve_parts_dir(shard: Shard, parts_dir: str | os.PathLike | None,
                      output: str | os.PathLike | None) -> tuple[Path, bool]:
    """(directory, temporary?): --parts-dir, else `<output>.parts`, else a temp dir made by the main process."""
    if parts_dir is not None:
        chosen, temporary = Path(parts_dir), False
    elif output is not None:
        chosen, temporary = Path(f"{output}.parts"), False
    else:
        made = tempfile.mkdtemp(prefix="hf-detector-parts-") if shard.is_main else None
        chosen, temporary = Path(shard.broadcast(made)), True
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen, temporary


def write_part(rows: Iterator[dict[str, Any]], path: Path) -> int:
    """Stream rows to `path` (one JSON object a line, flushed as it goes); renamed into place when complete."""
    partial = path.with_name(path.name + ".partial")
    count = 0
    with open(partial, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            count += 1
    partial.replace(path)
    return count


def merge_parts(parts_dir: Path, world_size: int, expected: int | None = None) -> list[dict[str, Any]]:
    """All processes' rows in input order; every index 0..N-1 exactly once (N = `expected` when known)."""
    rows: list[dict[str, Any]] = []
    for rank in range(world_size):
        path = part_path(parts_dir, rank, world_size)
        if not path.exists():
            raise RuntimeError(f"{path} is missing: process {rank} did not finish, or its parts directory is not "
                               "visible here (several machines need --parts-dir on a shared filesystem)")
        with open(path, encoding="utf-8") as handle:
            rows += [json.loads(line) for line in handle if line.strip()]
    rows.sort(key=lambda row: row["index"])
    indices = [row["index"] for row in rows]
    total = expected if expected is not None else (indices[-1] + 1 if indices else 0)
    if indices != list(range(total)):
        raise RuntimeError(f"merged parts hold {len(indices)} rows ({len(set(indices))} distinct indices) "
                           f"for {total} inputs")
    return rows


def _cleanup(parts_dir: Path, world_size: int, temporary: bool) -> None:
    if temporary:
        shutil.rmtree(parts_dir, ignore_errors=True)
        return
    for rank in range(world_size):
        part_path(parts_dir, rank, world_size).unlink(missing_ok=True)
    try:
        parts_dir.rmdir()
    except OSError:  # not empty (other files): leave it
        pass


# -- predict -------------------------------------------------------------------------------------------
def sharded_predict(paths: Sequence[str], load_detector: Callable[[], Detector], batch_size: int = 16,
                    parts_dir: str | os.PathLike | None = None, keep_parts: bool = False,
                    shard: Shard | None = None) -> list[dict[str, Any]] | None:
    """Score `paths` across the launched processes; the main process returns every row in input order.

    Other processes return None. Rows have the keys of `prediction_row`.
    """
    import sys

    shard = shard or current_shard()
    directory, temporary = resolve_parts_dir(shard, parts_dir, None)
    detector = load_on_shard(load_detector, shard)
    mine = shard.split(len(paths))

    def rows() -> Iterator[dict[str, Any]]:
        results = detector.iter_files([paths[i] for i in mine], batch_size=batch_size)
        for index, result in zip(mine, results, strict=True):
            if result.prediction is None:
                print(f"warning: {result.error}", file=sys.stderr)
            yield {"index": index, **prediction_row(result)}

    write_part(rows(), part_path(directory, shard.rank, shard.world_size))
    shard.wait()
    merged = None
    if shard.is_main:
        merged = [{k: v for k, v in row.items() if k != "index"}
                  for row in merge_parts(directory, shard.world_size, expected=len(paths))]
        if not keep_parts:
            _cleanup(directory, shard.world_size, temporary)
    shard.wait()  # nobody exits (tearing down the process group) before the merge is done
    return merged


# -- evaluate ------------------------------------------------------------------------------------------
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def stream_examples(data: str, shard: Shard, split: str | None = None, revision: str | None = None
                    ) -> Iterator[tuple[int, Any, int, str, str]]:
    """(global index, encoded image, label id, source, name) of this process's examples, streamed.

    `data` is a Hub dataset id or a local imagefolder directory; nothing is downloaded ahead. Images stay
    encoded (bytes or path) so that an unreadable one becomes an error row instead of stopping the stream.
    """
    from datasets import ClassLabel, load_dataset
    from datasets import Image as ImageFeature
    from datasets.distributed import split_dataset_by_node

    if os.path.isdir(data):
        stream = load_dataset("imagefolder", data_dir=data, split=split or "train", streaming=True)
    elif HUB_ID.fullmatch(data):
        stream = load_dataset(data, revision=revision, split=split or "train", streaming=True)
    else:
        raise DataError(f"{data}: no such directory, and not a Hub dataset id (namespace/name)")
    features = stream.features or {}
    image_column = next((c for c in ("image", "img", "file") if c in features), "image")
    if image_column in features:
        stream = stream.cast_column(image_column, ImageFeature(decode=False))
    label_feature = features.get("label")
    names = label_feature.names if isinstance(label_feature, ClassLabel) else None
    if shard.world_size > 1:
        stream = split_dataset_by_node(stream, rank=shard.rank, world_size=shard.world_size, strategy="examples")
    for local, example in enumerate(stream):
        index = local * shard.world_size + shard.rank
        if image_column not in example or "label" not in example:
            raise DataError(f"{data}: examples need 'image' and 'label' columns (got {sorted(example)})")
        raw = example["label"]
        raw = names[raw] if names is not None and isinstance(raw, int) else raw
        key = LABEL_ALIASES.get(str(raw).strip().lower())
        if key is None:
            raise DataError(f"unknown label {raw!r}: expected real/fake")
        label = label_to_id(key)
        image = example[image_column]
        encoded = (image.get("bytes") or image.get("path")) if isinstance(image, dict) else image
        name = (image.get("path") if isinstance(image, dict) else None) or f"{data}[{index}]"
        yield index, encoded, label, str(example.get("source") or ID2LABEL[label]), str(name)


def _labelled_items(data: str, shard: Shard, streaming: bool, split: str | None, revision: str | None,
                    ) -> tuple[Iterator[tuple[int, Any, int, str, str]], int | None]:
    """This process's (index, item, label, source, name) and the total count when known up front."""
    if os.path.isdir(data) and not streaming:
        from .evaluate import labelled_files

        paths, labels, sources = labelled_files(data)
        mine = shard.split(len(paths))
        return ((i, paths[i], labels[i], sources[i], paths[i]) for i in mine), len(paths)
    if not streaming and not os.path.isdir(data):
        from ..data.datasets import load_faces

        dataset = load_faces(data, revision=revision, split=split)
        mine = shard.split(len(dataset))
        part = dataset.select(mine)  # rows decoded one at a time while iterating
        return ((i, row["image"], row["label"], row["source"], f"{data}[{i}]")
                for i, row in zip(mine, part, strict=True)), len(dataset)
    return stream_examples(data, shard, split=split, revision=revision), None


def _batched(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Replay:
    """Stands in for a Detector in `evaluate_items`: yields the merged results of all processes."""

    def __init__(self, results: list[FileResult], threshold: float, name: str) -> None:
        self.results, self.threshold, self.name = results, threshold, name

    def iter_files(self, items: Sequence[Any], batch_size: int = 16, transform: Any = None
                   ) -> Iterator[FileResult]:
        return iter(self.results)


def record_from_rows(rows: list[dict[str, Any]], threshold: float, model_name: str) -> dict[str, Any]:
    """The metric record of `evaluation.evaluate_items` built from merged part rows."""
    from .evaluate import evaluate_items

    results = []
    for row in rows:
        prediction = None
        if row.get("error") is None:
            prediction = Prediction(label=row["label"], p_fake=row["p_fake"], probabilities=row["probabilities"],
                                    threshold=threshold, face_found=row["face_found"],
                                    crop_method=row["crop_method"])
        results.append(FileResult(row["file"], prediction, row.get("error")))
    return evaluate_items(_Replay(results, threshold, model_name), [row["file"] for row in rows],
                          [row["label_id"] for row in rows], [row["source"] for row in rows], progress=False)


def sharded_evaluate(data: str, load_detector: Callable[[], Detector], output: str | None = None,
                     batch_size: int = 16, streaming: bool = False, split: str | None = None,
                     revision: str | None = None, plots: bool = True, parts_dir: str | os.PathLike | None = None,
                     keep_parts: bool = False, shard: Shard | None = None) -> dict[str, Any] | None:
    """`evaluation.evaluate` across the launched processes (or streamed); the main process gets the record.

    Metrics are computed once, on the merged predictions of every example, never averaged per process.
    """
    shard = shard or current_shard()
    directory, temporary = resolve_parts_dir(shard, parts_dir, output)
    detector = load_on_shard(load_detector, shard)
    started = time.time()  # scoring time, like evaluation.evaluate (loading excluded)
    items, expected = _labelled_items(data, shard, streaming, split, revision)

    def rows() -> Iterator[dict[str, Any]]:
        for batch in _batched(items, batch_size * 4):
            results = detector.iter_files([item for _, item, _, _, _ in batch], batch_size=batch_size)
            for (index, _, label, source, name), result in zip(batch, results, strict=True):
                result.path = name
                yield _scored_row(index, result, label_id=label, source=source)

    write_part(rows(), part_path(directory, shard.rank, shard.world_size))
    shard.wait()
    record = None
    if shard.is_main:
        merged = merge_parts(directory, shard.world_size, expected=expected)
        if not merged:
            raise DataError(f"{data}: no examples")
        record = record_from_rows(merged, detector.threshold, detector.name)
        references, scores = record.pop("_scores")
        seconds = time.time() - started
        record.update(seconds=round(seconds, 2), images_per_second=round(len(merged) / max(seconds, 1e-9), 2),
                      processes=shard.world_size, streaming=bool(streaming), data=str(data))
        if output:
            from .evaluate import write_plots

            out = Path(output)
            out.parent.mkdir(parents=True, exist_ok=True)
            if plots:
                record["plots"] = write_plots(np.asarray(references), np.asarray(scores), detector.threshold, out)
            out.write_text(json.dumps(record, indent=2))
        if not keep_parts:
            _cleanup(directory, shard.world_size, temporary)
    shard.wait()
    return record
