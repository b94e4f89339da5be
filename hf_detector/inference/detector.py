"""Detector: load a checkpoint (local path or Hub repo id) and classify images, files and folders.

Runs the checkpoint's own `FaceImageProcessor`, so its probabilities equal what
`pipeline("image-classification", model=...)` returns for the same file. Decoding and face
detection of a batch overlap with the forward pass of the previous one (thread pool).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

from ..data.images import NOTES_KEY, ImageLoadError, input_notes, is_image_path, load_image
from ..data.labels import FAKE_ID, ID2LABEL, LABEL_ALIASES


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded; the message is one line saying what to do."""


@dataclass
class Prediction:
    label: str
    p_fake: float
    probabilities: dict[str, float]
    threshold: float
    faces: list = field(default_factory=list)
    face_found: bool = False
    crop_method: str = "center"
    crop: Image.Image | None = None
    pixel_values: torch.Tensor | None = None
    # what decoding did to the input, e.g. "animated GIF with 3 frames: only the first frame was used"
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "p_fake": self.p_fake, "probabilities": self.probabilities,
                "threshold": self.threshold, "face_found": self.face_found, "crop_method": self.crop_method,
                "face_box": list(self.faces[0].box) if self.faces else None, "notes": list(self.notes)}


@dataclass
class FileResult:
    path: str
    prediction: Prediction | None = None
    error: str | None = None


def resolve_model_path(model: str | os.PathLike | None, revision: str | None = None) -> Path:
    """A local directory as is, None as the bundled default, anything else as a Hub repo id."""
    from ..data.checkpoints import DEFAULT_MODEL, default_model_available

    if model is None:
        if not default_model_available():
            raise ModelLoadError(f"no default model is bundled yet at {DEFAULT_MODEL}; pass --model PATH_OR_REPO_ID")
        return DEFAULT_MODEL
    path = Path(model)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelLoadError(f"{model}: directory has no config.json (not a saved checkpoint)")
        return path
    if path.exists():
        raise ModelLoadError(f"{model}: is a file; pass the checkpoint directory or a Hub repo id")
    from ..data.remote import HubError, resolve_model

    try:
        return Path(resolve_model(str(model), revision=revision))
    except HubError as error:
        raise ModelLoadError(str(error)) from None


def load_classifier(path: Path) -> torch.nn.Module:
    """The checkpoint's classifier, in eval mode.

    A single fp32 safetensors file whose keys match the architecture exactly is loaded straight into
    `from_config`: ~0.1 s instead of the ~0.6 s that `from_pretrained`'s key-conversion machinery costs every
    CLI start. Anything else (sharded, renamed or tied weights, other dtypes) goes through `from_pretrained`.
    """
    weights = path / "model.safetensors"
    if weights.is_file():
        try:
            config = AutoConfig.from_pretrained(path)
            if str(getattr(config, "dtype", None) or "float32").replace("torch.", "") == "float32":
                from safetensors.torch import load_file

                model = AutoModelForImageClassification.from_config(config)
                model.load_state_dict(load_file(weights), strict=True)
                return model.eval()
        except Exception:  # noqa: BLE001 (a mismatch of any kind: the general loader below decides and reports)
            pass
    return AutoModelForImageClassification.from_pretrained(path, use_safetensors=True).eval()


