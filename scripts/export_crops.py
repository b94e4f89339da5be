"""Export the cached face crops and the project's splits to one portable .npz for scripts/recipe_sweep.py.

The crops are the training pipeline's own (hf_detector.training.cache_face_crops: same detector, alignment,
margin and size), stored as JPEG bytes so that the whole dev set fits in ~35 MB and can travel to a GPU
machine; the splits are hf_detector.data.split_faces' indices for several seeds and for each
leave-one-generator-out hold-out, so the sweep trains and tests on exactly the sets `make report` uses.

    python scripts/export_crops.py --data ../shared/data/faces --output runs/crops.npz
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np

from hf_detector.data.datasets import SplitSpec, load_faces, split_faces
from hf_detector.preprocessing.processor import FaceImageProcessor
from hf_detector.training.trainer import cache_face_crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/faces")
    parser.add_argument("--output", default="runs/crops.npz")
    parser.add_argument("--face_margin", type=float, default=-0.25)
    parser.add_argument("--crop_size", type=int, default=128)
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of the stored crops")
    parser.add_argument("--split_seeds", default="42,7,123")
    parser.add_argument("--holdouts", default="sdfd,omi,sg3pool")
    parser.add_argument("--num_proc", type=int, default=2)
    args = parser.parse_args()

    started = time.time()
    dataset = load_faces(args.data)
    processor = FaceImageProcessor(face_margin=args.face_margin, crop_size=args.crop_size)
    dataset = cache_face_crops(dataset, processor, args.num_proc)
    dataset = dataset.add_column("row", list(range(len(dataset))))

    splits: dict[str, dict[str, list[int]]] = {}
    for seed in (int(s) for s in args.split_seeds.split(",")):
        parts = split_faces(dataset, SplitSpec(seed=seed))
        splits[f"seed{seed}"] = {name: list(part["row"]) for name, part in parts.items()}
    for held in (h for h in args.holdouts.split(",") if h):
        parts = split_faces(dataset, SplitSpec(holdout=[held]))
        splits[f"logo_{held}"] = {name: list(part["row"]) for name, part in parts.items()}

    blobs = []
    for crop in dataset["crop"]:
        buffer = io.BytesIO()
        crop.convert("RGB").save(buffer, format="JPEG", quality=args.quality)
        blobs.append(buffer.getvalue())
    meta = {column: list(dataset[column]) for column in ("label", "source", "generator", "crop_method")}
    meta["face_margin"], meta["crop_size"] = args.face_margin, args.crop_size
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.output, blobs=np.array(blobs, dtype=object), meta=json.dumps(meta), splits=json.dumps(splits))
    print(f"{len(blobs)} crops, {sum(map(len, blobs)) / 1e6:.1f} MB, {len(splits)} splits -> {args.output} "
          f"in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
