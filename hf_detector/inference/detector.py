"""Detector: load a checkpoint (local path or Hub repo id) and classify images, files and folders.

Runs the checkpoint's own `FaceImageProcessor`, so its probabilities equal what
`pipeline("image-classification", model=...)` returns for the same file. Decoding and face
detection of a batch overlap with the forward pass of the previous one (thread pool).

The light runtime: when the checkpoint ships its verified ONNX export (`inference.export`), the default
backend scores with numpy + Pillow + onnxruntime only; torch and transformers are imported only when
something needs the PyTorch model (`Detector.model`: Grad-CAM, `--backend pytorch`).

Stage: inference (imports data, runtime, preprocessing, models).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.extras import MissingExtra, require
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
    pixel_values: Any = None  # (1, C, H, W): a torch tensor on the PyTorch path, a numpy array on the light one
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
            # the wheel and the repository both carry it: missing means a broken install or a checkout whose
            # hf_detector/checkpoints/default was removed (`make default-model` retrains it)
            raise ModelLoadError(f"the bundled default model is missing at {DEFAULT_MODEL} (no config.json or "
                                 "*.safetensors there): reinstall hf-detector, or pass --model PATH_OR_REPO_ID")
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


def load_classifier(path: Path) -> Any:
    """The checkpoint's classifier, in eval mode.

    A single fp32 safetensors file whose keys match the architecture exactly is loaded straight into
    `from_config`: ~0.1 s instead of the ~0.6 s that `from_pretrained`'s key-conversion machinery costs every
    CLI start. Anything else (sharded, renamed or tied weights, other dtypes) goes through `from_pretrained`.
    Without the torch extra: `MissingExtra` (one line naming it).
    """
    require("the PyTorch model (Grad-CAM, --backend pytorch)", "torch", "torch", "transformers", "safetensors")
    from transformers import AutoConfig, AutoModelForImageClassification

    from ..models.registration import register_auto_classes

    register_auto_classes()
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


class CheckpointConfig:
    """The fields of a checkpoint's `config.json` the Detector reads (id2label, detector_threshold), without
    transformers: the light runtime's stand-in for the model's config."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
        labels = values.get("id2label") or {str(k): v for k, v in ID2LABEL.items()}
        self.id2label = {int(k): v for k, v in labels.items()}

    @classmethod
    def from_pretrained(cls, path: Path) -> CheckpointConfig:
        import json

        return cls(json.loads((Path(path) / "config.json").read_text(encoding="utf-8")))


