"""The fixed-point reference's common part, and the stream of operations fed to a reference and a target alike.

A FixedReference holds exactly the device's learned state: the int16 parameter blocks, the step counter, the
learning-rate multiplier, the stage and the seed. Its state image and digest are the ones the firmware
serialises. Each rule subclasses it (its module's `Fixed`, see docs/rules.md)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from onward import fixed
from onward.data import Dataset
from onward.fixed import I64
from onward.instrument import Answer, Tape, first_byte_difference
from onward.metrics import r2_score
from onward.model import STREAM_ROUNDING, InitialModel, device_inputs
from onward.nn.dense import update_fixed
from onward.rules import rule_module
from onward.schedule import schedule

STATE_HEADER = struct.Struct("<IIII")  # seed, steps, lr_q, stage; then every layer's int16 weights, little-endian


@dataclass
class FixedState:
    seed: int
    steps: int
    lr_q: int
    stage: int
    weights: list[I64]


class FixedReference:
    """The base of every rule's fixed-point reference. Subclasses define train_step and infer."""

    # A rule that measures through an instrument the host holds (onward.instrument) asks it here, request bytes in,
    # answer bytes out: its own emulated instrument, until a lockstep run puts the shared tape in its place.
    query: Answer | None = None

    def describe_request(self, a: bytes, b: bytes) -> str:
        """Where two instrument requests differ, in the rule's terms (a rule that queries says which field)."""
        return first_byte_difference(a, b)

    def __init__(self, model: InitialModel) -> None:
        self.model = model
        self.fmt = model.spec.format
        self.num_layers = model.num_layers
        self.regression = model.spec.data.task == "regression"
        self.reset()
        if model.frontend is not None:  # the frozen extractor first, on the wire's int8 input (as onw_frontend)
            rule_infer = self.infer
            self.infer = lambda x: rule_infer(self.frontend_input(x))  # type: ignore[method-assign]

    def frontend_input(self, x: I64) -> I64:
        """The frozen extractor's features of one raw sample, in Q(activation_frac); saturations counted."""
        q, sats = self.model.frontend.features_q(np.asarray(x)[None])
        self.saturations += sats
        return q[0]  # type: ignore[no-any-return]

    def reset(self, seed: int | None = None) -> None:
        spec = self.model.spec
        self.seed = spec.seed if seed is None else seed
        self.steps = 0
        self.lr_q = spec.lr_q(spec.rule.learning_rate)
        self.stage = 0
        self.weights = [w.copy() for w in self.model.weights_q]
        self.saturations = 0

    # --- what a rule defines ---
    def train_step(self, x: I64, target: int) -> I64:
        """One training step on x (Q af) with the target (class index, or Q af regression target): outputs."""
        raise NotImplementedError

    def infer(self, x: I64) -> I64:
        raise NotImplementedError

    # --- the device's operations (a Device has the same: apply_step drives either) ---
    def set_lr(self, lr_q: int) -> None:
        self.lr_q = lr_q

    def set_stage(self, stage: int) -> None:
        self.stage = stage

    def train(self, x: I64, target: int) -> I64:
        if self.model.frontend is not None:
            x = self.frontend_input(x)
        outputs = self.train_step(fixed.as_i64(x), int(target))
        self.steps = (self.steps + 1) & fixed.MASK32
        return outputs

    def rounding_key(self, layer: int) -> int:
        """The key of the stochastic rounding of `layer`'s update at this step (firmware: rounding_key)."""
        return fixed.derive(fixed.derive(fixed.derive(self.seed, STREAM_ROUNDING), self.steps), layer)

    def update(self, layer: int, delta: I64, x_in: I64) -> None:
        """W_layer -= lr * delta x_in^T, stochastically rounded (onward.nn.dense.update_fixed)."""
        self.weights[layer], sats = update_fixed(
            self.weights[layer], delta, x_in, self.lr_q, self.fmt.update_shift, self.rounding_key(layer))
        self.saturations += sats

    # --- scores from outputs, the same for every rule and for the device ---
    def score(self, x_q: I64, y: Any) -> float:
        """Accuracy (classification) or R² (regression) of the outputs of infer."""
        return score(self.model, [self.infer(x) for x in x_q], y)

    # --- state image, as the firmware serialises it ---
    def state(self) -> FixedState:
        return FixedState(self.seed, self.steps, self.lr_q, self.stage, [w.copy() for w in self.weights])

    def restore(self, state: FixedState, saturations: int) -> None:
        """Go back to a state that state() gave (with its saturation count): the learned state is exactly the
        state image's fields, as LOAD sets them on the device."""
        self.seed, self.steps, self.lr_q, self.stage = state.seed, state.steps, state.lr_q, state.stage
        self.weights = [w.copy() for w in state.weights]
        self.saturations = saturations

    def state_bytes(self) -> bytes:
        return STATE_HEADER.pack(self.seed, self.steps, self.lr_q, self.stage) + b"".join(
            w.astype("<i2").tobytes() for w in self.weights)

    def digest(self) -> int:
        return zlib.crc32(self.state_bytes())


