"""Run a Graph with onward's int8 reference kernels: the operators in order, each on the tensors its inputs name.

`run(graph, x, stop=None)` takes int8 inputs (n, *input shape) and returns the graph's output, or the tensor
`stop` (a cut point: the frozen feature extractor's output). SOFTMAX is not run: onward cuts a model before it
(the trainable head replaces the classifier); running into one is an error naming it."""

from __future__ import annotations

from typing import Any

import numpy as np

from onward.tflite.graph import Graph, Operator, TfliteError
from onward.tflite.kernels import conv_2d, depthwise_conv_2d, fully_connected, pooling
from onward.tflite.kernels.common import I64

KERNELS: dict[str, Any] = {"FULLY_CONNECTED": fully_connected, "CONV_2D": conv_2d,
                           "DEPTHWISE_CONV_2D": depthwise_conv_2d, "AVERAGE_POOL_2D": pooling, "MAX_POOL_2D": pooling}


def prepared(graph: Graph) -> list[tuple[Operator, Any]]:
    """Every operator with its kernel's parameters (RESHAPE: the output shape)."""
    out: list[tuple[Operator, Any]] = []
    for op in graph.operators:
        if op.kind == "RESHAPE":
            out.append((op, graph.tensor(op.outputs[0]).shape))
        elif op.kind == "SOFTMAX":
            out.append((op, None))
        else:
            out.append((op, KERNELS[op.kind].prepare(graph, op)))
    return out


def prepared_until(graph: Graph, stop: int) -> list[tuple[Operator, Any]]:
    """The operators up to the one that computes tensor `stop` (none past it, no SOFTMAX), prepared."""
    out = []
    for op, params in prepared(graph):
        if op.kind == "SOFTMAX":
            break
        out.append((op, params))
        if op.outputs[0] == stop:
            break
    return out


def run(graph: Graph, x: I64, stop: int | None = None, ops: list[tuple[Operator, Any]] | None = None) -> I64:
    values: dict[int, I64] = {graph.inputs[0]: np.asarray(x, dtype=np.int64)}
    target = graph.outputs[0] if stop is None else stop
    for op, params in ops if ops is not None else prepared(graph):
        if target in values:
            break
        x_in = values[op.inputs[0]]
        if op.kind == "RESHAPE":
            y = x_in.reshape((x_in.shape[0], *params[1:]))
        elif op.kind == "SOFTMAX":
            raise TfliteError(f"{graph.source}: operator {op.index} is SOFTMAX: onward runs a model up to the "
                              f"classifier's logits (cut before it)")
        else:
            y = KERNELS[op.kind].evaluate(params, x_in)
        values[op.outputs[0]] = y
    if target not in values:
        raise TfliteError(f"{graph.source}: tensor {target} is not computed by the operators")
    return values[target]