class Detector:
    """A loaded classifier + its image processor, with the decision threshold chosen at training time.

    `model` may be None when `onnx_files` (the checkpoint's verified export) are given: scoring then needs
    no torch, and the PyTorch model is loaded from `checkpoint` only if `detector.model` is asked for.
    """

    def __init__(self, model: Any, processor: Any, name: str = "model",
                 threshold: float | None = None, backend: str = "pytorch",
                 checkpoint: str | os.PathLike | None = None, *, config: Any = None,
                 onnx_files: dict[str, Path] | None = None, check_external: bool = False) -> None:
        self._model = model.eval() if model is not None else None
        self.config = config if config is not None else model.config
        self.checkpoint = checkpoint
        self.processor = processor
        self.name = name
        self.threshold = float(threshold if threshold is not None
                               else getattr(self.config, "detector_threshold", 0.5) or 0.5)
        self.fake_index = self._fake_index(self.config)
        self._pool: ThreadPoolExecutor | None = None
        # backend: "pytorch" (eager fp32), "onnx", "int8" or "auto" (inference.sessions: ONNX Runtime for
        # the classifier and the face detector; int8 only where validated for these weights). `checkpoint`
        # is the directory that may hold the int8 model and the fp32 export; self.backend is what runs.
        from .sessions import exported_classifier, int8_classifier, resolve_backend

        wanted = resolve_backend(backend, checkpoint)
        self._onnx = int8_classifier(checkpoint) if wanted == "int8" else None
        self.backend = "int8" if self._onnx is not None else "pytorch"
        if self._onnx is None and wanted in ("onnx", "int8"):
            if onnx_files and "classifier" in onnx_files:
                self._onnx = exported_classifier(onnx_files["classifier"], check_external=check_external)
            else:
                from .backends import onnx_classifier

                self._onnx = onnx_classifier(self.model, processor)
            self.backend = "onnx" if self._onnx is not None else "pytorch"
        self.face_detector = None
        if hasattr(processor, "crop"):
            from ..preprocessing.core import shared_face_detector

            self.face_detector = shared_face_detector(self.backend, getattr(processor, "face_detector", "mtcnn"),
                                                      onnx_files=onnx_files)

    @property
    def model(self) -> Any:
        """The PyTorch classifier (loaded on first use when this Detector was built from the ONNX export)."""
        if self._model is None:
            if self.checkpoint is None:
                raise ModelLoadError("this detector has no PyTorch model and no checkpoint to load it from")
            self._model = load_classifier(Path(self.checkpoint))
        return self._model

    @model.setter
    def model(self, value: Any) -> None:
        self._model = value

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
        trained with). With the checkpoint's verified ONNX export and an ONNX backend, nothing here imports
        torch or transformers.
        """
        from ..preprocessing.core import checked_detect_size, checked_face_detector, checked_short_side
        from ..runtime.files import validated_export
        from ..runtime.onnx import requested_backend
        from .sessions import resolve_backend

        path = resolve_model_path(model, revision)
        files = None
        if requested_backend(backend) != "pytorch" and resolve_backend(backend, path) != "pytorch":
            files = validated_export(path)
        if files is None:  # the PyTorch model loads (and, on an ONNX backend, is exported at run time)
            why = ("--backend pytorch" if requested_backend(backend) == "pytorch"
                   else f"{path} has no ONNX export validated for its weights, so scoring it")
            try:
                require(why, "torch", "torch", "transformers", "safetensors")
            except MissingExtra as error:
                raise ModelLoadError(str(error)) from None
        try:
            if files is not None:
                from ..preprocessing.core import LightProcessor

                network, config = None, CheckpointConfig.from_pretrained(path)
                processor = LightProcessor.from_pretrained(path)
            else:
                from transformers import AutoImageProcessor

                from ..models.registration import register_auto_classes

                register_auto_classes()
                network, config = load_classifier(path), None
                processor = AutoImageProcessor.from_pretrained(path)
        except (OSError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelLoadError(f"cannot load model from {path}: {first}") from None
        if face_detect_size is not None and hasattr(processor, "face_detect_size"):
            processor.face_detect_size = checked_detect_size(face_detect_size)
        if max_short_side is not None and hasattr(processor, "max_short_side"):
            processor.max_short_side = checked_short_side(max_short_side)
        if face_detector is not None and hasattr(processor, "face_detector"):
            processor.face_detector = checked_face_detector(face_detector)
        # a local folder (or the bundled model) is trusted; a downloaded export is checked for external data
        local = model is None or Path(model).is_dir()
        return cls(network, processor, name=str(model or path), threshold=threshold, backend=backend,
                   checkpoint=path, config=config, onnx_files=files, check_external=not local)

    # -- single images ---------------------------------------------------------------------------
    def prepare(self, image: Image.Image | str | os.PathLike | bytes,
                transform: Callable[[Image.Image], Image.Image] | None = None) -> tuple[Any, Any]:
        """Decode (+ optional perturbation, for robustness tests) + face stage + pixels.

        Raises ImageLoadError on bad input.
        """
        # the processor reduces large inputs anyway: a large JPEG is decoded at reduced size (not when a
        # robustness transform must see the full picture)
        reduce_to = int(getattr(self.processor, "max_short_side", 0) or 0) if transform is None else 0
        rgb = load_image(image if not isinstance(image, os.PathLike) else str(image), reduce_to=reduce_to)
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

    def _forward(self, pixel_values: Any) -> np.ndarray:
        if self._onnx is not None:
            logits = np.asarray(self._onnx(pixel_values), dtype=np.float32)
        else:
            import torch

            with torch.inference_mode():
                logits = self.model(pixel_values=torch.as_tensor(pixel_values)).logits.float().numpy()
        return _softmax(logits)

    def _prediction(self, probs: np.ndarray, crop: Any, pixels: Any) -> Prediction:
        p_fake = float(probs[self.fake_index])
        labels = getattr(self.config, "id2label", None) or ID2LABEL
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
                      ) -> tuple[Any, Any, str | None]:
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

        Decoding and face detection run in a thread pool, one file per task and up to two batches ahead, while
        the model runs: per-file tasks keep both workers busy to the last file (whole-batch tasks left one idle
        on the last, short batch, which costs most on large photos, where decoding dominates).
        """
        items = [str(p) if isinstance(p, os.PathLike) else p for p in paths]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hf-detector-io")
        queue = iter(items)
        pending: deque = deque()

        def submit(count: int) -> None:
            for item in islice(queue, count):
                pending.append(self._pool.submit(self._safe_prepare, item, transform))

        submit(2 * batch_size)
        batches = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
        for batch in batches:
            prepared = [pending.popleft().result() for _ in batch]
            submit(len(batch))
            good = [i for i, (_, pixels, _) in enumerate(prepared) if pixels is not None]
            probs = (self._forward(np.concatenate([np.asarray(prepared[i][1]) for i in good])) if good
                     else np.zeros((0, 2)))
            by_index = dict(zip(good, probs, strict=True))
            for i, item in enumerate(batch):
                crop, _, error = prepared[i]
                if error is not None:
                    yield FileResult(_name(item), None, error)
                else:
                    yield FileResult(_name(item), self._prediction(by_index[i], crop, None), None)

    def predict_files(self, paths: Sequence[str | os.PathLike], batch_size: int = 16) -> list[FileResult]:
        return list(self.iter_files(paths, batch_size=batch_size))


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32 (what torch.softmax gave before, without torch)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


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
