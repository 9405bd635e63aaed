"""scikit-learn's 8x8 handwritten digits (shipped inside the package: no download)."""

import numpy as np
from numpy.typing import NDArray


def digits() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data / 16.0, d.target.astype(np.int64)  # pixels 0..16 -> [0, 1]


def shifted(x: NDArray[np.float64], shift: str, seed: int) -> NDArray[np.float64]:
    """The digits (n, 64) in [0, 1] as a model trained on the plain ones meets them in the field (`data.shift`):
    inverted (1 - x), rotated a quarter turn, or with noise N(0, 0.3) added and clipped to [0, 1]."""
    if shift == "invert":
        return 1.0 - x
    if shift == "rotate":
        return np.rot90(x.reshape(-1, 8, 8), axes=(1, 2)).reshape(-1, 64).copy()
    if shift == "noise":
        rng = np.random.default_rng([seed, 0x5417])
        return np.clip(x + rng.normal(0.0, 0.3, x.shape), 0.0, 1.0)
    return x
