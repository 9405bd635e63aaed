"""scikit-learn's 8x8 handwritten digits (shipped inside the package: no download)."""

import numpy as np
from numpy.typing import NDArray


def digits() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data / 16.0, d.target.astype(np.int64)  # pixels 0..16 -> [0, 1]
