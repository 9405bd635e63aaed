"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 (reference_integer_ops::AveragePool / MaxPool), NHWC, per channel over the
window's positions inside the input (padding is not counted). Average: the sum divided by that count, rounded
half away from zero ((sum +- count / 2) / count, C division); max: the largest value. Both are clamped to the
fused activation's range; input and output share scale and zero point."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onward.tflite.graph import Graph, Operator, TfliteError
from onward.tflite.kernels.common import I64, int8_tensor, window_of
from onward.tflite.kernels.conv_2d import windows
from onward.tflite.quantization import activation_range


@dataclass(frozen=True)
class Params:
    average: bool
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    out_shape: tuple[int, int, int]
    lo: int
    hi: int


def prepare(graph: Graph, op: Operator) -> Params:
    x, y = int8_tensor(graph, op, op.inputs[0], "input"), int8_tensor(graph, op, op.outputs[0], "output")
    if (x.scale, x.zero_point) != (y.scale, y.zero_point):
        raise TfliteError(f"{graph.source}: operator {op.index} ({op.kind}): input and output quantisation differ; "
                          f"TFLite's int8 pooling keeps them equal")
    o = op.options
    kernel = (o.get("filterHeight", 1), o.get("filterWidth", 1))
    win = window_of(op, x.shape[1:3], kernel)
    lo, hi = activation_range(o.get("activation", "none"), y.scale, y.zero_point)
    return Params(op.kind == "AVERAGE_POOL_2D", kernel, win.stride, win.pad, (*win.out, x.shape[3]), lo, hi)


def evaluate(p: Params, x: I64) -> I64:
    x = np.asarray(x, dtype=np.int64)
    patches, valid = windows(x, *p.kernel, p.stride, (1, 1), p.pad, p.out_shape[:2], 0 if p.average else -(2**31))
    if p.average:
        total = patches.sum(axis=(3, 4))
        count = valid.sum(axis=(2, 3))[None, :, :, None]
        half = count // 2
        num = np.where(total > 0, total + half, total - half)
        out = np.sign(num) * (np.abs(num) // count)  # C division truncates toward zero
    else:
        out = patches.max(axis=(3, 4))
    return np.clip(out, p.lo, p.hi)
