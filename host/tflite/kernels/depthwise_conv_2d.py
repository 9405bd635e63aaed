"""DEPTHWISE_CONV_2D, int8 per-channel (reference_integer_ops::DepthwiseConvPerChannel), NHWC: output channel
c = i * depth_multiplier + m sees input channel i only: acc = sum over the window of w[0, ky, kx, c]
(x[y, x, i] - x_zero_point) + bias[c], then the output stage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onward.tflite.graph import Graph, Operator, TfliteError
from onward.tflite.kernels.common import I64, OutputStage, bias_of, int8_tensor, output_stage, window_of
from onward.tflite.kernels.conv_2d import windows

ROUNDING = "double"  # gemmlowp's, measured against LiteRT's built-in kernels (tests/test_tflite.py)


@dataclass(frozen=True)
class Params:
    weights: I64  # (kh, kw, in * multiplier) int8
    bias: I64
    multiplier: int
    input_zero_point: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int]
    out_shape: tuple[int, int, int]
    stage: OutputStage


def prepare(graph: Graph, op: Operator) -> Params:
    x, w = int8_tensor(graph, op, op.inputs[0], "input"), int8_tensor(graph, op, op.inputs[1], "filter")
    y = int8_tensor(graph, op, op.outputs[0], "output")
    if w.data is None or len(w.shape) != 4 or w.shape[0] != 1 or len(x.shape) != 4:
        raise TfliteError(f"{graph.source}: operator {op.index} ({op.kind}): expected an NHWC input and a "
                          f"constant (1, kh, kw, channels) filter, got {list(x.shape)} and {list(w.shape)}")
    multiplier = w.shape[3] // x.shape[3]
    if multiplier * x.shape[3] != w.shape[3]:
        raise TfliteError(f"{graph.source}: operator {op.index} ({op.kind}): {w.shape[3]} output channels are not a "
                          f"multiple of the {x.shape[3]} input channels")
    win = window_of(op, x.shape[1:3], (w.shape[1], w.shape[2]))
    return Params(w.data[0].astype(np.int64), bias_of(graph, op, w.shape[3]), multiplier, x.zero_point, win.stride,
                  win.dilation, win.pad, (*win.out, w.shape[3]), output_stage(graph, op, x, w, y, ROUNDING))


def evaluate(p: Params, x: I64) -> I64:
    x = np.asarray(x, dtype=np.int64)
    kh, kw, _ = p.weights.shape
    patches, _ = windows(x, kh, kw, p.stride, p.dilation, p.pad, p.out_shape[:2], p.input_zero_point)
    patches = np.repeat(patches - p.input_zero_point, p.multiplier, axis=-1)  # channel i -> i*m .. i*m + m-1
    acc = np.einsum("nyxabc,abc->nyxc", patches, p.weights) + p.bias
    return p.stage.apply(acc)
