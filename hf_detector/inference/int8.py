"""Static int8 quantisation of a checkpoint's classifier, kept only where it predicts like fp32.

    calibrate  activation ranges from validation crops (the split training chose its threshold on)
    check      every test crop, and every validation crop not calibrated on, scored by eager fp32 PyTorch
               and by the int8 model: on each of the two sets the labels at the checkpoint's threshold
               must agree on >= 99.5 % of the images and AUROC may move by <= 0.005
    write      `onnx/model_int8.onnx` + `onnx/quantization.json` inside the checkpoint, only when the
               check passes (a refusal writes nothing)

`hf_detector.inference.backends` runs the int8 model by default, and only while `quantization.json` records a pass
for the very `model.safetensors` beside it (its sha256): retrained or edited weights fall back to ONNX
fp32 instead of running a stale int8 file.

The recipe is ONNX Runtime's QDQ format, per-channel int8 weights and uint8 activations, with the
layers that lose most when quantised kept in fp32 (docs/performance.md has the sweep): the depthwise
3x3 convolutions (one filter per channel, so per-channel ranges fit them badly), the first convolution
(it sees raw normalised pixels) and the classifier head (its logits are the answer).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..runtime.files import INT8_DIR, INT8_FILE, REPORT_FILE, validated_int8, weights_sha256  # noqa: F401

MIN_AGREEMENT = 0.995  # labels at the threshold: int8 vs fp32 (issue 6)
MAX_AUROC_SHIFT = 0.005
CALIBRATION_IMAGES = 160  # enough for stable ranges; more let outlier crops widen them (the sweep)
RECIPE = "onnxruntime QDQ static, per-channel int8 weights, uint8 activations, MinMax calibration; fp32 kept for depthwise convs, the first conv and the classifier head"


class QuantizationRefused(RuntimeError):
    """The int8 model does not predict like fp32 (or cannot be built); the message says by how much."""


@dataclass
class Agreement:
    """int8 vs fp32 on one set of images, at the checkpoint's threshold."""

    images: int
    disagreements: int
    agreement: float
    auroc_fp32: float | None
    auroc_int8: float | None
    max_abs_p_fake_change: float

    def holds(self) -> bool:
        shift_ok = (self.auroc_fp32 is None or self.auroc_int8 is None
                    or abs(self.auroc_int8 - self.auroc_fp32) <= MAX_AUROC_SHIFT)
        return self.agreement >= MIN_AGREEMENT and shift_ok

    def summary(self, name: str) -> str:
        auroc = (f", AUROC {self.auroc_fp32:.4f} -> {self.auroc_int8:.4f}"
                 if self.auroc_fp32 is not None and self.auroc_int8 is not None else "")
        return (f"{name}: agrees with fp32 on {self.agreement:.2%} of {self.images} images "
                f"({self.disagreements} differ){auroc}")


@dataclass
class QuantizationReport:
    passed: bool
    threshold: float
    weights_sha256: str
    calibration_images: int
    checks: dict[str, Agreement] = field(default_factory=dict)  # "test", "validation" (images not calibrated on)
    kept_fp32: list[str] = field(default_factory=list)
    recipe: str = RECIPE
    onnxruntime: str = ""

    def summary(self) -> str:
        return "; ".join(check.summary(name) for name, check in self.checks.items())


def compare(reference: np.ndarray, int8: np.ndarray, threshold: float, labels: np.ndarray | None) -> Agreement:
    """How far the int8 p(fake) is from fp32's: labels at the threshold, AUROC, largest change."""
    agree = (int8 >= threshold) == (reference >= threshold)
    return Agreement(images=len(agree), disagreements=int((~agree).sum()), agreement=float(agree.mean()),
                     auroc_fp32=_auroc(labels, reference), auroc_int8=_auroc(labels, int8),
                     max_abs_p_fake_change=float(np.abs(int8 - reference).max()))


def kept_in_fp32(graph: Any) -> list[str]:
    """Names of the nodes the recipe leaves in fp32: grouped convs, the first conv, the last Gemm/MatMul."""
    convs = [node for node in graph.node if node.op_type == "Conv"]
    grouped = [node.name for node in convs
               if any(attribute.name == "group" and attribute.i > 1 for attribute in node.attribute)]
    inputs = {value.name for value in graph.input}
    first = [node.name for node in convs if node.input and node.input[0] in inputs][:1]
    heads = [node.name for node in graph.node if node.op_type in ("Gemm", "MatMul")][-1:]
    return list(dict.fromkeys(grouped + first + heads))


