"""FULLY_CONNECTED, int8 (reference_integer_ops::FullyConnected and its per-channel twin): for each output o,
acc = sum_j w[o, j] (x[j] - x_zero_point) + bias[o], then the output stage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onward.tflite.graph import Graph, Operator, TfliteError
from onward.tflite.kernels.common import I64, OutputStage, bias_of, int8_tensor, output_stage

ROUNDING = "double_half_up"  # measured against LiteRT's built-in kernels (tests/test_tflite.py, docs/tflite.md)


@dataclass(frozen=True)
class Params:
    weights: I64  # (out, in) int8
    bias: I64  # (out,) int32
    input_zero_point: int
    stage: OutputStage


def prepare(graph: Graph, op: Operator) -> Params:
    x, w = int8_tensor(graph, op, op.inputs[0], "input"), int8_tensor(graph, op, op.inputs[1], "weights")
    y = int8_tensor(graph, op, op.outputs[0], "output")
    if w.data is None or len(w.shape) != 2:
        raise TfliteError(f"{graph.source}: operator {op.index} (FULLY_CONNECTED): its weights must be a constant "
                          f"(out, in) matrix, got shape {list(w.shape)}")
    stage = output_stage(graph, op, x, w, y, ROUNDING, product_in_float32=not w.quantization.per_channel)  # type: ignore[union-attr]
    return Params(w.data.astype(np.int64), bias_of(graph, op, w.shape[0]), x.zero_point, stage)


def evaluate(p: Params, x: I64) -> I64:
    """x: (..., in) int8 values (any leading shape: the batch); returns (..., out)."""
    x = np.asarray(x, dtype=np.int64).reshape(-1, p.weights.shape[1])
    acc = (x - p.input_zero_point) @ p.weights.T + p.bias
    return p.stage.apply(acc)
