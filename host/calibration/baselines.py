"""The corrections a calibration is compared with, each from the same reference readings (host, float):

- `factory`: no correction, the factory-calibrated reading as it comes;
- `one_point`: at each reference reading, the offset that makes the reading equal the reference, held until the
  next one (the classic field recalibration; what LPS22HH's ±0.5 hPa accuracy assumes was done once);
- `rls`: recursive least squares on [1, features], updated at each reference reading with a forgetting factor
  (exponentially weighted; Haykin, Adaptive Filter Theory, ch. 10), so that it can follow drift.

Each returns the corrected pressure (Pa) of every sample. A correction learned at a reference reading applies from
that sample on: nothing uses a reading before it is taken."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from onward.calibration.sensor import Trace

F64 = NDArray[np.float64]


def held(tr: Trace, values: F64, before: float = 0.0) -> F64:
    """A per-sample series that takes values[j] from reference reading j on (`before` until the first)."""
    out = np.full(tr.t_s.size, before)
    for j, start in enumerate(tr.ref_index):
        out[start:] = values[j]
    return out


def factory(tr: Trace) -> F64:
    return tr.p_reported_pa.copy()


def one_point(tr: Trace) -> F64:
    offsets = tr.ref_pa - tr.p_reported_pa[tr.ref_index]
    return tr.p_reported_pa + held(tr, offsets)


FORGETTING = 0.8  # chosen on the validation seeds 100-103 from 0.95, 0.9, 0.8, 0.7 (bench/calibration.py --tune)


def rls(tr: Trace, feats: F64, forgetting: float = FORGETTING, delta: float = 100.0) -> F64:
    """RLS on phi = [1, features] for the error reference − reported; the weights after reading j correct the
    samples from reading j on (until the next). delta: the initial P = delta · I (a weak prior at w = 0)."""
    phi = np.concatenate([np.ones((feats.shape[0], 1)), feats], axis=1)
    n = phi.shape[1]
    w = np.zeros(n)
    p = delta * np.eye(n)
    correction = np.zeros(tr.t_s.size)
    bounds = [*tr.ref_index.tolist(), tr.t_s.size]
    for j, k in enumerate(tr.ref_index):
        x = phi[k]
        target = tr.ref_pa[j] - tr.p_reported_pa[k]
        gain = p @ x / (forgetting + x @ p @ x)
        w = w + gain * (target - w @ x)
        p = (p - np.outer(gain, x @ p)) / forgetting
        correction[k:bounds[j + 1]] = phi[k:bounds[j + 1]] @ w
    return tr.p_reported_pa + correction
