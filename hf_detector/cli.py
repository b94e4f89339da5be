"""`hf-detector` command line: argument parsing only; the work happens in the package."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence

from .data.extras import MissingExtra, require

SUBCOMMANDS_HELP = "train | evaluate | predict | app | export | quantize | push | push-space"
# What each command needs beyond the light install (hf_detector.data.extras): (purpose, extra, modules).
TRAIN_NEEDS = ("training", "train", "torch", "transformers", "datasets", "accelerate")
EXPORT_NEEDS = ("ONNX export", "torch", "torch", "transformers")
QUANTIZE_NEEDS = ("int8 quantisation", "train", "torch", "transformers", "datasets")
SHARDED_NEEDS = ("a sharded run (accelerate launch / torchrun)", "train", "torch", "accelerate")
STREAMING_NEEDS = ("--streaming", "train", "datasets")


def _pixels(check: str):
    """argparse type running the processor's own check (`processing.<check>`): a bad value is a usage error."""
    def parse(text: str) -> int:
        from .preprocessing import core as processing  # the checks without torch (a light CLI start)

        try:
            return getattr(processing, check)(int(text))
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return parse


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="checkpoint directory or Hub repo id (default: the bundled model)")
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of --model")
    parser.add_argument("--threshold", type=float, default=None, help="decision threshold on p(fake)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--backend", choices=["auto", "pytorch", "onnx", "int8"], default="auto",
                        help="auto (default): the checkpoint's int8 model where it was validated for its "
                             "weights, else ONNX Runtime fp32 (docs/performance.md); pytorch: plain eager fp32")
    parser.add_argument("--face-detect-size", type=_pixels("checked_detect_size"), default=None, metavar="PIXELS",
                        help="longest side the face detector searches (default: the model's, 640). Smaller "
                             "shifts crops slightly and, with the coarse-first search, saves little (docs/performance.md)")
    parser.add_argument("--max-short-side", type=_pixels("checked_short_side"), default=None, metavar="PIXELS",
                        help="downscale inputs whose shorter side is longer (default: the model's, 256 = the "
                             "resolution it was trained at; 0 = keep native resolution)")


def _load_detector(args: argparse.Namespace):
    from .inference.detector import Detector

    return Detector.from_pretrained(args.model, revision=args.revision, threshold=args.threshold,
                                    backend=getattr(args, "backend", "auto"),
                                    face_detect_size=getattr(args, "face_detect_size", None),
                                    max_short_side=getattr(args, "max_short_side", None))


def _add_shard_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parts-dir", default=None,
                        help="under accelerate launch / torchrun: where each process writes its part "
                             "(shared filesystem across machines; default beside --output, else a temp dir)")


def run_predict(args: argparse.Namespace) -> int:
    from .evaluation.sharded import launched_distributed
    from .inference.detector import expand_paths

    if launched_distributed():  # accelerate launch / torchrun: each process scores a shard, rank 0 prints all
        require(*SHARDED_NEEDS)
        return _run_predict_sharded(args)
    detector = _load_detector(args)
    paths = expand_paths(args.paths)
    if not paths:
        print("error: no image files found in the given paths", file=sys.stderr)
        return 2
    rows = []
    for result in detector.iter_files(paths, batch_size=args.batch_size):
        if result.prediction is None:
            rows.append({"file": result.path, "label": "error", "p_fake": None, "face_found": None,
                         "error": result.error})
            print(f"warning: {result.error}", file=sys.stderr)
        else:
            p = result.prediction
            rows.append({"file": result.path, "label": p.label, "p_fake": round(p.p_fake, 6),
                         "face_found": p.face_found, "error": None})
            for note in p.notes:  # e.g. only the first frame of an animation was scored
                print(f"note: {result.path}: {note}", file=sys.stderr)
    sys.stdout.write(format_rows(rows, args.format))
    return 1 if all(r["error"] for r in rows) else 0


def _run_predict_sharded(args: argparse.Namespace) -> int:
    from .evaluation.sharded import sharded_predict
    from .inference.detector import expand_paths

    paths = expand_paths(args.paths)
    if not paths:
        print("error: no image files found in the given paths", file=sys.stderr)
        return 2
    rows = sharded_predict(paths, lambda: _load_detector(args), batch_size=args.batch_size,
                           parts_dir=args.parts_dir)
    if rows is None:  # not the main process
        return 0
    sys.stdout.write(format_rows(rows, args.format))
    return 1 if all(r["error"] for r in rows) else 0


