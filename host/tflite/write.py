"""Write an int8 .tflite model from float layers, as TFLite's converter quantises one (full-integer
post-training quantisation), with LiteRT's flatbuffers schema: no TensorFlow.

- Weights: symmetric int8, per tensor (max |w| / 127) or per output channel (conv and FC along axis 0,
  depthwise along axis 3).
- Activations: asymmetric int8 from their range on a calibration batch (always including 0), as the converter's
  min/max calibration: scale = (max - min) / 255, zero point = round(-128 - min / scale).
- Bias: int32 at scale input scale x weight scale, zero point 0.
- Pooling and RESHAPE keep their input's quantisation; SOFTMAX's output is 1/256, -128.

`Layer` describes one operator; `build(layers, x_calibration, per_channel)` returns the .tflite bytes. The float
forward pass used for calibration is here too (`forward_float`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from onward.tflite.graph import IDENTIFIER, schema
from onward.tflite.kernels.common import window

F64 = NDArray[np.float64]
ACTIVATION_CODES = {"none": 0, "relu": 1, "relu6": 3}
OPCODES = {"fc": "FULLY_CONNECTED", "conv": "CONV_2D", "depthwise": "DEPTHWISE_CONV_2D",
           "avgpool": "AVERAGE_POOL_2D", "maxpool": "MAX_POOL_2D", "reshape": "RESHAPE", "softmax": "SOFTMAX"}


@dataclass(frozen=True)
class Layer:
    kind: str  # a key of OPCODES
    weights: F64 | None = None  # fc (out, in); conv (out, kh, kw, in); depthwise (1, kh, kw, in * multiplier)
    bias: F64 | None = None
    activation: str = "none"  # none, relu, relu6
    stride: int = 1
    padding: str = "same"  # same, valid
    pool: int = 2  # pooling window (stride = window when stride is left at 1)
    shape: tuple[int, ...] = ()  # reshape: the new shape without the batch
    options: dict[str, Any] = field(default_factory=dict)  # depthwise: "multiplier"; conv, depthwise: "dilation"


def _act(y: F64, activation: str) -> F64:
    if activation == "relu":
        return np.maximum(y, 0.0)
    if activation == "relu6":
        return np.clip(y, 0.0, 6.0)
    return y


def _patches(x: F64, kh: int, kw: int, stride: int, mode: str, dilation: int = 1,
             ) -> tuple[F64, NDArray[np.bool_]]:
    from onward.tflite.kernels.conv_2d import windows

    win = window(x.shape[1:3], (kh, kw), (stride, stride), (dilation, dilation), mode)
    return windows(x, kh, kw, win.stride, win.dilation, win.pad, win.out, 0)  # type: ignore[arg-type]


def pool_stride(layer: Layer) -> int:
    return layer.pool if layer.stride == 1 else layer.stride


def forward_float(layer: Layer, x: F64) -> F64:
    """One layer in float (NHWC), the converter's view of the model."""
    if layer.kind == "fc":
        assert layer.weights is not None
        y = x.reshape(x.shape[0], -1) @ layer.weights.T + (0 if layer.bias is None else layer.bias)
    elif layer.kind in ("conv", "depthwise"):
        assert layer.weights is not None
        w = layer.weights
        p, _ = _patches(x.astype(np.float64), w.shape[1], w.shape[2], layer.stride, layer.padding,
                        layer.options.get("dilation", 1))
        if layer.kind == "conv":
            y = np.einsum("nyxabi,cabi->nyxc", p, w)
        else:
            y = np.einsum("nyxabc,abc->nyxc", np.repeat(p, w.shape[3] // x.shape[3], axis=-1), w[0])
        y = y + (0 if layer.bias is None else layer.bias)
    elif layer.kind in ("avgpool", "maxpool"):
        fill = 0.0 if layer.kind == "avgpool" else -np.inf
        p, valid = _patches(x.astype(np.float64), layer.pool, layer.pool, pool_stride(layer), layer.padding)
        p = np.where(valid[None, ..., None], p, fill)
        y = p.sum(axis=(3, 4)) / valid.sum(axis=(2, 3))[None, :, :, None] if layer.kind == "avgpool" \
            else p.max(axis=(3, 4))
    elif layer.kind == "reshape":
        y = x.reshape((x.shape[0], *layer.shape))
    elif layer.kind == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        y = e / e.sum(axis=-1, keepdims=True)
    else:
        raise ValueError(f"unknown layer kind {layer.kind!r}")
    return _act(y, layer.activation)


def activation_quantization(values: F64) -> tuple[float, int]:
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    scale = float(np.float32(max(hi - lo, 1e-8) / 255.0))
    zero_point = int(np.clip(round(-128 - lo / scale), -128, 127))
    return scale, zero_point


def weight_scales(w: F64, axis: int | None) -> NDArray[np.float32]:
    """Symmetric int8 scales: max |w| / 127 over the tensor, or per channel along `axis`."""
    if axis is None:
        peak = np.array([np.abs(w).max()])
    else:
        peak = np.abs(np.moveaxis(w, axis, 0)).reshape(w.shape[axis], -1).max(axis=1)
    return np.maximum(peak / 127.0, 1e-12).astype(np.float32)


def quantise_weights(w: F64, scales: NDArray[np.float32], axis: int | None) -> NDArray[np.int8]:
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = -1
    return np.clip(np.round(w / scales.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)


class Builder:
    """Tensors and operators appended to a ModelT's first subgraph (a new model, or a read one being extended)."""

    def __init__(self, model: Any | None = None) -> None:
        s = self.s = schema()
        if model is None:
            model = s.ModelT()
            model.version = 3
            model.buffers = [s.BufferT()]  # buffer 0 is the empty buffer by convention
            sub = s.SubGraphT()
            sub.tensors, sub.operators, sub.inputs, sub.outputs = [], [], [], []
            model.subgraphs, model.operatorCodes = [sub], []
        self.model, self.sub = model, model.subgraphs[0]

    def tensor(self, name: str, shape: tuple[int, ...], type_: int, scale: Any = None, zero_point: Any = None,
               data: bytes | None = None, axis: int = 0) -> int:
        s, model = self.s, self.model
        t = s.TensorT()
        t.name, t.shape, t.type = name, list(shape), type_
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale = [float(v) for v in np.atleast_1d(scale)]
            q.zeroPoint = [int(v) for v in np.atleast_1d(zero_point)]
            q.quantizedDimension = axis
            t.quantization = q
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(data, dtype=np.uint8)
            model.buffers.append(b)
            t.buffer = len(model.buffers) - 1
        self.sub.tensors.append(t)
        return len(self.sub.tensors) - 1

    def quantisation(self, index: int) -> tuple[float, int]:
        q = self.sub.tensors[index].quantization
        return float(q.scale[0]), int(q.zeroPoint[0])

    def weighted(self, i: int, kind: str, weights: F64, bias: F64 | None, x: int, per_channel: bool,
                 ) -> list[int]:
        """The input, weight and bias tensors of a FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D on tensor x."""
        s = self.s
        axis = (3 if kind == "depthwise" else 0) if per_channel else None
        w_scales = weight_scales(weights, axis)
        w_q = quantise_weights(weights, w_scales, axis)
        channels = weights.shape[3 if kind == "depthwise" else 0]
        bias = np.zeros(channels) if bias is None else bias
        b_scales = (np.float32(self.quantisation(x)[0]) * w_scales).astype(np.float32)
        b_q = np.round(bias / np.broadcast_to(b_scales.astype(np.float64), bias.shape)).astype(np.int32)
        return [x, self.tensor(f"l{i}_weights", weights.shape, s.TensorType.INT8, w_scales,
                               np.zeros(w_scales.size, dtype=np.int64), w_q.tobytes(), axis or 0),
                self.tensor(f"l{i}_bias", bias.shape, s.TensorType.INT32, b_scales,
                            np.zeros(b_scales.size, dtype=np.int64), b_q.tobytes())]

    def operator(self, name: str, inputs: list[int], outputs: list[int], options: tuple[int, Any]) -> None:
        s, model = self.s, self.model
        codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
        builtin = getattr(s.BuiltinOperator, name)
        if builtin not in codes:
            code = s.OperatorCodeT()
            code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
            model.operatorCodes.append(code)
            codes.append(builtin)
        op = s.OperatorT()
        op.opcodeIndex = codes.index(builtin)
        op.inputs, op.outputs = inputs, outputs
        op.builtinOptionsType, op.builtinOptions = options
        self.sub.operators.append(op)

    def bytes(self) -> bytes:
        import flatbuffers

        builder = flatbuffers.Builder(1024)
        builder.Finish(self.model.Pack(builder), file_identifier=IDENTIFIER)
        return bytes(builder.Output())


def build(layers: list[Layer], x_calibration: F64, per_channel: bool = True, description: str = "onward") -> bytes:
    """The .tflite bytes of the int8 model whose float version is `layers`, on inputs shaped like x_calibration
    (n, *sample shape)."""
    b = Builder()
    s = b.s
    b.model.description = description
    x = np.asarray(x_calibration, dtype=np.float64)
    scale, zp = activation_quantization(x)
    current = b.tensor("input", (1, *x.shape[1:]), s.TensorType.INT8, np.float32(scale), zp)
    b.sub.inputs = [current]
    for i, layer in enumerate(layers):
        y = forward_float(layer, x)
        in_scale, in_zp = b.quantisation(current)
        inputs = [current]
        if layer.kind in ("fc", "conv", "depthwise"):
            assert layer.weights is not None
            inputs = b.weighted(i, layer.kind, layer.weights, layer.bias, current, per_channel)
            out_scale, out_zp = activation_quantization(y)
        elif layer.kind == "softmax":
            out_scale, out_zp = 1.0 / 256.0, -128
        else:
            out_scale, out_zp = in_scale, in_zp
        if layer.kind == "reshape":
            shape_data = np.array([1, *layer.shape], dtype=np.int32)
            inputs.append(b.tensor(f"l{i}_shape", (shape_data.size,), s.TensorType.INT32, data=shape_data.tobytes()))
        out_shape = (1, *y.shape[1:])
        out = b.tensor(f"l{i}_{layer.kind}", out_shape, s.TensorType.INT8, np.float32(out_scale), out_zp)
        b.operator(OPCODES[layer.kind], inputs, [out], options(s, layer, out_shape))
        current, x = out, y
    b.sub.outputs = [current]
    return b.bytes()


def options(s: Any, layer: Layer, out_shape: tuple[int, ...]) -> tuple[int, Any]:
    act = ACTIVATION_CODES[layer.activation]
    pad = s.Padding.SAME if layer.padding == "same" else s.Padding.VALID
    if layer.kind == "fc":
        o = s.FullyConnectedOptionsT()
        o.fusedActivationFunction = act
        return s.BuiltinOptions.FullyConnectedOptions, o
    if layer.kind in ("conv", "depthwise"):
        o = s.Conv2DOptionsT() if layer.kind == "conv" else s.DepthwiseConv2DOptionsT()
        o.padding, o.strideH, o.strideW, o.fusedActivationFunction = pad, layer.stride, layer.stride, act
        o.dilationHFactor = o.dilationWFactor = layer.options.get("dilation", 1)
        if layer.kind == "depthwise":
            assert layer.weights is not None
            o.depthMultiplier = layer.options.get("multiplier", 1)
            return s.BuiltinOptions.DepthwiseConv2DOptions, o
        return s.BuiltinOptions.Conv2DOptions, o
    if layer.kind in ("avgpool", "maxpool"):
        o = s.Pool2DOptionsT()
        o.padding, o.fusedActivationFunction = pad, act
        o.strideH = o.strideW = pool_stride(layer)
        o.filterHeight = o.filterWidth = layer.pool
        return s.BuiltinOptions.Pool2DOptions, o
    if layer.kind == "reshape":
        o = s.ReshapeOptionsT()
        o.newShape = [1, *layer.shape]
        return s.BuiltinOptions.ReshapeOptions, o
    o = s.SoftmaxOptionsT()
    o.beta = 1.0
    return s.BuiltinOptions.SoftmaxOptions, o
