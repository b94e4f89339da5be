"""BlazeFace (MediaPipe's short-range face detector) in PyTorch: a face and six keypoints in ~1 ms.

Why: MTCNN's three cascaded networks take ~15 ms per photo on 2 cores, three times the classifier;
BlazeFace sees the whole image once at 128 x 128 (one network, 896 anchors) and is built for faces
that fill much of the frame, which is what face photos are.

Weights: `face_detection_short_range.tflite` (Apache-2.0) ships inside the PyPI wheel
`mediapipe==0.10.14`, installed with `--no-deps` (mediapipe itself is never imported; the Hub and the
network are never contacted). The TFLite graph (fp16 constants, 164 operators of nine kinds) is
rebuilt as a torch module by `TFLiteGraph`, so the same network runs on eager PyTorch and, exported,
on ONNX Runtime. Decoding follows MediaPipe's face_detection_short_range graph: SSD anchors
(strides 8, 16, 16, 16; 2 + 6 anchors per cell; fixed size), sigmoid scores, weighted NMS.

Keypoints (image coordinates): eye on the image's left, eye on the image's right, nose tip, mouth
centre, and the two ear tragions.

`BlazeFaceDetector` wraps it with the `FaceDetector` interface and MTCNN as the fallback.

Stage: preprocessing (imports data, runtime).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .base import Face
from .base import to_rgb as _to_rgb
from .mtcnn import FaceDetector

__all__ = ["BlazeFace", "BlazeFaceDetector", "TFLiteGraph", "anchors", "decode", "model_path", "weighted_nms"]

INPUT_SIZE = 128
MODEL_FILE = "modules/face_detection/face_detection_short_range.tflite"
# MediaPipe's face_detection_short_range options.
MIN_SCORE = 0.5
NMS_IOU = 0.3
SCORE_CLIP = 100.0

_LOCK = threading.Lock()
_CACHE: dict[str, BlazeFace] = {}


class WeightsMissing(RuntimeError):
    """The BlazeFace weights are not installed (the message says how to install them)."""


def model_path() -> Path:
    """The .tflite inside the installed mediapipe wheel, found without importing mediapipe."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            path = Path(root) / MODEL_FILE
            if path.is_file():
                return path
    raise WeightsMissing(
        "BlazeFace weights not found: pip install --no-deps mediapipe==0.10.14 (or use --face_detector mtcnn)"
    )