def format_rows(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["file", "label", "p_fake", "face_found", "error"])
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    width = max([len("file")] + [len(r["file"]) for r in rows])
    lines = [f"{'file':<{width}}  label  p_fake  face"]
    for r in rows:
        if r["error"]:
            lines.append(f"{r['file']:<{width}}  error  {r['error']}")
        else:
            lines.append(f"{r['file']:<{width}}  {r['label']:<5}  {r['p_fake']:.4f}  {'yes' if r['face_found'] else 'no'}")
    return "\n".join(lines) + "\n"


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.evaluate import evaluate
    from .evaluation.sharded import launched_distributed, sharded_evaluate

    if launched_distributed() or args.streaming:  # shards across processes; streams with `datasets`
        require(*(SHARDED_NEEDS if launched_distributed() else STREAMING_NEEDS))
        record = sharded_evaluate(args.data, lambda: _load_detector(args), output=args.output,
                                  batch_size=args.batch_size, streaming=args.streaming, split=args.split,
                                  parts_dir=args.parts_dir)
        if record is None:  # not the main process
            return 0
    else:
        record = evaluate(_load_detector(args), args.data, output=args.output, batch_size=args.batch_size)
    keys = ("accuracy", "balanced_accuracy", "roc_auc", "average_precision", "f1", "ece")
    print(", ".join(f"{k} {record[k]:.4f}" for k in keys if isinstance(record.get(k), float)))
    for name, row in sorted(record.get("per_source", {}).items()):
        print(f"  {name:<16} n={row['n']:<5} accuracy {row['accuracy']:.3f}  "
              f"predicted fake {row['fraction_predicted_fake']:.3f}")
    from .evaluation.metrics import hardest_source_pair

    pairs = record.get("source_pairs_auroc", {})
    if sum(len(row) for row in pairs.values()) > 1:
        auroc, real, fake = hardest_source_pair(pairs)
        print(f"  hardest pair: {real} (real) vs {fake} (fake), AUROC {auroc:.3f}")
    if record["n_errors"]:
        print(f"{record['n_errors']} unreadable files skipped (listed in the JSON)", file=sys.stderr)
    print(f"{record['n_images']} images in {record['seconds']:.1f} s ({record['images_per_second']:.1f} images/s)"
          + (f"; wrote {args.output}" if args.output else ""))
    return 0


def run_quantize(args: argparse.Namespace) -> int:
    from pathlib import Path

    require(*QUANTIZE_NEEDS)
    from .inference.detector import Detector
    from .inference.int8 import QuantizationRefused, crops_of, quantize_checkpoint, training_split_files

    folder = Path(args.model)
    if not (folder / "model.safetensors").is_file():
        print(f"error: {args.model}: not a local checkpoint directory with model.safetensors", file=sys.stderr)
        return 2
    splits = training_split_files(folder, args.data, args.validation_fraction, args.test_fraction, args.split_seed)
    if "validation" not in splits or "test" not in splits:
        print("error: --data needs enough images for a validation and a test split", file=sys.stderr)
        return 2
    detector = Detector.from_pretrained(str(folder))  # its face stage frames the crops; its fp32 model is the reference
    (validation, validation_labels), (test, test_labels) = splits["validation"], splits["test"]
    try:
        report = quantize_checkpoint(folder, crops_of(detector, validation), crops_of(detector, test), test_labels,
                                     validation_labels, model=detector.model, threshold=detector.threshold)
    except QuantizationRefused as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"kept {folder / 'onnx' / 'model_int8.onnx'}: {report.summary()}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    require(*EXPORT_NEEDS)
    from .inference.export import ExportError, export_checkpoint

    try:
        report = export_checkpoint(args.model)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {report.parent}: {', '.join(sorted(p.name for p in report.parent.glob('*.onnx')))}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    require(*TRAIN_NEEDS)
    from .training.trainer import main as train_main

    train_main(args.train_args)
    return 0


