"""What the int8 kernels share: the output stage (requantise, add the output zero point, clamp to the fused
activation's range), per-channel multipliers, and TFLite's padding arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from onward.tflite.graph import Graph, Operator, Tensor, TfliteError
from onward.tflite.quantization import MULTIPLY, activation_range, quantize_multiplier

I64 = NDArray[np.int64]


@dataclass(frozen=True)
class OutputStage:
    """acc -> clamp(multiply(acc, q_c, shift_c) + zero_point, lo, hi), per output channel c (the last axis)."""

    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    zero_point: int
    lo: int
    hi: int
    rounding: str  # "double" or "single" (onward.tflite.quantization)

    def apply(self, acc: I64) -> I64:
        acc = np.asarray(acc, dtype=np.int64)
        out = np.empty_like(acc)
        multiply = MULTIPLY[self.rounding]
        if len(self.multipliers) == 1:
            out = multiply(acc, self.multipliers[0], self.shifts[0])
        else:
            for c, (q, shift) in enumerate(zip(self.multipliers, self.shifts, strict=True)):
                out[..., c] = multiply(acc[..., c], q, shift)
        return np.clip(out + self.zero_point, self.lo, self.hi)


def int8_tensor(graph: Graph, op: Operator, index: int, what: str) -> Tensor:
    t = graph.tensor(index)
    if t.type != "int8" or t.quantization is None:
        raise TfliteError(f"{graph.source}: operator {op.index} ({op.kind}): its {what} (tensor {index}, "
                          f"{t.name!r}) is {t.type}, expected quantised int8")
    return t


def output_stage(graph: Graph, op: Operator, x: Tensor, w: Tensor, y: Tensor, rounding: str,
                 product_in_float32: bool = False) -> OutputStage:
    """The multipliers input scale x filter scale_c / output scale, as TFLite computes them: per channel in double
    (PopulateConvolutionQuantizationParams); a per-tensor FULLY_CONNECTED multiplies the two scales in float32
    first (GetQuantizedConvolutionMultipler), which `product_in_float32` reproduces."""
    assert w.quantization is not None
    if np.any(w.quantization.zero_point != 0):
        raise TfliteError(f"{graph.source}: operator {op.index} ({op.kind}): its weights have a non-zero zero point; "
                          f"int8 weights are symmetric in TFLite")
    pairs = []
    for filter_scale in w.quantization.scale:
        if product_in_float32:
            real = float(np.float32(x.scale) * np.float32(filter_scale)) / float(np.float32(y.scale))
        else:
            real = float(np.float32(x.scale)) * float(np.float32(filter_scale)) / float(np.float32(y.scale))
        pairs.append(quantize_multiplier(real))
    lo, hi = activation_range(op.options.get("activation", "none"), y.scale, y.zero_point)
    return OutputStage(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), y.zero_point, lo, hi, rounding)


def bias_of(graph: Graph, op: Operator, channels: int) -> I64:
    """The int32 bias (zeros when the operator has none)."""
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return np.zeros(channels, dtype=np.int64)
    b = graph.tensor(op.inputs[2])
    if b.data is None or b.type != "int32":
        raise TfliteError(f"{graph.source}: operator {op.index} ({op.kind}): its bias (tensor {b.index}) is "
                          f"{b.type}{'' if b.data is not None else ', not a constant'}, expected a constant int32")
    return b.data.astype(np.int64).reshape(channels)


@dataclass(frozen=True)
class Window:
    """A sliding window over an NHWC input, (height, width) each: TFLite's stride, dilation, padding before, and
    the output size."""

    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int]
    out: tuple[int, int]


def window(in_hw: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
           mode: str) -> Window:
    (oh, ph), (ow, pw) = (padding(in_hw[0], kernel[0], stride[0], dilation[0], mode),
                          padding(in_hw[1], kernel[1], stride[1], dilation[1], mode))
    return Window(stride, dilation, (ph, pw), (oh, ow))


def window_of(op: Operator, in_hw: tuple[int, ...], kernel: tuple[int, int]) -> Window:
    """The window an operator's options give (a pooling operator has no dilation: 1)."""
    o = op.options
    return window(in_hw, kernel, (o.get("strideH", 1), o.get("strideW", 1)),
                  (o.get("dilationHFactor", 1), o.get("dilationWFactor", 1)), o.get("padding", "same"))


def padding(size: int, kernel: int, stride: int, dilation: int, mode: str) -> tuple[int, int]:
    """(output size, padding before) as TFLite's ComputePaddingHeightWidth: SAME pads (total // 2) before."""
    effective = (kernel - 1) * dilation + 1
    if mode == "same":
        out = (size + stride - 1) // stride
    else:
        out = (size - effective + stride) // stride
    total = max(0, (out - 1) * stride + effective - size)
    return out, total // 2
