"""End-to-end latency at batch 1 (each backend) and the forward-only candidates (channels_last, bf16, ONNX Runtime)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from common import interleaved, median_ms


def latency(model: Path, files: list[str], reps: int) -> dict[str, Any]:
    """End-to-end (path -> probabilities) and forward-only at batch 1, pytorch vs onnx, interleaved."""
    from hf_detector.inference.backends import input_shape
    from hf_detector.inference.detector import Detector

    plain = Detector.from_pretrained(str(model), backend="pytorch")
    fast = Detector.from_pretrained(str(model), backend="auto")
    out: dict[str, Any] = {"fast_backend": fast.backend, "face_detector": fast.processor.face_detector,
                           "face_context": getattr(fast.processor, "face_context", 0.0),
                           "image_size": input_shape(fast.model, fast.processor)[1]}
    e2e: dict[str, list[float]] = {"pytorch": [], fast.backend + "*": []}
    for path in files:  # each image once per backend per rep, alternating which goes first
        times = interleaved({"pytorch": lambda p=path: plain.predict(p),
                             fast.backend + "*": lambda p=path: fast.predict(p)}, reps=reps, warmup=0)
        for name, values in times.items():
            e2e[name] += values
    out["e2e"] = {k: median_ms(v) for k, v in e2e.items()}
    # stage split of the fast path: decode + face stage vs finish vs forward
    from hf_detector.data.images import load_image

    stage: dict[str, list[float]] = {"decode": [], "face": [], "finish": [], "forward": []}
    for path in files[: max(4, len(files) // 2)]:
        t0 = time.perf_counter()
        rgb = load_image(path)
        t1 = time.perf_counter()
        crop = fast.processor.crop(rgb, detector=fast.face_detector)
        t2 = time.perf_counter()
        pixels = fast.processor.finish([crop.image])
        t3 = time.perf_counter()
        fast._forward(pixels)
        t4 = time.perf_counter()
        for key, value in zip(stage, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stage[key].append(value)
    out["stages_fast"] = {k: median_ms(v) for k, v in stage.items()}
    stage_plain: dict[str, list[float]] = {"face": []}
    for path in files[: max(4, len(files) // 2)]:
        rgb = load_image(path)
        t1 = time.perf_counter()
        plain.processor.crop(rgb, detector=plain.face_detector)
        stage_plain["face"].append(time.perf_counter() - t1)
    out["face_pytorch"] = median_ms(stage_plain["face"])
    out["forward"] = forward_candidates(plain, fast, reps=max(10, reps * 10))
    return out


def forward_candidates(plain: Any, fast: Any, reps: int) -> dict[str, dict[str, float]]:
    """Forward-only latency of every candidate at batch 1 and batch 32 (ms per image)."""
    from hf_detector.inference.backends import OnnxClassifier, input_shape

    model = plain.model
    shape = input_shape(model, plain.processor)
    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)

    def eager(x: torch.Tensor) -> Any:
        return model(pixel_values=x).logits

    def cl(x: torch.Tensor) -> Any:
        return channels_last(pixel_values=x.contiguous(memory_format=torch.channels_last)).logits

    def bf16(x: torch.Tensor) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return channels_last(pixel_values=x.contiguous(memory_format=torch.channels_last)).logits.float()

    candidates: dict[str, Callable[[torch.Tensor], Any]] = {"eager fp32": eager, "channels_last": cl,
                                                            "bf16 autocast": bf16}
    if fast._onnx is not None:
        candidates["onnxruntime fp32, 1 thread"] = OnnxClassifier(model, shape, threads=1)
        candidates["onnxruntime fp32, 2 threads"] = OnnxClassifier(model, shape, threads=2)
    results: dict[str, dict[str, float]] = {}
    with torch.inference_mode():
        for batch in (1, 32):
            x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(batch))
            reference = eager(x).float()
            n = reps if batch == 1 else max(3, reps // 8)
            chosen = {k: f for k, f in candidates.items() if batch == 1 or k != "bf16 autocast"}
            times = interleaved({k: (lambda f=f, x=x: f(x)) for k, f in chosen.items()}, reps=n)
            for name, values in times.items():
                row = results.setdefault(name, {})
                row[f"b{batch}"] = median_ms(values) / batch
                row[f"maxdiff_b{batch}"] = float((candidates[name](x).float() - reference).abs().max())
    return results
