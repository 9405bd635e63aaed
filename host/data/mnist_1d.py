"""MNIST-1D (Greydanus 2020), generated on the host by the `mnist1d` package's procedural generator.

Only `mnist1d.data.make_dataset` is called, with the package's default arguments (`get_dataset_args()`), the
spec's seed and the spec's number of samples: nothing is downloaded (`get_dataset` would fetch a pickle, and is
never called). With seed 42 and 5000 samples the signals are those of `make_dataset()` with its defaults.

The generator centres the whole set and scales it to a standard deviation of 1, which leaves outliers near +-5.5.
The signals are divided by INPUT_DIVISOR = 4 here: a standard deviation of 0.25 and max |x| about 1.1-1.4, so
every `format.activation_frac` up to 14 (values in [-2, 2)) holds them; the spec's `data.scale` multiplies this.

Generating takes about 0.65 s for 5000 samples (2.5 s for 20000) plus 0.55 s to import the package once, so
the last few sets are kept in memory, per process (read-only arrays; nothing is written to disk).
"""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

FEATURES = 40
CLASSES = 10
INPUT_DIVISOR = 4.0


@lru_cache(maxsize=4)
def mnist1d(samples: int, seed: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """`samples` signals (samples // 10 of each class, in the generator's shuffled order) and their labels,
    read-only (cached). The generator seeds numpy's and Python's global random state; both are restored."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = samples
    args.seed = seed
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    # make_dataset splits train_split = 0.8 of its shuffled samples off as training data (not stratified);
    # load_dataset re-splits the whole set, stratified, with the spec's test_fraction.
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float64) / INPUT_DIVISOR
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y
