"""The pieces every MLP rule shares (bias-free dense layers, ReLU between them, softmax cross-entropy), in float
and in fixed point; the fixed-point functions are the twins of firmware/src/mlp.c (onw_mlp_*)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from onward import fixed
from onward.fixed import I64
from onward.nn.dense import F64, dense_fixed, dense_float

if TYPE_CHECKING:
    from onward.reference import FixedReference


def softmax(z: F64) -> F64:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def logits_float(weights: list[F64], x: F64) -> F64:
    """Every layer in float, ReLU between them: the logits."""
    last = len(weights) - 1
    for layer, w in enumerate(weights):
        x = dense_float(w, x, relu=layer < last)
    return x


def forward_fixed(ref: FixedReference, layer: int, x: I64) -> I64:
    """onw_mlp_forward: the layer's dense product, requantised, ReLU unless it is the output layer."""
    y, sats = dense_fixed(ref.weights[layer], x, ref.fmt.weight_frac, relu=layer < ref.num_layers - 1)
    ref.saturations += sats
    return y


def forward_pass_fixed(ref: FixedReference, x: I64) -> list[I64]:
    """onw_mlp_forward_pass: every layer's output, input first excluded (the last one is the logits)."""
    h = [x]
    for layer in range(ref.num_layers):
        h.append(forward_fixed(ref, layer, h[-1]))
    return h[1:]


def output_error_fixed(ref: FixedReference, logits: I64, label: int) -> I64:
    """onw_mlp_output_error: e = softmax(z) - onehot(label) in Q(activation_frac), saturations counted."""
    e, sats = fixed.softmax_error(logits, label, ref.fmt.activation_frac)
    ref.saturations += sats
    return e
