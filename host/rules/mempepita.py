"""MEMPEPITA (Pau & Aymone, 2023): PEPITA with three forward passes and no network-wide activation store.

Pass 1 only computes the error (two ping-pong buffers). Then the clean and the modulated passes run
interleaved, layer by layer: each layer's update uses the h_l and h_l^err just computed, and nothing else
is kept. The weights of layer l change only after both of its passes, so the learned weights equal
PEPITA's exactly; what changes is the activation memory (max over layers instead of the sum) at the
cost of one more forward pass.
"""

from __future__ import annotations

from onward.data import Dataset
from onward.fixed import I64
from onward.model import InitialModel
from onward.nn.dense import F64, dense_float
from onward.nn.mlp import forward_fixed, output_error_fixed, output_error_float
from onward.rules import pepita
from onward.rules.pepita import apply_update_float, hidden_delta_fixed, modulate_fixed
from onward.spec import Spec

MICROPYTHON = True  # firmware/micropython/onward_rt.py has its step
RULE_ID = 2
TASKS = pepita.TASKS
Options = pepita.Options


def init_model(spec: Spec, data: Dataset) -> InitialModel:
    widths = (*spec.hidden, data.classes)
    ram = {"error_q": 2 * data.classes, "modulated": 2 * 2 * max(spec.hidden, default=1),
           "clean": 2 * 2 * max(widths), "x_modulated": 2 * data.input_dim}
    return pepita.init_mlp(spec, data, ram)


def train_step_float(ref: pepita.Float, x: F64, y_onehot: F64) -> F64:
    last = len(ref.weights) - 1
    h = x
    for layer, w in enumerate(ref.weights):  # pass 1: the error only
        h = dense_float(w, h, relu=layer < last)
    logits = h
    e = output_error_float(logits, y_onehot, ref.regression)
    h_clean, h_err = x, x + e @ ref.feedback.T
    for layer, w in enumerate(ref.weights):  # passes 2 and 3, interleaved
        if layer < last:
            next_clean, next_err = dense_float(w, h_clean, relu=True), dense_float(w, h_err, relu=True)
            apply_update_float(ref, layer, next_clean - next_err, h_err)
            h_clean, h_err = next_clean, next_err
        else:
            apply_update_float(ref, layer, e, h_err)
    return logits


def train_step_fixed(ref: pepita.Fixed, x: I64, label: int) -> I64:
    last = ref.num_layers - 1
    h = x
    for layer in range(ref.num_layers):
        h = forward_fixed(ref, layer, h)
    logits = h
    e = output_error_fixed(ref, logits, label)
    h_clean, h_err = x, modulate_fixed(ref, x, e)
    for layer in range(ref.num_layers):
        if layer < last:
            next_clean, next_err = forward_fixed(ref, layer, h_clean), forward_fixed(ref, layer, h_err)
            ref.update(layer, hidden_delta_fixed(ref, next_clean, next_err), h_err)
            h_clean, h_err = next_clean, next_err
        else:
            ref.update(layer, e, h_err)
    return logits


class Float(pepita.Float):
    step = staticmethod(train_step_float)


class Fixed(pepita.Fixed):
    """The bit-exact specification of MEMPEPITA in firmware/src/rule_pepita.c."""

    step = staticmethod(train_step_fixed)


def forward_evals(model: InitialModel, stage: int) -> float:
    """Dense-layer evaluations of one training step: the error pass, then the clean and the modulated pass through
    the hidden layers."""
    return model.num_layers + 2 * (model.num_layers - 1)
