"""PEPITA (Dellaferrera & Kreiman, ICML 2022): learning from two forward passes.

Pass 1 runs the clean input and gives the error e = softmax(h_L) - y. Pass 2 runs the input modulated by a
fixed random projection of the error, x + F e. Hidden layers learn from the difference of their two
activations, the output layer from the error: dW_l = (h_l - h_l^err) (h_{l-1}^err)^T, dW_L = e (h_{L-1}^err)^T.

`train_step_float` is the float reference (mini-batches and momentum as in the paper);
`train_step_fixed` is the bit-exact specification of firmware/src/rules.c. Pass 1 keeps every h_l.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from onward import fixed
from onward.fixed import I64
from onward.nn.dense import F64, dense_fixed, dense_float

if TYPE_CHECKING:
    from onward.reference import FixedReference, FloatReference


def softmax(z: F64) -> F64:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def apply_update_float(ref: FloatReference, layer: int, delta: F64, x_in: F64) -> None:
    """SGD with momentum on dW = delta^T x_in / batch (PEPITA's W <- W - lr * v)."""
    grad = delta.T @ x_in / x_in.shape[0]
    ref.velocity[layer] = ref.momentum * ref.velocity[layer] + grad
    ref.weights[layer] -= ref.lr * ref.velocity[layer]


def train_step_float(ref: FloatReference, x: F64, y_onehot: F64) -> F64:
    last = len(ref.weights) - 1
    h = [x]
    for layer, w in enumerate(ref.weights):
        h.append(dense_float(w, h[-1], relu=layer < last))
    e = softmax(h[-1]) - y_onehot
    h_err = x + e @ ref.feedback.T
    for layer, w in enumerate(ref.weights):
        if layer < last:
            h_next = dense_float(w, h_err, relu=True)
            apply_update_float(ref, layer, h[layer + 1] - h_next, h_err)
            h_err = h_next
        else:  # the output layer learns from the error; its modulated output is not needed
            apply_update_float(ref, layer, e, h_err)
    return h[-1]


# --- fixed point: pieces shared with MEMPEPITA --------------------------------------------------

def output_error_fixed(ref: FixedReference, logits: I64, label: int) -> I64:
    """e = softmax(z) - onehot(label), from Q15 probabilities to Q(activation_frac)."""
    p = fixed.softmax_q15(logits, ref.fmt.activation_frac)
    p[label] -= fixed.ONE_Q15
    e, sats = fixed.requant(p, 15, ref.fmt.activation_frac)
    ref.saturations += sats
    return e


def modulate_fixed(ref: FixedReference, x: I64, e: I64) -> I64:
    """x_err = sat16(x + requant(F e)): F (Q ff) times e (Q af), back to Q af."""
    fe, sats1 = fixed.requant(ref.feedback_q @ e, ref.fmt.feedback_frac, 0)
    x_err, sats2 = fixed.sat16(x + fe)
    ref.saturations += sats1 + sats2
    return x_err


def forward_fixed(ref: FixedReference, layer: int, x: I64) -> I64:
    y, sats = dense_fixed(ref.weights[layer], x, ref.fmt.weight_frac, relu=layer < ref.num_layers - 1)
    ref.saturations += sats
    return y


def hidden_delta_fixed(ref: FixedReference, h: I64, h_err: I64) -> I64:
    delta, sats = fixed.sat16(h - h_err)
    ref.saturations += sats
    return delta


def train_step_fixed(ref: FixedReference, x: I64, label: int) -> I64:
    last = ref.num_layers - 1
    h = [x]
    for layer in range(ref.num_layers):
        h.append(forward_fixed(ref, layer, h[-1]))
    e = output_error_fixed(ref, h[-1], label)
    h_err = modulate_fixed(ref, x, e)
    for layer in range(ref.num_layers):
        if layer < last:
            h_next = forward_fixed(ref, layer, h_err)
            ref.update(layer, hidden_delta_fixed(ref, h[layer + 1], h_next), h_err)
            h_err = h_next
        else:
            ref.update(layer, e, h_err)
    return h[-1]
