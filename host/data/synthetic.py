"""Gaussian class clusters of any size: a data set for property tests and quick experiments."""

import numpy as np
from numpy.typing import NDArray


def clusters(features: int, classes: int, samples: int, seed: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    rng = np.random.default_rng([seed, 0xDA7A])
    centres = rng.normal(0.0, 1.0, size=(classes, features))
    y = np.arange(samples) % classes
    x = centres[y] + rng.normal(0.0, 0.5, size=(samples, features))
    return x / (1.25 * np.abs(x).max()), y.astype(np.int64)  # scaled into (-0.8, 0.8)
