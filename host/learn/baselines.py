"""Host-only baselines on the same networks as the forward-only rules: backpropagation, and last-layer-only
SGD (the TinyOL pattern: the hidden layers stay at their random initialisation, only the output layer learns).

Same network as PEPITA's: bias-free dense layers, ReLU between them; softmax cross-entropy for
classification, mean squared error on a single output for regression (targets in [-1, 1])."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from onward.data import Dataset, epoch_order
from onward.nn.dense import F64, dense_float
from onward.nn.mlp import softmax


@dataclass
class Baseline:
    weights: list[F64]
    learning_rate: float
    last_layer_only: bool = False
    regression: bool = False
    history: list[float] = field(default_factory=list)

    def forward(self, x: F64) -> list[F64]:
        """Every layer's output, input first (backpropagation needs them all)."""
        h = [x]
        last = len(self.weights) - 1
        for layer, w in enumerate(self.weights):
            h.append(dense_float(w, h[-1], relu=layer < last))
        return h

    def output_error(self, out: F64, target: F64) -> F64:
        """d loss / d output pre-activation, per sample: softmax - onehot, or 2 (y_hat - y) for MSE."""
        return 2.0 * (out - target) if self.regression else softmax(out) - target

    def step(self, x: F64, target: F64) -> None:
        h = self.forward(x)
        delta = self.output_error(h[-1], target) / x.shape[0]
        for layer in range(len(self.weights) - 1, -1, -1):
            grad = delta.T @ h[layer]
            if layer > 0 and not self.last_layer_only:
                delta = (delta @ self.weights[layer]) * (h[layer] > 0)  # ReLU derivative
            self.weights[layer] -= self.learning_rate * grad
            if self.last_layer_only:
                break

    def score(self, data: Dataset) -> float:
        """Test accuracy (classification) or R² (regression)."""
        out = self.forward(data.x_test)[-1]
        if not self.regression:
            return float(np.mean(out.argmax(axis=1) == data.y_test))
        y = data.y_test.astype(np.float64)
        return float(1.0 - np.sum((y - out[:, 0]) ** 2) / np.sum((y - y.mean()) ** 2))

    def fit(self, data: Dataset, epochs: int, batch_size: int, seed: int) -> list[float]:
        if self.regression:
            targets = data.y_train.astype(np.float64)[:, None]
        else:
            targets = np.eye(data.classes)[data.y_train]
        for epoch in range(epochs):
            order = epoch_order(seed, epoch, len(data.y_train))
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                self.step(data.x_train[idx], targets[idx])
            self.history.append(self.score(data))
        return self.history


def baseline(weights: list[F64], learning_rate: float, last_layer_only: bool = False,
             regression: bool = False) -> Baseline:
    """A baseline starting from copies of `weights` (e.g. an InitialModel's), so that rules compare from
    the same initial network."""
    return Baseline([w.copy() for w in weights], learning_rate, last_layer_only, regression)