def build_int8(model: torch.nn.Module, shape: tuple[int, int, int], calibration: np.ndarray,
               destination: Path) -> list[str]:
    """Export `model` (fp32 ONNX), quantise it with `calibration` crops (N, C, H, W) and write `destination`.

    Returns the node names kept in fp32.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..runtime.onnx import _export
    from .backends import _LogitsOnly

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter(np.ascontiguousarray(calibration, dtype=np.float32)[:, None])

        def get_next(self) -> dict[str, np.ndarray] | None:
            row = next(self.rows, None)
            return None if row is None else {"pixel_values": row}

    with tempfile.TemporaryDirectory(prefix="hf-detector-int8-") as work:
        fp32, prepared = Path(work) / "fp32.onnx", Path(work) / "prepared.onnx"
        _export(_LogitsOnly(model).eval(), torch.zeros(2, *shape), fp32, "pixel_values", ["logits"],
                {"pixel_values": {0: "batch"}, "logits": {0: "batch"}})
        quant_pre_process(str(fp32), str(prepared))  # shape inference + folding, as ORT recommends
        keep = kept_in_fp32(onnx.load(str(prepared)).graph)
        quantize_static(str(prepared), str(Path(work) / "int8.onnx"), Crops(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=keep)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes((Path(work) / "int8.onnx").read_bytes())
    return keep


def probabilities_fp32(model: torch.nn.Module, pixels: np.ndarray, fake_index: int, batch_size: int = 64
                       ) -> np.ndarray:
    """p(fake) of eager fp32 PyTorch: the reference the int8 model is checked against."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(pixels), batch_size):
            logits = model(pixel_values=torch.from_numpy(pixels[start:start + batch_size])).logits.float()
            out.append(torch.softmax(logits, dim=-1)[:, fake_index].numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def probabilities_onnx(path: Path, pixels: np.ndarray, fake_index: int, batch_size: int = 64) -> np.ndarray:
    import onnxruntime as ort

    from ..runtime.onnx import default_threads, session_options

    session = ort.InferenceSession(str(path), session_options(default_threads()), providers=["CPUExecutionProvider"])
    out = [session.run(None, {"pixel_values": np.ascontiguousarray(pixels[s:s + batch_size])})[0]
           for s in range(0, len(pixels), batch_size)]
    logits = torch.from_numpy(np.concatenate(out)).float() if out else torch.zeros(0, 2)
    return torch.softmax(logits, dim=-1)[:, fake_index].numpy()


def _auroc(labels: np.ndarray | None, scores: np.ndarray) -> float | None:
    if labels is None or len(set(np.asarray(labels).tolist())) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def evaluate_int8(checkpoint: str | os.PathLike, calibration: np.ndarray, check: np.ndarray,
                  destination: Path, labels: np.ndarray | None = None,
                  calibration_labels: np.ndarray | None = None, model: torch.nn.Module | None = None,
                  threshold: float | None = None, calibration_images: int = CALIBRATION_IMAGES,
                  seed: int = 0) -> QuantizationReport:
    """Build the checkpoint's int8 model at `destination` and check it against fp32; `passed` says the verdict.

    calibration: processed crops (N, C, H, W) float32 of the validation split; `calibration_images` of
    them (draw `seed`) set the activation ranges and the rest are a second check set. check: crops of
    the test split. labels / calibration_labels (0 real, 1 fake, optional) add the AUROC check.
    The int8 model must predict like fp32 on each check set on its own.
    Raises QuantizationRefused when it cannot be built at all.
    """
    from .backends import input_shape
    from .detector import Detector, load_classifier

    folder = Path(checkpoint)
    if not (folder / "model.safetensors").is_file():
        raise QuantizationRefused(f"{folder}: no model.safetensors to quantise")
    if len(calibration) == 0 or len(check) == 0:
        raise QuantizationRefused("need at least one calibration and one check image")
    network = (model if model is not None else load_classifier(folder)).eval()
    from transformers import AutoImageProcessor

    from ..models.registration import register_auto_classes

    register_auto_classes()

    processor = AutoImageProcessor.from_pretrained(folder)
    fake_index = Detector._fake_index(network.config)
    cut = float(threshold if threshold is not None else getattr(network.config, "detector_threshold", 0.5) or 0.5)
    calibration = np.ascontiguousarray(calibration, dtype=np.float32)
    chosen = np.sort(np.random.default_rng(seed).permutation(len(calibration))[:calibration_images])
    rest = np.setdiff1d(np.arange(len(calibration)), chosen)
    sets = {"test": (np.ascontiguousarray(check, dtype=np.float32), labels)}
    if len(rest):
        sets["validation"] = (calibration[rest], None if calibration_labels is None
                              else np.asarray(calibration_labels)[rest])
    try:
        keep = build_int8(network, input_shape(network, processor), calibration[chosen], destination)
        int8 = {name: probabilities_onnx(destination, pixels, fake_index) for name, (pixels, _) in sets.items()}
    except Exception as error:  # an architecture ORT cannot quantise: refuse, never half-write
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise QuantizationRefused(f"int8 build failed: {first}") from None
    import onnxruntime

    checks = {name: compare(probabilities_fp32(network, pixels, fake_index), int8[name], cut, set_labels)
              for name, (pixels, set_labels) in sets.items()}
    return QuantizationReport(passed=all(check.holds() for check in checks.values()), threshold=cut,
                              weights_sha256=weights_sha256(folder), calibration_images=len(chosen),
                              checks=checks, kept_fp32=keep, onnxruntime=onnxruntime.__version__)


def refusal(report: QuantizationReport) -> str:
    return (f"int8 not kept: {report.summary()} (each needs >= {MIN_AGREEMENT:.1%} and |AUROC change| <= "
            f"{MAX_AUROC_SHIFT}); the checkpoint is unchanged")


def quantize_checkpoint(checkpoint: str | os.PathLike, calibration: np.ndarray, check: np.ndarray,
                        labels: np.ndarray | None = None, calibration_labels: np.ndarray | None = None,
                        model: torch.nn.Module | None = None, threshold: float | None = None,
                        calibration_images: int = CALIBRATION_IMAGES) -> QuantizationReport:
    """Build and check the checkpoint's int8 model (`evaluate_int8`); save it only when it passes.

    Raises QuantizationRefused (nothing written) when it does not predict like fp32.
    """
    folder = Path(checkpoint)
    with tempfile.TemporaryDirectory(prefix="hf-detector-int8-") as work:
        candidate = Path(work) / INT8_FILE
        report = evaluate_int8(folder, calibration, check, candidate, labels, calibration_labels, model, threshold,
                               calibration_images)
        if not report.passed:
            raise QuantizationRefused(refusal(report))
        target = folder / INT8_DIR
        target.mkdir(exist_ok=True)
        # the model first, the report last: a crash in between leaves no report, so nothing runs it
        (target / REPORT_FILE).unlink(missing_ok=True)
        (target / INT8_FILE).write_bytes(candidate.read_bytes())
        (target / REPORT_FILE).write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def training_split_files(checkpoint: str | os.PathLike, data: str, validation_fraction: float = 0.15,
                         test_fraction: float = 0.15, seed: int = 42) -> dict[str, tuple[list[str], list[int]]]:
    """(paths, labels) of each split of `data` as the checkpoint's training run made them: same fractions and
    seed (the training defaults unless given), same held-out generators (from its metrics.json)."""
    import datasets
    from datasets import Image as ImageFeature

    from ..data.datasets import SplitSpec, load_faces, split_faces

    try:
        holdout = json.loads((Path(checkpoint) / "metrics.json").read_text())["training"].get("holdout", [])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        holdout = []
    datasets.disable_progress_bars()  # stderr keeps to the lines that matter
    dataset = load_faces(data).cast_column("image", ImageFeature(decode=False))
    splits = split_faces(dataset, SplitSpec(validation_fraction, test_fraction, seed, holdout or ()))
    return {name: ([row["path"] for row in split["image"]], list(split["label"])) for name, split in splits.items()}


def crops_of(detector: Any, paths: list[str]) -> np.ndarray:
    """Processed crops (N, C, H, W) of image files, through the checkpoint's own face stage + processor."""
    # np.asarray: the light runtime gives numpy pixels, the PyTorch backend a CPU tensor
    rows = [np.asarray(detector.prepare(path)[1]) for path in paths]
    return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 3, 1, 1), np.float32)
