"""An initialised model: what one spec defines before any learning, for every rule.

The float reference, the fixed-point reference and the generated C all start from this one object. Each rule
builds it (its module's init_model); `init_model` dispatches on the spec's rule."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from onward import fixed
from onward.data import Dataset
from onward.fixed import I64
from onward.nn.dense import F64
from onward.spec import Spec

# PRNG streams derived from the seed, one per purpose (the firmware's ONW_STREAM_* agree)
STREAM_FEEDBACK = 1  # a fixed random feedback matrix
STREAM_ROUNDING = 2  # the stochastic rounding of weight updates
STREAM_DIRECTIONS = 3  # random perturbation directions (zeroth-order estimates)
STREAM_NEGATIVES = 4  # wrong labels (negative samples)
STREAM_TANGENTS = 5  # random tangents (forward-mode gradients)


@dataclass(frozen=True)
class Constant:
    """A read-only array the rule's C needs, emitted into model.c as `const <ctype> <name>[]` (flash)."""

    name: str
    values: I64  # any shape; emitted row-major
    ctype: str = "int16_t"
    note: str = ""


@dataclass(frozen=True)
class InitialModel:
    spec: Spec
    dims: tuple[int, ...]  # input features, then every layer's output size (HELLO reports them)
    weights: list[F64]  # every layer's parameter block, float initial values
    weights_q: list[I64]  # the same in Q(weight_frac): the learned state is exactly these, in order, row-major
    outputs: int  # int16 values TRAIN and INFER return: classes (argmax predicts) or 1 (regression)
    stages: int = 1  # layers trained one after another (a layer-local rule), else 1
    constants: tuple[Constant, ...] = ()
    macros: dict[str, str] = field(default_factory=dict)  # extra `#define ONW_<key> <value>` lines of model.h
    ram: dict[str, int] = field(default_factory=dict)  # the rule's static buffers: C symbol -> bytes
    frontend: Any = None  # a frozen .tflite feature extractor in front of the head (onward.tflite.frontend)
    # a rule that measures through an instrument the host holds (onward.instrument): its QUERY and ANSWER bodies
    query_bytes: int = 0
    answer_bytes: int = 0

    @property
    def sample_dim(self) -> int:
        """Values per sample on the wire: the frozen model's int8 input, else the head's inputs (dims[0])."""
        return int(self.frontend.raw_dim) if self.frontend is not None else self.dims[0]

    @property
    def num_layers(self) -> int:
        return len(self.weights_q)

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of every layer, input to output, as flattened sizes."""
        return list(itertools.pairwise(self.dims))

    @property
    def num_weights(self) -> int:
        return sum(int(w.size) for w in self.weights_q)


def init_model(spec: Spec, data: Dataset) -> InitialModel:
    """The spec's rule builds the model (onward.rules); with `[frozen]`, on the frozen extractor's features."""
    from onward.rules import rule_module

    if not spec.frozen.enabled:
        return rule_module(spec.rule.name).init_model(spec, data)  # type: ignore[no-any-return]
    from onward.tflite.frontend import Frontend

    fe = Frontend.load(spec.frozen.tflite, spec.frozen.cut, spec.format.activation_frac)
    model = rule_module(spec.rule.name).init_model(spec, features_dataset(fe, data))
    table = fe.table()
    zp, q, shift = fe.feature_rescale
    constants = (Constant("onw_tfl_ops", table["ops"], "int32_t", f"the frozen operators, {len(table['ops'])} x "
                          "FIELDS of onward.tflite.frontend"),
                 Constant("onw_tfl_weights", table["weights"], "int8_t", "their int8 weights"),
                 Constant("onw_tfl_bias", table["bias"], "int32_t", "their int32 biases"),
                 Constant("onw_tfl_quant", table["quant"], "int32_t", "their multipliers and shifts, per channel"))
    macros = {"FRONTEND_OPS": str(len(table["ops"])), "FRONTEND_MAX_TENSOR": str(fe.max_tensor),
              "FRONTEND_ZP": str(zp), "FRONTEND_Q": str(q), "FRONTEND_SHIFT": str(shift),
              "TFL_FIELDS": str(len(table["ops"][0]))}
    ram = {"frontend_buffers": 2 * fe.max_tensor, "frontend_features": 2 * fe.features}
    return dataclasses.replace(model, frontend=fe, constants=model.constants + constants,
                               macros={**model.macros, **macros}, ram={**model.ram, **ram})


def features_dataset(frontend: Any, data: Dataset) -> Dataset:
    """The data set as the head sees it behind a frozen extractor: its features, in float ((f - z) * s)."""
    return dataclasses.replace(data, x_train=frontend.features_float(frontend.encode(data.x_train)),
                               x_test=frontend.features_float(frontend.encode(data.x_test)), image_shape=None)


def head_dataset(model: InitialModel, data: Dataset) -> Dataset:
    """What the model's float reference trains and scores on: the data, or its frozen extractor's features."""
    return data if model.frontend is None else features_dataset(model.frontend, data)


def device_inputs(model: InitialModel, x: F64) -> I64:
    """Float samples as the device receives them: the frozen model's int8 input, else Q(activation_frac)."""
    if model.frontend is not None:
        return model.frontend.encode(x)  # type: ignore[no-any-return]
    return fixed.to_q(x, model.spec.format.activation_frac)[0]


def he_uniform_weights(spec: Spec, dims: tuple[int, ...]) -> list[F64]:
    """He-uniform U(-sqrt(6/fan_in), sqrt(6/fan_in)) of shape (out, in) per layer, from the seed."""
    rng = np.random.default_rng([spec.seed, 0x1417])
    return [rng.uniform(-np.sqrt(6.0 / fan_in), np.sqrt(6.0 / fan_in), size=(fan_out, fan_in))
            for fan_in, fan_out in itertools.pairwise(dims)]


def quantise_weights(spec: Spec, weights: list[F64]) -> list[I64]:
    return [fixed.to_q(w, spec.format.weight_frac)[0] for w in weights]