# -- the network -------------------------------------------------------------------------------------


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) for one axis: the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class TFLiteGraph(torch.nn.Module):
    """A TFLite float graph of CONV_2D / DEPTHWISE_CONV_2D / ADD / RELU / PAD / MAX_POOL_2D / RESHAPE /
    CONCATENATION / DEQUANTIZE, run as torch ops. 4-D activations are kept NCHW (TFLite's are NHWC)
    and turned back to NHWC only where the graph reshapes them, so outputs equal the TFLite ones."""

    def __init__(self, buffer: bytes) -> None:
        super().__init__()
        import tflite  # parses the flatbuffer; only needed when the model is built

        model = tflite.Model.GetRootAsModel(buffer, 0)
        graph = model.Subgraphs(0)
        names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self._tflite = tflite
        self.inputs = [int(graph.Inputs(i)) for i in range(graph.InputsLength())]
        self.outputs = [int(graph.Outputs(i)) for i in range(graph.OutputsLength())]
        self.output_names = [graph.Tensors(i).Name().decode() for i in self.outputs]
        constants: dict[int, np.ndarray] = {}
        for index in range(graph.TensorsLength()):
            tensor = graph.Tensors(index)
            data = model.Buffers(tensor.Buffer()).DataAsNumpy()
            if isinstance(data, np.ndarray) and data.size:
                dtype = {0: np.float32, 1: np.float16, 2: np.int32}[tensor.Type()]
                constants[index] = np.frombuffer(data.tobytes(), dtype=dtype).reshape(tensor.ShapeAsNumpy())
        self.ops: list[tuple[str, list[int], list[int], dict[str, Any]]] = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            kind = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            ins = [int(x) for x in op.InputsAsNumpy()]
            outs = [int(x) for x in op.OutputsAsNumpy()]
            if kind == "DEQUANTIZE":  # fp16 constant -> fp32 constant, folded here
                constants[outs[0]] = constants[ins[0]].astype(np.float32)
                continue
            self.ops.append((kind, ins, outs, self._options(kind, op)))
        # Weights become parameters in torch's layouts: conv OIHW, depthwise (C,1,kh,kw).
        self.weights = torch.nn.ParameterDict()
        for kind, ins, _, _ in self.ops:
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                weight = constants[ins[1]]
                weight = weight.transpose(0, 3, 1, 2) if kind == "CONV_2D" else weight.transpose(3, 0, 1, 2)
                self.weights[f"w{ins[1]}"] = torch.nn.Parameter(torch.from_numpy(weight.copy()), requires_grad=False)
                self.weights[f"b{ins[2]}"] = torch.nn.Parameter(
                    torch.from_numpy(constants[ins[2]].astype(np.float32).copy()), requires_grad=False
                )
            elif kind == "ADD":
                for j in ins:
                    if j in constants:
                        self.weights[f"c{j}"] = torch.nn.Parameter(
                            torch.from_numpy(constants[j].copy()), requires_grad=False
                        )
        self.int_constants = {k: v.astype(np.int64) for k, v in constants.items() if v.dtype == np.int32}

    def _options(self, kind: str, op: Any) -> dict[str, Any]:
        tfl = self._tflite
        table = op.BuiltinOptions()
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "ADD", "CONCATENATION", "RESHAPE"):
            cls = {
                "CONV_2D": tfl.Conv2DOptions,
                "DEPTHWISE_CONV_2D": tfl.DepthwiseConv2DOptions,
                "MAX_POOL_2D": tfl.Pool2DOptions,
                "ADD": tfl.AddOptions,
                "CONCATENATION": tfl.ConcatenationOptions,
                "RESHAPE": tfl.ReshapeOptions,
            }[kind]
            if table is None:
                return {}
            opts = cls()
            opts.Init(table.Bytes, table.Pos)
        else:
            return {}
        result: dict[str, Any] = {}
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D"):
            result["stride"] = (opts.StrideH(), opts.StrideW())
            result["same"] = opts.Padding() == tfl.Padding.SAME
        if kind == "MAX_POOL_2D":
            result["kernel"] = (opts.FilterHeight(), opts.FilterWidth())
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "ADD", "CONCATENATION"):
            activation = opts.FusedActivationFunction()
            if activation not in (tfl.ActivationFunctionType.NONE, tfl.ActivationFunctionType.RELU):
                raise ValueError(f"unsupported fused activation {activation} in {kind}")
            result["relu"] = activation == tfl.ActivationFunctionType.RELU
        if kind == "CONCATENATION":
            result["axis"] = opts.Axis()
        if kind == "RESHAPE" and opts.NewShapeLength():
            result["shape"] = [int(x) for x in opts.NewShapeAsNumpy()]
        return result

    @staticmethod
    def _pad_same(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float) -> torch.Tensor:
        top, bottom = _same_padding(x.shape[2], kernel[0], stride[0])
        left, right = _same_padding(x.shape[3], kernel[1], stride[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), value=value)
        return x

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """pixels: (N, 3, 128, 128) in [-1, 1]; returns the graph outputs (TFLite's layouts)."""
        values: dict[int, torch.Tensor] = {self.inputs[0]: pixels}
        for kind, ins, outs, opts in self.ops:
            x = values[ins[0]]
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                weight, bias = self.weights[f"w{ins[1]}"], self.weights[f"b{ins[2]}"]
                kernel = tuple(weight.shape[2:])
                if opts["same"]:
                    x = self._pad_same(x, kernel, opts["stride"], 0.0)
                groups = x.shape[1] if kind == "DEPTHWISE_CONV_2D" else 1
                y = F.conv2d(x, weight, bias, stride=opts["stride"], groups=groups)
            elif kind == "MAX_POOL_2D":
                if opts["same"]:
                    x = self._pad_same(x, opts["kernel"], opts["stride"], float("-inf"))
                y = F.max_pool2d(x, opts["kernel"], opts["stride"])
            elif kind == "ADD":
                a, b = (values[j] if j in values else self.weights[f"c{j}"] for j in ins)
                y = a + b
            elif kind == "RELU":
                y = F.relu(x)
            elif kind == "PAD":
                pads = self.int_constants[ins[1]]  # NHWC rows: (before, after)
                (n0, n1), (h0, h1), (w0, w1), (c0, c1) = pads.tolist()
                if n0 or n1:
                    raise ValueError("PAD on the batch axis is not supported")
                y = F.pad(x, (w0, w1, h0, h1, c0, c1))
            elif kind == "RESHAPE":
                shape = opts.get("shape") or self.int_constants[ins[1]].tolist()
                if x.dim() == 4:
                    x = x.permute(0, 2, 3, 1)  # back to TFLite's NHWC order before flattening
                y = x.reshape([x.shape[0]] + [int(s) for s in shape[1:]])
            elif kind == "CONCATENATION":
                parts = [values[j] for j in ins]
                axis = opts["axis"]
                if parts[0].dim() == 4:
                    axis = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1}[axis]
                y = torch.cat(parts, dim=axis)
            else:
                raise ValueError(f"unsupported TFLite operator {kind}")
            if opts.get("relu"):
                y = F.relu(y)
            values[outs[0]] = y
        return tuple(values[i] for i in self.outputs)


