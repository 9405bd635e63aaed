"""PEPITA (Dellaferrera & Kreiman, ICML 2022): learning from two forward passes.

Pass 1 runs the clean input and gives the error e = softmax(h_L) - y (regression: e = h_L - y, the gradient of
the squared error; the output is one linear value). Pass 2 runs the input modulated by a
fixed random projection of the error, x + F e. Hidden layers learn from the difference of their two
activations, the output layer from the error: dW_l = (h_l - h_l^err) (h_{l-1}^err)^T, dW_L = e (h_{L-1}^err)^T.

`Float` is the float reference (mini-batches and momentum as in the paper); `Fixed` is the bit-exact
specification of firmware/src/rule_pepita.c. Pass 1 keeps every h_l.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from onward import fixed
from onward.data import Dataset
from onward.fixed import I64
from onward.metrics import r2_score
from onward.model import STREAM_FEEDBACK, InitialModel, he_uniform_weights, quantise_weights
from onward.nn.dense import F64, dense_float
from onward.nn.mlp import (
    fit_float,
    forward_fixed,
    forward_pass_fixed,
    logits_float,
    output_error_fixed,
    output_error_float,
)
from onward.reference import FixedReference
from onward.spec import RuleOptions, Spec, check_device_rule, check_weights_fit, require

MICROPYTHON = True  # firmware/micropython/onward_rt.py has its step
RULE_ID = 1
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Options(RuleOptions):
    feedback_scale: float = 0.05  # F ~ U[-a, a], a = feedback_scale * sqrt(6 / input_dim) (the paper's code)
    # the He-uniform bounds times this: 0 starts a linear model (model.hidden = []) from zero weights, as a
    # calibration starts from the factory's (a hidden layer needs > 0: ReLU(0) passes no error on)
    init_scale: float = 1.0

    def check(self, spec: Spec) -> None:
        require(0 < self.feedback_scale <= 1, spec,
                f"`rule.feedback_scale` must be in (0, 1], got {self.feedback_scale}")
        require(0 <= self.init_scale <= 1 and (self.init_scale > 0 or not spec.hidden), spec,
                f"`rule.init_scale` must be in (0, 1] (or 0 for a model without hidden layers), got "
                f"{self.init_scale}")


def feedback_bound(spec: Spec, input_dim: int) -> int:
    """F is uniform in [-bound, bound] LSB of Q(feedback_frac)."""
    a = cast(Options, spec.rule.options).feedback_scale * math.sqrt(6.0 / input_dim)
    return math.floor(a * (1 << spec.format.feedback_frac) + 0.5)


def feedback_matrix(seed: int, input_dim: int, classes: int, bound: int) -> I64:
    """F[i, c] = ((u_ic (2 bound + 1)) >> 32) - bound, uniform in [-bound, bound], u_ic the c-th word of row i's
    dither stream seeded with rand(key, i): what the firmware recomputes each step, at one hash per row and one
    multiply-accumulate per entry (a hash per entry cost more than all of a training step's forward passes)."""
    key = fixed.derive(seed, STREAM_FEEDBACK)
    words = fixed.dither_stream(fixed.rand(key, np.arange(input_dim)), classes)
    return ((words * (2 * bound + 1)) >> 32) - bound


def feedback_q(model: InitialModel, seed: int) -> I64:
    """The model's F in Q(feedback_frac) for this seed."""
    return feedback_matrix(seed, model.dims[0], model.dims[-1], feedback_bound(model.spec, model.dims[0]))


def check_fixed_point(spec: Spec, input_dim: int, data_max_abs: float) -> None:
    """The common checks, then the He-uniform weights' and F's formats."""
    check_device_rule(spec, data_max_abs)
    check_weights_fit(spec, math.sqrt(6.0 / min((input_dim, *spec.hidden))), "sqrt(6/fan_in)")
    bound = feedback_bound(spec, input_dim)
    require(1 <= bound <= 32767, spec,
            f"`format.feedback_frac` = {spec.format.feedback_frac} gives F a bound of {bound} LSB; expected "
            f"1..32767 (adjust feedback_frac or rule.feedback_scale)")


def init_mlp(spec: Spec, data: Dataset, ram: dict[str, int]) -> InitialModel:
    """The MLP of the paper: He-uniform weights without biases; F follows the seed (model.h: its bound)."""
    check_fixed_point(spec, data.input_dim, data.max_abs)
    dims = (data.input_dim, *spec.hidden, data.classes)
    weights = [w * cast(Options, spec.rule.options).init_scale for w in he_uniform_weights(spec, dims)]
    bound = feedback_bound(spec, data.input_dim)
    return InitialModel(spec, dims, weights, quantise_weights(spec, weights), outputs=data.classes, ram=ram,
                        macros={"FEEDBACK_BOUND": str(bound)})


def init_model(spec: Spec, data: Dataset) -> InitialModel:
    widths = (*spec.hidden, data.classes)
    ram = {"error_q": 2 * data.classes, "modulated": 2 * 2 * max(spec.hidden, default=1),
           "activations": 2 * sum(widths)}
    return init_mlp(spec, data, ram)


def apply_update_float(ref: Float, layer: int, delta: F64, x_in: F64) -> None:
    """SGD with momentum on dW = delta^T x_in / batch (PEPITA's W <- W - lr * v)."""
    grad = delta.T @ x_in / x_in.shape[0]
    ref.velocity[layer] = ref.momentum * ref.velocity[layer] + grad
    ref.weights[layer] -= ref.lr * ref.velocity[layer]


def train_step_float(ref: Float, x: F64, y_onehot: F64) -> F64:
    last = len(ref.weights) - 1
    h = [x]
    for layer, w in enumerate(ref.weights):
        h.append(dense_float(w, h[-1], relu=layer < last))
    e = output_error_float(h[-1], y_onehot, ref.regression)
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

def modulate_fixed(ref: Fixed, x: I64, e: I64) -> I64:
    """x_err = sat16(x + requant(F e)): F (Q ff) times e (Q af), back to Q af."""
    fe, sats1 = fixed.requant(ref.feedback_q @ e, ref.fmt.feedback_frac, 0)
    x_err, sats2 = fixed.sat16(x + fe)
    ref.saturations += sats1 + sats2
    return x_err


def hidden_delta_fixed(ref: Fixed, h: I64, h_err: I64) -> I64:
    delta, sats = fixed.sat16(h - h_err)
    ref.saturations += sats
    return delta


def train_step_fixed(ref: Fixed, x: I64, label: int) -> I64:  # label: the class, or the Q(af) target
    last = ref.num_layers - 1
    h = forward_pass_fixed(ref, x)  # pass 1 keeps every layer's output
    e = output_error_fixed(ref, h[-1], label)
    h_err = modulate_fixed(ref, x, e)
    for layer in range(ref.num_layers):
        if layer < last:
            h_next = forward_fixed(ref, layer, h_err)
            ref.update(layer, hidden_delta_fixed(ref, h[layer], h_next), h_err)
            h_err = h_next
        else:
            ref.update(layer, e, h_err)
    return h[-1]


class Float:
    """The float reference of PEPITA's MLP: mini-batches and momentum as the paper (the device: batch 1)."""

    step: Callable[[Any, F64, F64], F64] = staticmethod(train_step_float)

    def __init__(self, model: InitialModel) -> None:
        self.model = model
        self.weights = [w.copy() for w in model.weights]
        self.velocity = [np.zeros_like(w) for w in model.weights]
        self.feedback = fixed.from_q(feedback_q(model, model.spec.seed), model.spec.format.feedback_frac)
        self.momentum = model.spec.rule.momentum
        self.lr = model.spec.rule.learning_rate
        self.regression = model.spec.data.task == "regression"

    def logits(self, x: F64) -> F64:
        return logits_float(self.weights, x)

    def score(self, x: F64, y: I64 | F64) -> float:
        """Test accuracy, or R² (regression)."""
        if self.regression:
            return r2_score(y, self.logits(x)[:, 0])
        return float(np.mean(self.logits(x).argmax(axis=1) == y))

    def fit(self, data: Dataset, epochs: int | None = None) -> list[float]:
        """Train epoch by epoch (the shared order, the spec's lr schedule); return test accuracy per epoch."""

        def step(x: F64, onehot: F64, lr: float) -> None:
            self.lr = lr
            self.step(self, x, onehot)

        return fit_float(self.model.spec, data, epochs, step, self.score)


class Fixed(FixedReference):
    """The bit-exact specification of PEPITA in firmware/src/rule_pepita.c."""

    step: Callable[[Any, I64, int], I64] = staticmethod(train_step_fixed)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.feedback_q = feedback_q(self.model, self.seed)  # F follows the seed, as on the device

    def infer(self, x: I64) -> I64:
        for layer in range(self.num_layers):
            x = forward_fixed(self, layer, x)
        return x

    def train_step(self, x: I64, target: int) -> I64:
        return self.step(self, x, target)


def forward_evals(model: InitialModel, stage: int) -> float:
    """Dense-layer evaluations of one training step: pass 1 through every layer, pass 2 through the hidden ones."""
    return model.num_layers + (model.num_layers - 1)
