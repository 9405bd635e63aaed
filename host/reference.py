"""The two references of a spec: float (faithful to the paper) and fixed point (the firmware, bit for bit).

A FixedReference holds exactly the device's learned state: the int16 weights, the step counter, the
learning rate multiplier and the seed. Its state image and digest are the ones the firmware serialises."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from onward import fixed
from onward.data import Dataset, epoch_order
from onward.fixed import I64
from onward.learn import mempepita, pepita
from onward.model import STREAM_ROUNDING, InitialModel, feedback_matrix
from onward.nn.dense import F64, dense_fixed, dense_float, update_fixed
from onward.spec import feedback_bound

FLOAT_STEPS: dict[str, Callable[[FloatReference, F64, F64], F64]] = {
    "pepita": pepita.train_step_float, "mempepita": mempepita.train_step_float}
FIXED_STEPS: dict[str, Callable[[FixedReference, I64, int], I64]] = {
    "pepita": pepita.train_step_fixed, "mempepita": mempepita.train_step_fixed}
STATE_HEADER = struct.Struct("<III")  # seed, steps, lr_q; then every layer's int16 weights, little-endian


class FloatReference:
    def __init__(self, model: InitialModel) -> None:
        self.model = model
        self.weights = [w.copy() for w in model.weights]
        self.velocity = [np.zeros_like(w) for w in model.weights]
        self.feedback = model.feedback
        self.momentum = model.spec.rule.momentum
        self.lr = model.spec.rule.learning_rate
        self._step = FLOAT_STEPS[model.spec.rule.name]

    def logits(self, x: F64) -> F64:
        last = len(self.weights) - 1
        for layer, w in enumerate(self.weights):
            x = dense_float(w, x, relu=layer < last)
        return x

    def accuracy(self, x: F64, y: I64) -> float:
        return float(np.mean(self.logits(x).argmax(axis=1) == y))

    def fit(self, data: Dataset, epochs: int | None = None) -> list[float]:
        """Train epoch by epoch (the shared order, the spec's lr schedule); return test accuracy per epoch."""
        spec = self.model.spec
        batch = spec.rule.batch_size
        onehot = np.eye(data.classes)[data.y_train]
        history = []
        for epoch in range(epochs if epochs is not None else spec.rule.epochs):
            self.lr = spec.lr_at_epoch(epoch)
            order = epoch_order(spec.seed, epoch, len(data.y_train))
            for start in range(0, len(order), batch):
                idx = order[start:start + batch]
                self._step(self, data.x_train[idx], onehot[idx])
            history.append(self.accuracy(data.x_test, data.y_test))
        return history


@dataclass
class FixedState:
    seed: int
    steps: int
    lr_q: int
    weights: list[I64]


class FixedReference:
    def __init__(self, model: InitialModel) -> None:
        self.model = model
        self.fmt = model.spec.format
        self.num_layers = model.num_layers
        self._step = FIXED_STEPS[model.spec.rule.name]
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        spec = self.model.spec
        self.seed = spec.seed if seed is None else seed
        self.steps = 0
        self.lr_q = spec.lr_q(spec.rule.learning_rate)
        self.weights = [w.copy() for w in self.model.weights_q]
        self.saturations = 0
        # F follows the seed, as on the device
        self.feedback_q = feedback_matrix(self.seed, self.model.dims[0], self.model.dims[-1],
                                          feedback_bound(spec, self.model.dims[0]))

    # --- the device's operations ---
    def infer(self, x: I64) -> I64:
        for layer in range(self.num_layers):
            x, sats = dense_fixed(self.weights[layer], x, self.fmt.weight_frac, relu=layer < self.num_layers - 1)
            self.saturations += sats
        return x

    def train(self, x: I64, label: int) -> I64:
        logits = self._step(self, fixed.as_i64(x), label)
        self.steps = (self.steps + 1) & fixed.MASK32
        return logits

    def update(self, layer: int, delta: I64, x_in: I64) -> None:
        key = fixed.derive(fixed.derive(fixed.derive(self.seed, STREAM_ROUNDING), self.steps), layer)
        self.weights[layer], sats = update_fixed(
            self.weights[layer], delta, x_in, self.lr_q, self.fmt.update_shift, key)
        self.saturations += sats

    # --- state image, as the firmware serialises it ---
    def state(self) -> FixedState:
        return FixedState(self.seed, self.steps, self.lr_q, [w.copy() for w in self.weights])

    def state_bytes(self) -> bytes:
        return STATE_HEADER.pack(self.seed, self.steps, self.lr_q) + b"".join(
            w.astype("<i2").tobytes() for w in self.weights)

    def digest(self) -> int:
        return zlib.crc32(self.state_bytes())

    def accuracy(self, x_q: I64, y: I64) -> float:
        return float(np.mean([int(np.argmax(self.infer(xi))) == yi for xi, yi in zip(x_q, y, strict=True)]))


def parse_state(model: InitialModel, image: bytes) -> FixedState:
    """Split a state image (from DUMP or state_bytes) into its fields, for comparison and saving."""
    seed, steps, lr_q = STATE_HEADER.unpack_from(image)
    flat = np.frombuffer(image, dtype="<i2", offset=STATE_HEADER.size).astype(np.int64)
    weights, at = [], 0
    for fan_in, fan_out in model.layer_shapes:
        weights.append(flat[at:at + fan_in * fan_out].reshape(fan_out, fan_in))
        at += fan_in * fan_out
    return FixedState(seed, steps, lr_q, weights)


def state_size(model: InitialModel) -> int:
    return STATE_HEADER.size + 2 * model.num_weights


@dataclass(frozen=True)
class Step:
    """One item of the stream fed to a reference and a target alike."""

    kind: str  # "train" | "set_lr"
    x: I64 | None = None
    label: int = 0
    lr_q: int = 0
    epoch: int = 0


def training_stream(model: InitialModel, data: Dataset, epochs: int) -> Iterator[Step]:
    """Epochs of training samples in the shared order, with a set_lr wherever the schedule changes lr."""
    spec = model.spec
    x_q, _ = fixed.to_q(data.x_train, spec.format.activation_frac)
    lr_q = spec.lr_q(spec.rule.learning_rate)
    for epoch in range(epochs):
        new_lr = spec.lr_q(spec.lr_at_epoch(epoch))
        if new_lr != lr_q:
            lr_q = new_lr
            yield Step("set_lr", lr_q=lr_q, epoch=epoch)
        for i in epoch_order(spec.seed, epoch, len(data.y_train)):
            yield Step("train", x=x_q[i], label=int(data.y_train[i]), epoch=epoch)