# -- decoding ----------------------------------------------------------------------------------------


def anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1] (x, y): MediaPipe's SSD anchors for the short-range model."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = INPUT_SIZE // stride
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


_ANCHORS = anchors()


def decode(regressors: np.ndarray, logits: np.ndarray, min_score: float = MIN_SCORE) -> np.ndarray:
    """Raw outputs of one image -> (K, 17) rows [x0, y0, x1, y1, 6 x (kx, ky), score], coordinates in [0, 1]."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    keep = scores >= min_score
    raw, centre = regressors.reshape(-1, 16)[keep] / INPUT_SIZE, _ANCHORS[keep]
    cx, cy = raw[:, 0] + centre[:, 0], raw[:, 1] + centre[:, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    points = raw[:, 4:16].reshape(-1, 6, 2) + centre[:, None, :]
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    return np.concatenate([boxes, points.reshape(-1, 12), scores[keep, None]], axis=1)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(detections: np.ndarray, iou: float = NMS_IOU) -> np.ndarray:
    """MediaPipe's weighted NMS: each cluster (IoU > iou with its best) is replaced by its score-weighted
    mean box and keypoints, with the best score. Rows as `decode` gives them, best first."""
    order = np.argsort(-detections[:, -1], kind="stable")
    remaining = detections[order]
    merged = []
    while len(remaining):
        overlap = _iou(remaining[0], remaining)
        cluster = remaining[overlap > iou]
        weights = cluster[:, -1:]
        mean = (cluster[:, :-1] * weights).sum(0) / weights.sum()
        merged.append(np.append(mean, remaining[0, -1]))
        remaining = remaining[overlap <= iou]
    return np.array(merged, dtype=np.float64).reshape(-1, detections.shape[1])


# -- the detector ------------------------------------------------------------------------------------


class BlazeFace:
    """Letterbox to 128 x 128 -> network -> decode -> weighted NMS, in image pixels.

    `detect(rgb)` takes an (H, W, 3) uint8 array and returns (K, 17) rows [x0, y0, x1, y1, 6 keypoints
    (x, y), score], best first. backend "onnx" runs the exported network on ONNX Runtime (same numbers).
    """

    def __init__(self, backend: str = "pytorch") -> None:
        self.network = TFLiteGraph(model_path().read_bytes()).eval()
        self.backend = backend
        self.session = None
        if backend == "onnx":
            self.session = self._checked_session()

    def _checked_session(self) -> Any:
        """The exported network on ONNX Runtime if it matches eager PyTorch on a random input, else None
        (eager PyTorch then runs, with a warning: slower, never wrong)."""
        import logging

        from ...runtime.onnx import EXPORT_TOLERANCE, _load_session

        try:
            session = _load_session(self.network, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE), "blazeface", "x",
                                    ["regressors", "classificators"], {}, threads=1)
            probe = np.random.default_rng(0).uniform(-1, 1, (1, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
            with torch.inference_mode():
                expected = self.network(torch.from_numpy(probe))
            got = session.run(None, {"x": probe})
            difference = max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected, strict=True))
            if not np.isfinite(difference) or difference > EXPORT_TOLERANCE * 10:  # regressors are in pixels
                raise ValueError(f"export differs from PyTorch by {difference:.2e}")
            return session
        except Exception as error:  # noqa: BLE001 - any export/runtime failure means: run eager
            logging.getLogger(__name__).warning("BlazeFace on ONNX Runtime unavailable (%s): using PyTorch",
                                                str(error).splitlines()[0] if str(error) else type(error).__name__)
            return None

    def run(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1, 3, 128, 128) float32 in [-1, 1] -> raw (regressors, logits)."""
        if self.session is not None:
            regressors, logits = self.session.run(None, {"x": tensor})
            return regressors, logits
        with torch.inference_mode():
            regressors, logits = self.network(torch.from_numpy(tensor))
        return regressors.numpy(), logits.numpy()

    def detect(self, rgb: np.ndarray, min_score: float = MIN_SCORE) -> np.ndarray:
        import cv2

        height, width = rgb.shape[:2]
        side = max(height, width)
        scale = INPUT_SIZE / side
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        # Letterbox: the whole image, aspect kept, centred on black (MediaPipe's keep_aspect_ratio).
        interpolation = cv2.INTER_LINEAR
        small = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
        top, left = (INPUT_SIZE - new_h) // 2, (INPUT_SIZE - new_w) // 2
        canvas[top : top + new_h, left : left + new_w] = small
        tensor = (canvas.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        regressors, logits = self.run(np.ascontiguousarray(tensor))
        found = weighted_nms(decode(regressors[0], logits[0], min_score))
        if len(found) == 0:
            return found
        # [0, 1] of the letterboxed square -> image pixels
        offset = np.array([left, top] * 8, dtype=np.float64) / INPUT_SIZE
        found[:, :16] = (found[:, :16] - offset) * side
        return found


def blazeface(backend: str = "pytorch") -> BlazeFace:
    """One BlazeFace per backend per process."""
    with _LOCK:
        if backend not in _CACHE:
            _CACHE[backend] = BlazeFace(backend)
        return _CACHE[backend]


class BlazeFaceDetector:
    """BlazeFace first, MTCNN when BlazeFace finds no face; `detect`/`largest` answer like FaceDetector.

    BlazeFace sees the whole image at 128 x 128, so it misses faces smaller than ~1/10 of the image:
    those photos go to the MTCNN search (`fallback`), whose crops are framed the same way on average.
    """

    def __init__(self, min_score: float = 0.5, min_size: float = 20.0, backend: str = "pytorch",
                 fallback: FaceDetector | None = None, num_threads: int | None = None) -> None:
        self.min_score = float(min_score)  # MediaPipe's own threshold for this model
        self.min_size = float(min_size)
        self.backend = backend
        self.fallback = fallback or FaceDetector(backend=backend, num_threads=num_threads)

    def _blazeface(self, image: Image.Image) -> list[Face]:
        found = blazeface(self.backend).detect(np.asarray(_to_rgb(image)), self.min_score)
        faces = []
        for row in found:
            x0, y0, x1, y1 = (float(v) for v in row[:4])
            if min(x1 - x0, y1 - y0) < self.min_size or not np.all(np.isfinite(row)):
                continue
            landmarks = row[4:12].reshape(4, 2).astype(np.float64)  # eyes, nose, mouth (ears dropped)
            faces.append(Face(box=(x0, y0, x1, y1), score=float(row[-1]), landmarks=landmarks, scheme="blazeface"))
        faces.sort(key=lambda f: f.area * f.score, reverse=True)
        return faces

    def detect(self, image: Image.Image, max_side: int | None = None) -> list[Face]:
        return self._blazeface(image) or self.fallback.detect(image, max_side=max_side)

    def largest(self, image: Image.Image, max_side: int | None = None) -> Face | None:
        faces = self._blazeface(image)
        return faces[0] if faces else self.fallback.largest(image, max_side=max_side)
