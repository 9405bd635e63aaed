"""CONV_2D, int8 per-channel (reference_integer_ops::ConvPerChannel), NHWC: for each output position and filter c,
acc = sum over the window and the input channels of w[c, ky, kx, i] (x[y, x, i] - x_zero_point) + bias[c]; window
positions outside the input are skipped (padding with the input's zero point), then the output stage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onward.tflite.graph import Graph, Operator, TfliteError
from onward.tflite.kernels.common import I64, OutputStage, bias_of, int8_tensor, output_stage, window_of

ROUNDING = "double_half_up"  # measured against LiteRT's built-in kernels (tests/test_tflite.py, docs/tflite.md)


@dataclass(frozen=True)
class Params:
    weights: I64  # (out, kh, kw, in) int8
    bias: I64
    input_zero_point: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int]  # before, (height, width)
    out_shape: tuple[int, int, int]  # (height, width, channels)
    stage: OutputStage


def prepare(graph: Graph, op: Operator) -> Params:
    x, w = int8_tensor(graph, op, op.inputs[0], "input"), int8_tensor(graph, op, op.inputs[1], "filter")
    y = int8_tensor(graph, op, op.outputs[0], "output")
    if w.data is None or len(w.shape) != 4 or len(x.shape) != 4:
        raise TfliteError(f"{graph.source}: operator {op.index} ({op.kind}): expected an NHWC input and a "
                          f"constant (out, kh, kw, in) filter, got {list(x.shape)} and {list(w.shape)}")
    win = window_of(op, x.shape[1:3], (w.shape[1], w.shape[2]))
    return Params(w.data.astype(np.int64), bias_of(graph, op, w.shape[0]), x.zero_point, win.stride, win.dilation,
                  win.pad, (*win.out, w.shape[0]), output_stage(graph, op, x, w, y, ROUNDING))


def windows(x: I64, kh: int, kw: int, stride: tuple[int, int], dilation: tuple[int, int], pad: tuple[int, int],
            out_hw: tuple[int, int], fill: int) -> tuple[I64, I64]:
    """(patches, valid): patches (n, oh, ow, kh, kw, c) of the NHWC input x, with `fill` where the window leaves
    the input; valid (oh, ow, kh, kw) marks the positions inside."""
    h, w = x.shape[1:3]
    oh, ow = out_hw
    rows = np.arange(oh)[:, None] * stride[0] - pad[0] + np.arange(kh)[None, :] * dilation[0]  # (oh, kh)
    cols = np.arange(ow)[:, None] * stride[1] - pad[1] + np.arange(kw)[None, :] * dilation[1]  # (ow, kw)
    rin, cin = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
    r, q = np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)
    patches = x[:, r[:, None, :, None], q[None, :, None, :], :]  # (n, oh, ow, kh, kw, c)
    valid = rin[:, None, :, None] & cin[None, :, None, :]
    return np.where(valid[None, ..., None], patches, fill), valid


def evaluate(p: Params, x: I64) -> I64:
    """x: (n, h, w, in) int8; returns (n, oh, ow, out)."""
    x = np.asarray(x, dtype=np.int64)
    _, kh, kw, _ = p.weights.shape
    patches, _ = windows(x, kh, kw, p.stride, p.dilation, p.pad, p.out_shape[:2], p.input_zero_point)
    acc = np.einsum("nyxabi,cabi->nyxc", patches - p.input_zero_point, p.weights) + p.bias
    return p.stage.apply(acc)
