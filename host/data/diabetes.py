"""scikit-learn's diabetes regression set (shipped inside the package: no download): 442 samples, 10 features.

The features are scikit-learn's own scaling (each column centred and of unit L2 norm: standard deviation
1/sqrt(442) = 0.048, max |x| = 0.199). They are small for a fixed-point format: `data.scale` = 5 brings max |x|
to about 1. The target (disease progression, 25..346) is rescaled to [-1, 1] by load_dataset.
"""

import numpy as np
from numpy.typing import NDArray


def diabetes() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    return d.data.astype(np.float64), d.target.astype(np.float64)
