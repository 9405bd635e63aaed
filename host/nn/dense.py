"""Dense layers: float forward, fixed-point forward and the fixed-point forward-only weight update.

Weights are (out, in) matrices; fixed-point tensors are int64 arrays holding int16 values. The fixed-point functions
are the specification of firmware/src/dense.c and dense_update.c: <name>_fixed here is onw_dense_<name> there
(dense_fixed: onw_dense)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from onward import fixed
from onward.fixed import I64, as_i64

F64 = NDArray[np.float64]


def dense_float(w: F64, x: F64, relu: bool) -> F64:
    """x is (batch, in) or (in,); returns W x (with ReLU for hidden layers)."""
    z = x @ w.T
    return np.maximum(z, 0.0) if relu else z


def acc_fixed(w: I64, x: I64) -> I64:
    """onw_dense_acc: the exact int64 sums W x of int16 W and x (no rounding; in C, rows may be `stride` apart)."""
    return as_i64(w) @ as_i64(x)


def dense_fixed(w: I64, x: I64, weight_frac: int, relu: bool) -> tuple[I64, int]:
    """int16 W (Q wf) times int16 x (Q af), exact int64 sums, one rounding back to Q af, saturate, ReLU."""
    y, sats = fixed.requant(acc_fixed(w, x), weight_frac, 0)
    return (np.maximum(y, 0) if relu else y), sats


def update_fixed(
    w: I64, delta: I64, x: I64, lr_q: int, shift: int, key: int
) -> tuple[I64, int]:
    """W <- sat16(W - lr * delta x^T / 2**shift), stochastically rounded, in two stages built for the device:

    1. per row, the factor g_i = stochastic_shift(delta_i * lr_q, shift - 16, h_i) with h_i = rand(key, i): the
       learning rate is folded into the row once, leaving 16 fractional bits (shift >= 16: host/spec.py);
    2. per weight, step_ij = floor((g_i x_j + o) / 2**16) (fixed.dither_update), the offset o being the top 16
       bits of word 1 + j // 8 of the row's dither stream from h_i (fixed.dither_stream: word 0 is h_i itself,
       used up by stage 1).

    Both roundings are unbiased, so E[step] = delta_i x_j lr_q / 2**shift (tested to within the standard error
    over many keys). One hash per row, then an LCG step per 8 weights; with |g_i| < 2**15 a weight costs 32-bit
    arithmetic only (firmware/src/dense_update.c). The firmware skips rows with delta == 0: g is then 0 and every
    step floor(o / 2**16) = 0, the same result."""
    out_dim, in_dim = w.shape
    h = fixed.rand(key, np.arange(out_dim))
    g = fixed.stochastic_shift(as_i64(delta) * lr_q, shift - fixed.DITHER_BITS, h)
    groups = -(-in_dim // fixed.DITHER_GROUP)
    words = fixed.dither_stream(h, groups + 1)[:, 1:]
    offsets = np.repeat(words >> (32 - fixed.DITHER_BITS), fixed.DITHER_GROUP, axis=1)[:, :in_dim]
    step = fixed.dither_update(as_i64(x)[None, :], g[:, None], offsets)
    return fixed.sat16(w - step)