def predict(model: InitialModel, outputs: I64) -> float:
    if model.spec.data.task == "regression":
        return float(fixed.from_q(outputs[0], model.spec.format.activation_frac))
    return int(np.argmax(outputs))


def score(model: InitialModel, outputs: list[I64], y: Any) -> float:
    """Accuracy or R² of a list of output vectors (of a reference or of a device)."""
    pred = np.array([predict(model, o) for o in outputs])
    if model.spec.data.task == "regression":
        return r2_score(np.asarray(y, dtype=np.float64), pred)
    return float(np.mean(pred == np.asarray(y)))


def make_fixed(model: InitialModel) -> FixedReference:
    return rule_module(model.spec.rule.name).Fixed(model)  # type: ignore[no-any-return]


def share_instrument(ref: FixedReference, device: Any) -> Tape | None:
    """For a rule that queries an instrument: one tape for the reference and the device (onward.instrument), so that
    both are fed the same answers and their requests are compared. None for every other rule."""
    if ref.query is None:
        return None
    tape = Tape(ref.query, ref.describe_request)
    ref.query = tape.side("reference")
    device.on_query = tape.side("device")
    return tape


def make_float(model: InitialModel) -> Any:
    """The rule's float reference: fit(data, epochs) -> test score per epoch; score(x, y)."""
    return rule_module(model.spec.rule.name).Float(model)


def parse_state(model: InitialModel, image: bytes) -> FixedState:
    """Split a state image (from DUMP or state_bytes) into its fields, for comparison and saving."""
    seed, steps, lr_q, stage = STATE_HEADER.unpack_from(image)
    flat = np.frombuffer(image, dtype="<i2", offset=STATE_HEADER.size).astype(np.int64)
    weights, at = [], 0
    for w in model.weights_q:
        weights.append(flat[at:at + w.size].reshape(w.shape))
        at += w.size
    return FixedState(seed, steps, lr_q, stage, weights)


def state_size(model: InitialModel) -> int:
    return STATE_HEADER.size + 2 * model.num_weights


@dataclass(frozen=True)
class Step:
    """One item of the stream fed to a reference and a target alike."""

    kind: str  # "train" | "set_lr" | "set_stage"
    x: I64 | None = None
    target: int = 0  # class index, or the regression target in Q(activation_frac)
    lr_q: int = 0
    stage: int = 0


def training_targets(model: InitialModel, y: Any) -> I64:
    """What TRAIN carries: class indices, or regression targets in Q(activation_frac)."""
    if model.spec.data.task == "regression":
        return fixed.to_q(y, model.spec.format.activation_frac)[0]
    return fixed.as_i64(y)


def training_stream(model: InitialModel, data: Dataset, epochs: int,
                    steps_per_stage: int | None = None) -> Iterator[Step]:
    """Stage by stage (one stage unless the rule trains layer after layer), epochs of training samples in the
    shared order, with a set_lr wherever the schedule changes lr and a set_stage where a stage begins.
    steps_per_stage cuts every stage short after that many samples (a quick verify that visits every stage)."""
    spec = model.spec
    x_q = device_inputs(model, data.x_train)
    targets = training_targets(model, data.y_train)
    lr_q = spec.lr_q(spec.rule.learning_rate)
    taken = 0
    for epoch in schedule(spec, len(targets), model.stages, epochs):
        if epoch.epoch == 0:
            taken = 0
            if epoch.stage:
                yield Step("set_stage", stage=epoch.stage)
        new_lr = spec.lr_q(epoch.lr)
        for i in epoch.order:
            if taken == steps_per_stage:
                break
            taken += 1
            if new_lr != lr_q:  # announced before the first step that uses it
                lr_q = new_lr
                yield Step("set_lr", lr_q=lr_q)
            yield Step("train", x=x_q[i], target=int(targets[i]))


class StepTarget(Protocol):
    """What a stream is applied to: a FixedReference or a Device (its train returns the outputs, and the device's
    also the digest)."""

    def set_lr(self, lr_q: int) -> None: ...
    def set_stage(self, stage: int) -> None: ...
    def train(self, x: I64, target: int) -> Any: ...


def apply_step(target: StepTarget, step: Step) -> Any:
    """Run one stream item on a reference or a device, the one dispatch of a step: what train returns, else None."""
    if step.kind == "set_lr":
        target.set_lr(step.lr_q)
    elif step.kind == "set_stage":
        target.set_stage(step.stage)
    else:
        assert step.x is not None
        return target.train(step.x, step.target)
    return None
