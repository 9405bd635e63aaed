"""scikit-learn's iris (shipped inside the package: no download): 150 flowers, 4 measurements, 3 species."""

import numpy as np
from numpy.typing import NDArray


def iris() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Each measurement min-max scaled to [0, 1] over the 150 flowers: the range is the shipped table's, a fixed
    property of the data set (as the digits' 16 grey levels), not a statistic fitted on a split."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    x = (x - x.min(axis=0)) / (x.max(axis=0) - x.min(axis=0))
    return x, y.astype(np.int64)
