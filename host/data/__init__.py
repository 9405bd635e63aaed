"""Data sets, all generated or shipped offline, split and ordered deterministically from the spec's seed.

| set       | task           | features | samples (train / test by default)        | inputs (before `data.scale`)   |
|-----------|----------------|----------|------------------------------------------|--------------------------------|
| digits    | classification | 64       | 1797 (1347 / 450), shipped by sklearn    | pixels / 16 in [0, 1]          |
| iris      | classification | 4        | 150 (112 / 38), shipped by sklearn       | min-max per feature, [0, 1]    |
| synthetic | classification | features | samples (test_fraction 0.25)             | in (-0.8, 0.8)                 |
| mnist1d   | classification | 40       | samples = 5000 (4000 / 1000), generated  | std 0.25, max abs 1.1-1.4      |
| f1, f2    | regression     | 2, 5     | samples = 12000 (10000 / 2000), generated| U[-1, 1]                       |
| diabetes  | regression     | 10       | 442 (332 / 110), shipped by sklearn      | sklearn's scaling, max abs 0.2 |
| pressure  | regression     | 3        | ~400 reference readings, split in time   | 1, swing, warming in [-1, 1]   |

Classification sets have int64 labels 0..classes-1 and are split stratified. Regression sets have float64 targets
rescaled to [-1, 1] with the training targets' min and max, y_norm = (y - y_min) / (y_max - y_min) * 2 - 1, so
the training targets span [-1, 1] exactly and the test targets may fall slightly outside. Their `classes` is 1
(the number of outputs: one target) and `Dataset.denormalise` maps predictions back to the original units
(R^2 is the same in both units). They are split by a plain seeded shuffle; except `pressure` (the simulated
barometer's reference readings, onward.data.pressure): its targets are scaled by a fixed ±500 Pa, and it is split
in time, the last test_fraction of the readings for testing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from onward.spec import Spec


@dataclass(frozen=True)
class Dataset:
    x_train: NDArray[np.float64]
    y_train: NDArray[np.int64] | NDArray[np.float64]  # int64 labels, or float64 targets in [-1, 1] (regression)
    x_test: NDArray[np.float64]
    y_test: NDArray[np.int64] | NDArray[np.float64]
    classes: int  # classification: the number of classes; regression: 1 (one output)
    task: str = "classification"  # or "regression"
    y_min: float | None = None  # regression: the training targets' range in original units
    y_max: float | None = None
    image_shape: tuple[int, ...] | None = None  # a sample's shape when it is an image (digits: 8 x 8), row-major

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """(height, width) for images, (length,) otherwise: what a convolution slides over (2-D or 1-D)."""
        return self.image_shape or (self.input_dim,)

    @property
    def max_abs(self) -> float:
        return float(max(np.abs(self.x_train).max(), np.abs(self.x_test).max()))

    def denormalise(self, y: NDArray[np.float64]) -> NDArray[np.float64]:
        """Regression targets or predictions in [-1, 1] back in the data set's original units."""
        if self.y_min is None or self.y_max is None:
            raise ValueError("denormalise: only a regression data set has a target range")
        return restore_targets(np.asarray(y, dtype=np.float64), self.y_min, self.y_max)


def rescale_targets(y: NDArray[np.float64], y_min: float, y_max: float) -> NDArray[np.float64]:
    """Targets onto [-1, 1] by the range [y_min, y_max] (the training targets')."""
    return (y - y_min) / (y_max - y_min) * 2.0 - 1.0


def restore_targets(y: NDArray[np.float64], y_min: float, y_max: float) -> NDArray[np.float64]:
    """The inverse of rescale_targets: values in [-1, 1] back in original units."""
    return (y + 1.0) / 2.0 * (y_max - y_min) + y_min


def load_dataset(spec: Spec) -> Dataset:
    from sklearn.model_selection import train_test_split

    d, random_state = spec.data, spec.seed % 2**31
    if d.set in ("digits", "synthetic", "iris"):
        if d.set == "iris":
            from onward.data.iris import iris

            x, y = iris()
        elif d.set == "digits":
            from onward.data.digits import digits, shifted

            x, y = digits()
            x = shifted(x, d.shift, spec.seed)
        else:
            from onward.data.synthetic import clusters

            x, y = clusters(d.features, d.classes, d.samples, spec.seed)
        x_tr, x_te, y_tr, y_te = train_test_split(
            x * d.scale, y, test_size=d.test_fraction, stratify=y, random_state=random_state
        )
        return Dataset(x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64), int(y.max()) + 1,
                       image_shape=(8, 8) if d.set == "digits" else None)
    if d.set == "mnist1d":
        from onward.data.mnist_1d import mnist1d

        x, y = mnist1d(d.samples, spec.seed)
        x_tr, x_te, y_tr, y_te = train_test_split(
            x * d.scale, y, test_size=_test_count(d.test_fraction, len(y)), stratify=y, random_state=random_state
        )
        return Dataset(x_tr, y_tr, x_te, y_te, int(y.max()) + 1)
    if d.set in ("f1", "f2"):
        from onward.data.functions import function_samples

        x, y = function_samples(d.set, d.samples, spec.seed)
    elif d.set == "diabetes":
        from onward.data.diabetes import diabetes

        x, y = diabetes()
    elif d.set == "pressure":
        from onward.calibration.features import CORRECTION_SCALE
        from onward.data.pressure import reference_readings

        x, y = reference_readings(spec.seed, spec.calibration.scenario, spec.calibration.days)
        n_test = _test_count(d.test_fraction, len(y))
        lo, hi = -CORRECTION_SCALE, CORRECTION_SCALE
        return Dataset(x[:-n_test] * d.scale, rescale_targets(y[:-n_test], lo, hi), x[-n_test:] * d.scale,
                       rescale_targets(y[-n_test:], lo, hi), 1, task="regression", y_min=lo, y_max=hi)
    else:
        raise ValueError(f"unknown data set {d.set!r}")
    x_tr, x_te, y_tr, y_te = train_test_split(
        x * d.scale, y, test_size=_test_count(d.test_fraction, len(y)), random_state=random_state
    )
    if d.set in ("f1", "f2"):
        from onward.data.functions import noisy

        y_tr = noisy(y_tr, spec.seed)
    y_min, y_max = float(y_tr.min()), float(y_tr.max())
    return Dataset(x_tr, rescale_targets(y_tr, y_min, y_max), x_te, rescale_targets(y_te, y_min, y_max), 1,
                   task="regression", y_min=y_min, y_max=y_max)


def _test_count(test_fraction: float, n: int) -> int:
    """The size of the test split: round(test_fraction * n), so that 1/6 of 12000 is 2000."""
    return max(1, round(test_fraction * n))


def epoch_order(seed: int, epoch: int, n: int) -> NDArray[np.int64]:
    """The training order of one epoch: the same for the float, fixed-point and device runs."""
    return np.random.default_rng([seed, epoch]).permutation(n)
