"""BlazeFace's network: MediaPipe's TFLite graph (fp16 constants, 164 operators of nine kinds) rebuilt as torch ops.

Used by the PyTorch backend and to export the network to ONNX (`hf_detector.inference.export`, the export
cache); the light runtime runs the exported file and never imports this module.

Stage: preprocessing (imports nothing else of the package).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


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