def run_app(args: argparse.Namespace) -> int:
    from .app.ui import main as app_main  # gradio: imported only for this command

    app_main(args.app_args, prog="hf-detector app")
    return 0


def build_parser(with_hub: bool = True) -> argparse.ArgumentParser:
    """The `hf-detector` parser; `with_hub=False` leaves out push / push-space (importing huggingface_hub for
    them costs every predict a few tenths of a second)."""
    parser = argparse.ArgumentParser(prog="hf-detector", description="Real vs AI-generated face detector.")
    sub = parser.add_subparsers(dest="command", required=True, metavar=SUBCOMMANDS_HELP)

    train = sub.add_parser("train", help="train a model (same arguments as train/train.py)", add_help=False)
    train.add_argument("train_args", nargs=argparse.REMAINDER)
    train.set_defaults(func=run_train)

    predict = sub.add_parser("predict", help="classify image files and folders")
    predict.add_argument("paths", nargs="+", help="image files or folders")
    predict.add_argument("--format", choices=["table", "csv", "json"], default="table")
    _add_model_args(predict)
    _add_shard_args(predict)
    predict.set_defaults(func=run_predict)

    evaluate = sub.add_parser("evaluate", help="metrics on a labelled folder (real/, fake/) or Hub dataset")
    evaluate.add_argument("--data", required=True, help="imagefolder directory or Hub dataset id")
    evaluate.add_argument("--output", default=None, help="metrics JSON path (plots are written beside it)")
    _add_model_args(evaluate)
    evaluate.add_argument("--streaming", action="store_true",
                          help="stream the data with `datasets` (nothing stored; for sets larger than the disk)")
    evaluate.add_argument("--split", default=None, help="dataset split to evaluate (default: train)")
    _add_shard_args(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    app = sub.add_parser("app", help="start the Gradio app (--port, --host, --model, --revision; "
                                     "default: the bundled model)", add_help=False)
    app.add_argument("app_args", nargs=argparse.REMAINDER)
    app.set_defaults(func=run_app)

    quantize = sub.add_parser("quantize", help="build a checkpoint's int8 model; kept only if it predicts like fp32")
    quantize.add_argument("--model", required=True, help="local checkpoint directory (the int8 model goes inside)")
    quantize.add_argument("--data", required=True, help="the imagefolder it was trained on: calibrated on the "
                                                         "validation split, checked on the test split")
    quantize.add_argument("--validation-fraction", type=float, default=0.15, help="as in training (default 0.15)")
    quantize.add_argument("--test-fraction", type=float, default=0.15, help="as in training (default 0.15)")
    quantize.add_argument("--split-seed", type=int, default=42, help="as in training (default 42)")
    quantize.set_defaults(func=run_quantize)

    export = sub.add_parser("export", help="write a checkpoint's fp32 ONNX export (classifier + face detector), "
                                           "verified against its weights: the light runtime runs it")
    export.add_argument("--model", required=True, help="local checkpoint directory (the files go into DIR/onnx)")
    export.set_defaults(func=run_export)

    if not with_hub:
        return parser
    try:
        from .hub import push as hub
    except ImportError:
        hub = None
    if hub is not None and hasattr(hub, "register_commands"):
        hub.register_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # everything after `train` goes to HfArgumentParser untouched
        try:
            require(*TRAIN_NEEDS)
        except MissingExtra as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        from .training.trainer import main as train_main

        train_main(argv[1:])
        return 0
    if argv[:1] == ["app"]:  # the app's own flags (--port, --host, --model, --revision, --help)
        from .app.ui import main as app_main

        app_main(argv[1:], prog="hf-detector app")
        return 0
    # push / push-space (and the full help) need the Hub client; predict and evaluate start without it
    light = bool(argv) and argv[0] in ("predict", "evaluate", "export", "quantize")
    args = build_parser(with_hub=not light).parse_args(argv)
    from .data.images import ImageLoadError
    from .data.labels import DataError
    from .inference.detector import ModelLoadError
    from .runtime.onnx import BackendUnavailable

    try:
        return int(args.func(args) or 0)
    except (ModelLoadError, DataError, ImageLoadError, BackendUnavailable, MissingExtra) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
