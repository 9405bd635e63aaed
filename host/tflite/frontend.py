"""A frozen int8 feature extractor in front of a learning head: the imported .tflite model up to a cut tensor, run
with TFLite's integer semantics on the device (firmware/src/tflite_*.c, frontend.c) and here (its specification).

The wire carries the model's int8 input (each value an int16 of the frame, clamped to [-128, 127]); the extractor
runs to the cut tensor (int8, scale s, zero point z); each feature f becomes the head's input in Q(af),
sat16(multiply_double_half_up(f - z, q, shift)) with (q, shift) = quantize_multiplier(s * 2**af), saturations
counted. The head is any rule's model, built on the features' float values (f - z) * s.

`Frontend.table()` lays the operators out for the C: FIELDS int32 values per operator, the int8 weights, the int32
biases and the per-channel multipliers and shifts, each one array constant in model.c (flash)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from onward import fixed
from onward.tflite import interpret
from onward.tflite.graph import Graph, TfliteError, read
from onward.tflite.kernels import conv_2d, depthwise_conv_2d, fully_connected, pooling
from onward.tflite.quantization import multiply_double_half_up, quantize_multiplier

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
KINDS = {"FULLY_CONNECTED": 1, "CONV_2D": 2, "DEPTHWISE_CONV_2D": 3, "AVERAGE_POOL_2D": 4, "MAX_POOL_2D": 5,
         "RESHAPE": 6}
ROUNDINGS = {"double": 0, "double_half_up": 1}
FIELDS = ("kind", "rounding", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "kh", "kw", "stride_h",
          "stride_w", "pad_h", "pad_w", "dil_h", "dil_w", "multiplier", "in_zp", "out_zp", "act_min", "act_max",
          "weights", "bias", "quant", "channels_q")


def classifier_input(graph: Graph) -> int:
    """The default cut: the input of the last FULLY_CONNECTED (the classifier the head replaces)."""
    fcs = [op for op in graph.operators if op.kind == "FULLY_CONNECTED"]
    if not fcs:
        raise TfliteError(f"{graph.source}: no FULLY_CONNECTED operator to cut before; name the cut tensor "
                          f"(`frozen.cut`)")
    return fcs[-1].inputs[0]


@dataclass(frozen=True)
class Frontend:
    graph: Graph
    cut: int  # the tensor whose values are the features
    act_frac: int

    @classmethod
    def load(cls, path: str | Path, cut: int, act_frac: int) -> Frontend:
        graph = read(path)
        cut = classifier_input(graph) if cut < 0 else cut
        if not 0 <= cut < len(graph.tensors):
            raise TfliteError(f"{graph.source}: `frozen.cut` = {cut} is not a tensor index "
                              f"(0..{len(graph.tensors) - 1})")
        fe = cls(graph, cut, act_frac)
        if cut not in {op.outputs[0] for op, _ in fe.ops}:
            raise TfliteError(f"{graph.source}: `frozen.cut` = {cut} ({graph.tensor(cut).name!r}) is not the output "
                              f"of an operator before the first SOFTMAX")
        return fe

    @cached_property
    def ops(self) -> list[Any]:
        """(operator, params) from the input to the cut (RESHAPE's params: its output shape)."""
        return interpret.prepared_until(self.graph, self.cut)

    @property
    def input(self) -> Any:
        return self.graph.tensor(self.graph.inputs[0])

    @property
    def raw_dim(self) -> int:
        return int(np.prod(self.input.shape[1:]))

    @property
    def features(self) -> int:
        return int(np.prod(self.graph.tensor(self.cut).shape[1:]))

    @property
    def feature_rescale(self) -> tuple[int, int, int]:
        """(zero point, q, shift): feature f -> (f - zero point) * s * 2**af."""
        t = self.graph.tensor(self.cut)
        q, shift = quantize_multiplier(float(np.float32(t.scale)) * 2.0**self.act_frac)
        return t.zero_point, q, shift

    def encode(self, x: F64) -> I64:
        """Float samples (n, ...) as the model's int8 input: round(x / s) + z, clamped (the wire's values)."""
        t = self.input
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if x.shape[1] != self.raw_dim:
            raise TfliteError(f"{self.graph.source}: the model's input holds {self.raw_dim} values "
                              f"({list(t.shape[1:])}), the data set's samples {x.shape[1]}")
        return np.clip(np.round(x / float(np.float32(t.scale))) + t.zero_point, -128, 127).astype(np.int64)

    def features_int8(self, x_raw: I64) -> I64:
        """The cut tensor's int8 values, (n, features)."""
        x = np.clip(np.asarray(x_raw, dtype=np.int64), -128, 127).reshape((-1, *self.input.shape[1:]))
        return interpret.run(self.graph, x, stop=self.cut, ops=self.ops).reshape(len(x), -1)

    def features_float(self, x_raw: I64) -> F64:
        t = self.graph.tensor(self.cut)
        return (self.features_int8(x_raw) - t.zero_point) * float(np.float32(t.scale))

    def features_q(self, x_raw: I64) -> tuple[I64, int]:
        """The head's input in Q(act_frac) and the saturations of its rescale: the C's onw_frontend."""
        zp, q, shift = self.feature_rescale
        return fixed.sat16(multiply_double_half_up(self.features_int8(x_raw) - zp, q, shift))

    # --- the C's tables ---------------------------------------------------------------------------------------

    def table(self) -> dict[str, I64]:
        rows, weights, biases, quant = [], [], [], []
        for op, p in self.ops:
            x, y = self.graph.tensor(op.inputs[0]), self.graph.tensor(op.outputs[0])
            xs, ys = _hwc(x.shape), _hwc(y.shape)
            row = dict.fromkeys(FIELDS, 0)
            row.update(kind=KINDS[op.kind], in_h=xs[0], in_w=xs[1], in_c=xs[2], out_h=ys[0], out_w=ys[1],
                       out_c=ys[2], dil_h=1, dil_w=1, multiplier=1, act_min=-128, act_max=127,
                       weights=sum(w.size for w in weights), bias=sum(b.size for b in biases), quant=len(quant))
            if op.kind in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"):
                module = {"FULLY_CONNECTED": fully_connected, "CONV_2D": conv_2d,
                          "DEPTHWISE_CONV_2D": depthwise_conv_2d}[op.kind]
                st = p.stage
                row.update(rounding=ROUNDINGS[module.ROUNDING], in_zp=p.input_zero_point, out_zp=st.zero_point,
                           act_min=st.lo, act_max=st.hi, channels_q=len(st.multipliers))
                weights.append(np.asarray(p.weights).ravel())
                biases.append(np.asarray(p.bias).ravel())
                quant += [v for pair in zip(st.multipliers, st.shifts, strict=True) for v in pair]
                if op.kind != "FULLY_CONNECTED":
                    kh, kw = (p.weights.shape[1:3] if op.kind == "CONV_2D" else p.weights.shape[:2])
                    row.update(kh=kh, kw=kw, stride_h=p.stride[0], stride_w=p.stride[1], pad_h=p.pad[0],
                               pad_w=p.pad[1], dil_h=p.dilation[0], dil_w=p.dilation[1],
                               multiplier=getattr(p, "multiplier", 1))
            elif op.kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
                assert isinstance(p, pooling.Params)
                row.update(kh=p.kernel[0], kw=p.kernel[1], stride_h=p.stride[0], stride_w=p.stride[1],
                           pad_h=p.pad[0], pad_w=p.pad[1], act_min=p.lo, act_max=p.hi)
            rows.append([row[f] for f in FIELDS])
        return {"ops": np.asarray(rows, dtype=np.int64), "weights": _joined(weights), "bias": _joined(biases),
                "quant": np.asarray(quant or [0], dtype=np.int64)}

    @property
    def max_tensor(self) -> int:
        """The largest activation (int8 values) the extractor holds: each of its two ping-pong buffers."""
        sizes = [int(np.prod(self.graph.tensor(op.outputs[0]).shape[1:])) for op, _ in self.ops]
        return max([self.raw_dim, *sizes])


def _hwc(shape: tuple[int, ...]) -> list[int]:
    """(height, width, channels) of an NHWC tensor; a flat one is 1 x 1 x its size."""
    return [int(v) for v in shape[1:4]] if len(shape) == 4 else [1, 1, int(np.prod(shape[1:]))]


def _joined(parts: list[I64]) -> I64:
    """The arrays one after another (one zero when there are none: C has no empty arrays)."""
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(1, dtype=np.int64)
