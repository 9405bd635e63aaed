"""Dense layers: float forward, fixed-point forward and the fixed-point forward-only weight update.

Weights are (out, in) matrices; fixed-point tensors are int64 arrays holding int16 values."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from onward import fixed
from onward.fixed import I64

F64 = NDArray[np.float64]


def dense_float(w: F64, x: F64, relu: bool) -> F64:
    """x is (batch, in) or (in,); returns W x (with ReLU for hidden layers)."""
    z = x @ w.T
    return np.maximum(z, 0.0) if relu else z


def dense_fixed(w: I64, x: I64, weight_frac: int, relu: bool) -> tuple[I64, int]:
    """int16 W (Q wf) times int16 x (Q af), exact int64 sums, one rounding back to Q af, saturate, ReLU."""
    y, sats = fixed.requant(w @ x, weight_frac, 0)
    return (np.maximum(y, 0) if relu else y), sats


def update_fixed(
    w: I64, delta: I64, x: I64, lr_q: int, shift: int, key: int
) -> tuple[I64, int]:
    """W <- sat16(W - stochastic_round(lr * delta x^T)); the rounding bits come from rand(key, i*in + j).

    The firmware skips rows with delta == 0 and columns with x == 0: their update is exactly 0 whatever
    the random bits (0 + u < 2**shift), so the results are the same."""
    out_dim, in_dim = w.shape
    product = np.outer(delta, x) * lr_q
    r = fixed.rand(key, np.arange(out_dim * in_dim)).reshape(out_dim, in_dim)
    return fixed.sat16(w - fixed.stochastic_shift(product, shift, r))