class Detector:
    """A loaded classifier + its image processor, with the decision threshold chosen at training time."""

    def __init__(self, model: torch.nn.Module, processor: Any, name: str = "model",
                 threshold: float | None = None, backend: str = "pytorch",
                 checkpoint: str | os.PathLike | None = None) -> None:
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.threshold = float(threshold if threshold is not None
                               else getattr(model.config, "detector_threshold", 0.5) or 0.5)
        self.fake_index = self._fake_index(model.config)
        self._pool: ThreadPoolExecutor | None = None
        # backend: "pytorch" (eager fp32), "onnx", "int8" or "auto" (inference.backends: ONNX Runtime for
        # the classifier and the face detector; int8 only where validated for these weights). `checkpoint`
        # is the directory that may hold the int8 model; self.backend is what actually runs.
        from .backends import int8_classifier, onnx_classifier, resolve_backend

        wanted = resolve_backend(backend, checkpoint)
        self._onnx = int8_classifier(checkpoint) if wanted == "int8" else None
        self.backend = "int8" if self._onnx is not None else "pytorch"
        if self._onnx is None and wanted in ("onnx", "int8"):
            self._onnx = onnx_classifier(model, processor)
            self.backend = "onnx" if self._onnx is not None else "pytorch"
        self.face_detector = None
        if hasattr(processor, "crop"):
            from ..preprocessing.processor import shared_face_detector

            self.face_detector = shared_face_detector(self.backend, getattr(processor, "face_detector", "mtcnn"))

    @staticmethod
    def _fake_index(config: Any) -> int:
        for index, name in (getattr(config, "id2label", None) or ID2LABEL).items():
            if LABEL_ALIASES.get(str(name).lower()) == "fake":
                return int(index)
        return FAKE_ID

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike | None = None, revision: str | None = None,
                        threshold: float | None = None, backend: str = "auto",
                        face_detect_size: int | None = None, max_short_side: int | None = None,
                        face_detector: str | None = None) -> Detector:
        """Load a checkpoint (path or Hub id).

        `face_detect_size`, `max_short_side` and `face_detector` override the processor's detection size,
        resolution cap and face detector (for experiments: a model is only valid with the detector it was
        trained with).
        """
        from ..models.registration import register_auto_classes

        register_auto_classes()

        path = resolve_model_path(model, revision)
        try:
            network = load_classifier(path)
            processor = AutoImageProcessor.from_pretrained(path)
        except (OSError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelLoadError(f"cannot load model from {path}: {first}") from None
        from ..preprocessing.processor import checked_detect_size, checked_face_detector, checked_short_side

        if face_detect_size is not None and hasattr(processor, "face_detect_size"):
            processor.face_detect_size = checked_detect_size(face_detect_size)
        if max_short_side is not None and hasattr(processor, "max_short_side"):
            processor.max_short_side = checked_short_side(max_short_side)
        if face_detector is not None and hasattr(processor, "face_detector"):
            processor.face_detector = checked_face_detector(face_detector)
        return cls(network, processor, name=str(model or path), threshold=threshold, backend=backend,
                   checkpoint=path)

    # -- single images ---------------------------------------------------------------------------
    def prepare(self, image: Image.Image | str | os.PathLike | bytes,
                transform: Callable[[Image.Image], Image.Image] | None = None) -> tuple[Any, torch.Tensor]:
        """Decode (+ optional perturbation, for robustness tests) + face stage + pixels.

        Raises ImageLoadError on bad input.
        """
        rgb = load_image(image if not isinstance(image, os.PathLike) else str(image))
        notes = input_notes(rgb)
        if transform is not None:
            rgb = transform(rgb)
        if hasattr(self.processor, "crop"):
            crop = (self.processor.crop(rgb, detector=self.face_detector) if self.face_detector is not None
                    else self.processor.crop(rgb))
            if notes:  # the crop is a fresh image: carry the decoding notes to the Prediction
                crop.image.info[NOTES_KEY] = tuple(notes)
            return crop, self.processor.finish([crop.image])
        pixels = self.processor(images=rgb, return_tensors="pt")["pixel_values"]
        return None, pixels

    @torch.inference_mode()
    def _forward(self, pixel_values: torch.Tensor) -> np.ndarray:
        if self._onnx is not None:
            logits = self._onnx(pixel_values).float()
        else:
            logits = self.model(pixel_values=pixel_values).logits.float()
        return torch.softmax(logits, dim=-1).numpy()

    def _prediction(self, probs: np.ndarray, crop: Any, pixels: torch.Tensor | None) -> Prediction:
        p_fake = float(probs[self.fake_index])
        labels = getattr(self.model.config, "id2label", ID2LABEL)
        probabilities = {str(labels[i]).lower(): float(p) for i, p in enumerate(probs)}
        face = getattr(crop, "face", None)
        return Prediction(
            label="fake" if p_fake >= self.threshold else "real", p_fake=p_fake, probabilities=probabilities,
            threshold=self.threshold, faces=[face] if face is not None else [],
            face_found=face is not None, crop_method=getattr(crop, "method", "processor"),
            crop=getattr(crop, "image", None), pixel_values=pixels,
            notes=input_notes(getattr(crop, "image", None)))

    def predict(self, image: Image.Image | str | os.PathLike | bytes) -> Prediction:
        crop, pixels = self.prepare(image)
        return self._prediction(self._forward(pixels)[0], crop, pixels)

    # -- many files ------------------------------------------------------------------------------
    def _safe_prepare(self, item: Any, transform: Callable | None = None
                      ) -> tuple[Any, torch.Tensor | None, str | None]:
        try:
            crop, pixels = self.prepare(item, transform)
            return crop, pixels, None
        except ImageLoadError as error:
            return None, None, str(error)
        except Exception as error:  # never let one file stop a batch
            return None, None, f"{_name(item)}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"

    def iter_files(self, paths: Sequence[Any], batch_size: int = 16, workers: int = 2,
                   transform: Callable[[Image.Image], Image.Image] | None = None) -> Iterator[FileResult]:
        """Yield one FileResult per path (or PIL image), in order.

        Decoding and face detection of the next batches run in a thread pool while the model runs.
        """
        items = [str(p) if isinstance(p, os.PathLike) else p for p in paths]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hf-detector-io")
        batches = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
        pending = [self._pool.submit(lambda b=b: [self._safe_prepare(p, transform) for p in b]) for b in batches[:2]]
        for index, batch in enumerate(batches):
            prepared = pending.pop(0).result()
            if index + 2 < len(batches):
                pending.append(self._pool.submit(lambda b=batches[index + 2]: [self._safe_prepare(p, transform) for p in b]))
            good = [i for i, (_, pixels, _) in enumerate(prepared) if pixels is not None]
            probs = self._forward(torch.cat([prepared[i][1] for i in good])) if good else np.zeros((0, 2))
            by_index = dict(zip(good, probs, strict=True))
            for i, item in enumerate(batch):
                crop, _, error = prepared[i]
                if error is not None:
                    yield FileResult(_name(item), None, error)
                else:
                    yield FileResult(_name(item), self._prediction(by_index[i], crop, None), None)

    def predict_files(self, paths: Sequence[str | os.PathLike], batch_size: int = 16) -> list[FileResult]:
        return list(self.iter_files(paths, batch_size=batch_size))


def _name(item: Any) -> str:
    if isinstance(item, (str, os.PathLike)):
        return str(item)
    return getattr(item, "filename", "") or "<image>"


def expand_paths(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Files as given; folders walked recursively for image files (sorted, so output order is stable)."""
    paths: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths += sorted(str(p) for p in path.rglob("*") if p.is_file() and is_image_path(p))
        else:
            paths.append(str(path))
    return paths
