"""Data sets, all generated or shipped offline, split and ordered deterministically from the spec's seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from onward.spec import Spec


@dataclass(frozen=True)
class Dataset:
    x_train: NDArray[np.float64]
    y_train: NDArray[np.int64]
    x_test: NDArray[np.float64]
    y_test: NDArray[np.int64]
    classes: int

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def max_abs(self) -> float:
        return float(max(np.abs(self.x_train).max(), np.abs(self.x_test).max()))


def load_dataset(spec: Spec) -> Dataset:
    from sklearn.model_selection import train_test_split

    if spec.data.set == "digits":
        from onward.data.digits import digits

        x, y = digits()
    else:
        from onward.data.synthetic import clusters

        x, y = clusters(spec.data.features, spec.data.classes, spec.data.samples, spec.seed)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x * spec.data.scale, y, test_size=spec.data.test_fraction, stratify=y, random_state=spec.seed % 2**31
    )
    return Dataset(x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64), int(y.max()) + 1)


def epoch_order(seed: int, epoch: int, n: int) -> NDArray[np.int64]:
    """The training order of one epoch: the same for the float, fixed-point and device runs."""
    return np.random.default_rng([seed, epoch]).permutation(n)
