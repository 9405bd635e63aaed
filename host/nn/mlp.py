"""The pieces every MLP rule shares (bias-free dense layers, ReLU between them, softmax cross-entropy), in float
and in fixed point; the fixed-point functions are the twins of firmware/src/mlp.c (onw_mlp_*)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from onward import fixed
from onward.data import Dataset
from onward.fixed import I64
from onward.nn.dense import F64, dense_fixed, dense_float
from onward.schedule import schedule

if TYPE_CHECKING:
    from onward.reference import FixedReference
    from onward.spec import Spec


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


def output_error_fixed(ref: FixedReference, logits: I64, target: int) -> I64:
    """onw_mlp_output_error in Q(activation_frac), saturations counted. Classification: e = softmax(z) -
    onehot(target), the gradient of the cross-entropy; regression: e = sat16(z_0 - target), the gradient of the
    squared error (z_0 - y)^2 / 2, with the target in Q(activation_frac) as z_0 is."""
    if ref.model.spec.data.task == "regression":
        e, sats = fixed.sat16(fixed.as_i64(logits[:1]) - target)
    else:
        e, sats = fixed.softmax_error(logits, target, ref.fmt.activation_frac)
    ref.saturations += sats
    return e


def output_error_float(logits: F64, y: F64, regression: bool) -> F64:
    """The float twin of output_error_fixed: softmax(z) - y (y one-hot), or z - y (y the target column)."""
    return logits - y if regression else softmax(logits) - y


def fit_float(spec: Spec, data: Dataset, epochs: int | None, step: Callable[[F64, F64, float], None],
              score: Callable[[F64, I64], float]) -> list[float]:
    """A float MLP's training: the schedule (onward.schedule) in mini-batches of rule.batch_size,
    step(x, y, lr) with y one-hot (classification) or the target column (regression); the score on the test set
    after each epoch."""
    batch = spec.rule.batch_size
    onehot = data.y_train[:, None] if data.task == "regression" else np.eye(data.classes)[data.y_train]
    history = []
    for epoch in schedule(spec, len(data.y_train), 1, epochs):
        for start in range(0, len(epoch.order), batch):
            idx = epoch.order[start:start + batch]
            step(data.x_train[idx], onehot[idx], epoch.lr)
        history.append(score(data.x_test, data.y_test))
    return history
