"""Last-layer-only SGD: the on-device baseline of TinyOL (Ren et al., IJCNN 2021) and of most on-device learning
products. The hidden layers keep their random initial weights (fixed random features) and only the output layer
learns, by SGD on the softmax cross-entropy: dW_L = e h_{L-1}^T, e = softmax(z) - onehot(y). A forward-only rule
that cannot beat it on a data set has learned nothing useful in its hidden layers (docs/results.md).

`Float` is the float reference (mini-batches and momentum as the other float references); `Fixed` is the bit-exact
specification of firmware/src/rule_last_layer.c: one forward pass keeping every layer's output, the output error,
and one stochastically rounded update of the output layer. With no hidden layer it is logistic regression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from onward.data import Dataset
from onward.fixed import I64
from onward.model import InitialModel, he_uniform_weights, quantise_weights
from onward.nn.dense import F64, dense_float
from onward.nn.mlp import fit_float, forward_pass_fixed, logits_float, output_error_fixed, softmax
from onward.reference import FixedReference
from onward.spec import RuleOptions, Spec, check_device_rule, check_weights_fit

MICROPYTHON = True  # firmware/micropython/onward_rt.py has its step
RULE_ID = 6
TASKS = ("classification",)


@dataclass(frozen=True)
class Options(RuleOptions):
    """No keys of its own: the learning rate and its schedule are every rule's."""


def init_model(spec: Spec, data: Dataset) -> InitialModel:
    """He-uniform weights without biases (the hidden ones stay as drawn)."""
    check_device_rule(spec, data.max_abs)
    dims = (data.input_dim, *spec.hidden, data.classes)
    check_weights_fit(spec, math.sqrt(6.0 / min(dims[:-1])), "sqrt(6/fan_in)")
    weights = he_uniform_weights(spec, dims)
    ram = {"activations": 2 * sum(dims[1:]), "error_q": 2 * data.classes}
    return InitialModel(spec, dims, weights, quantise_weights(spec, weights), outputs=data.classes, ram=ram)


class Float:
    """The float reference: the hidden layers fixed, SGD with momentum on the output layer."""

    def __init__(self, model: InitialModel) -> None:
        self.model = model
        self.weights = [w.copy() for w in model.weights]
        self.velocity = np.zeros_like(model.weights[-1])
        self.momentum = model.spec.rule.momentum

    def features(self, x: F64) -> F64:
        """The last hidden layer's output, ReLU applied (x itself without hidden layers)."""
        for w in self.weights[:-1]:
            x = dense_float(w, x, relu=True)
        return x

    def step(self, x: F64, onehot: F64, lr: float) -> None:
        h = self.features(x)
        e = softmax(h @ self.weights[-1].T) - onehot
        self.velocity = self.momentum * self.velocity + e.T @ h / x.shape[0]
        self.weights[-1] -= lr * self.velocity

    def score(self, x: F64, y: I64) -> float:
        """Test accuracy."""
        return float(np.mean(logits_float(self.weights, x).argmax(axis=1) == y))

    def fit(self, data: Dataset, epochs: int | None = None) -> list[float]:
        """Train epoch by epoch (the shared order, the spec's lr schedule); test accuracy after each epoch."""
        return fit_float(self.model.spec, data, epochs, self.step, self.score)


class Fixed(FixedReference):
    """The bit-exact specification of firmware/src/rule_last_layer.c."""

    def infer(self, x: I64) -> I64:
        return forward_pass_fixed(self, x)[-1]

    def train_step(self, x: I64, target: int) -> I64:
        h = forward_pass_fixed(self, x)
        last = self.num_layers - 1
        self.update(last, output_error_fixed(self, h[-1], target), h[-2] if last > 0 else x)
        return h[-1]


def forward_evals(model: InitialModel, stage: int) -> float:
    """Dense-layer evaluations of one training step: the forward pass (the update needs no other)."""
    return model.num_layers
