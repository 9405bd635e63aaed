"""An initialised model: what one spec defines before any learning, for every rule.

The float reference, the fixed-point reference and the generated C all start from this one object. Each rule
builds it (its module's init_model); `init_model` dispatches on the spec's rule."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

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
    """The spec's rule builds the model (onward.rules)."""
    from onward.rules import rule_module

    return rule_module(spec.rule.name).init_model(spec, data)  # type: ignore[no-any-return]


def he_uniform_weights(spec: Spec, dims: tuple[int, ...]) -> list[F64]:
    """He-uniform U(-sqrt(6/fan_in), sqrt(6/fan_in)) of shape (out, in) per layer, from the seed."""
    rng = np.random.default_rng([spec.seed, 0x1417])
    return [rng.uniform(-np.sqrt(6.0 / fan_in), np.sqrt(6.0 / fan_in), size=(fan_out, fan_in))
            for fan_in, fan_out in itertools.pairwise(dims)]


def quantise_weights(spec: Spec, weights: list[F64]) -> list[I64]:
    return [fixed.to_q(w, spec.format.weight_frac)[0] for w in weights]
