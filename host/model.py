"""An initialised model: the dimensions, initial weights and fixed random projection one spec defines.

The float reference, the fixed-point reference and the generated C all start from this one object."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from onward import fixed
from onward.data import Dataset
from onward.fixed import I64
from onward.nn.dense import F64
from onward.spec import Spec, check_fixed_point, feedback_bound

STREAM_FEEDBACK = 1  # PRNG stream of PEPITA's F
STREAM_ROUNDING = 2  # PRNG stream of the stochastic rounding of weight updates


@dataclass(frozen=True)
class InitialModel:
    spec: Spec
    dims: tuple[int, ...]  # input, hidden..., classes
    weights: list[F64]  # He-uniform initial weights, (out, in), as PEPITA's code draws them
    weights_q: list[I64]  # the same, in Q(weight_frac)
    feedback_q: I64  # F, (input, classes), Q(feedback_frac), regenerated from the seed on the device

    @property
    def num_layers(self) -> int:
        return len(self.dims) - 1

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of every layer, input to output."""
        return list(itertools.pairwise(self.dims))

    @property
    def num_weights(self) -> int:
        return sum(a * b for a, b in self.layer_shapes)

    @property
    def feedback(self) -> F64:
        return fixed.from_q(self.feedback_q, self.spec.format.feedback_frac)


def feedback_matrix(seed: int, input_dim: int, classes: int, bound: int) -> I64:
    """F[i, c] = uniform_int(key, i * classes + c, bound): what the firmware recomputes each step."""
    key = fixed.derive(seed, STREAM_FEEDBACK)
    return fixed.uniform_int(key, np.arange(input_dim * classes), bound).reshape(input_dim, classes)


def init_model(spec: Spec, data: Dataset) -> InitialModel:
    check_fixed_point(spec, data.input_dim, data.max_abs)
    dims = (data.input_dim, *spec.hidden, data.classes)
    rng = np.random.default_rng([spec.seed, 0x1417])
    weights = []
    for fan_in, fan_out in itertools.pairwise(dims):
        limit = np.sqrt(6.0 / fan_in)
        weights.append(rng.uniform(-limit, limit, size=(fan_out, fan_in)))
    weights_q = [fixed.to_q(w, spec.format.weight_frac)[0] for w in weights]
    bound = feedback_bound(spec, data.input_dim)
    return InitialModel(spec, dims, weights, weights_q,
                        feedback_matrix(spec.seed, data.input_dim, data.classes, bound))
