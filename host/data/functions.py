"""FFzero's regression functions (Local learning for stable backpropagation-free neural network training towards
physical learning, arXiv 2603.24790), generated from the spec's seed as the paper's code does:

- f1(x) = sin(x1) + cos(x2),                              x ~ U[-1, 1]^2
- f2(x) = exp(x1) sin(x2) + x3 cos(x4) - x5 x1,           x ~ U[-1, 1]^5

The paper draws 12000 samples and keeps 10000 for training and 2000 for testing, then adds Gaussian noise of
TARGET_NOISE * std(y_train) to the training targets only (the test targets stay clean). load_dataset splits and
rescales the targets to [-1, 1] with the (noisy) training targets' min and max, as the paper's code does.
The inputs already lie in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

TARGET_NOISE = 0.05  # relative to the training targets' standard deviation, as in the paper's code


def f1(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.sin(x[:, 0]) + np.cos(x[:, 1])


def f2(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.exp(x[:, 0]) * np.sin(x[:, 1]) + x[:, 2] * np.cos(x[:, 3]) - x[:, 4] * x[:, 0]


FUNCTIONS: dict[str, tuple[int, Callable[[NDArray[np.float64]], NDArray[np.float64]]]] = {"f1": (2, f1), "f2": (5, f2)}


def function_samples(name: str, samples: int, seed: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Inputs ~ U[-1, 1]^d and clean targets f(x)."""
    dim, f = FUNCTIONS[name]
    rng = np.random.default_rng([seed, 0xF1 if name == "f1" else 0xF2])
    x = rng.uniform(-1.0, 1.0, size=(samples, dim))
    return x, f(x)


def noisy(y_train: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
    """The training targets plus the paper's label noise."""
    rng = np.random.default_rng([seed, 0x4015E])
    return y_train + TARGET_NOISE * float(np.std(y_train)) * rng.standard_normal(len(y_train))
