"""Convolution blocks for FFzero's CNN: float forward, and the integer kernels (the bit-exact spec of
firmware/src/conv.c).

Layouts (row-major, channel first): a map is (channels, height, width); a 1-D signal is the same with height 1
and a 1-D kernel is 1 x k, so 1-D and 2-D share every kernel. A layer's filters are (out, in, kh, kw); filter c
is one contiguous block of in*kh*kw weights (the block FFzero's estimator perturbs). Stride 1, no padding
("valid"): an H x W map and a kh x kw kernel give (H-kh+1) x (W-kw+1) positions. Max-pooling by (ph, pw) with
the same stride drops a remainder row/column, as torch's floor mode does.

The integer path of one conv block for one sample, as the FFzero fixed rule uses it:

1. ``conv_acc``: A[c, i] = Σ_j W_q[c, j]·patch_i[j], exact int64 in Q(wf + af).
2. ``conv_response``: P[i] = Σ_j r_j·patch_i[j] with r_j = ±1 regenerated from ``fixed.rand`` (additions
   only); then A ± (P << p) are the accumulators of the filter perturbed by ±2^p LSB along r, exactly.
3. ``normalise``: per channel, (A - mean)/std over the map, in integers (an exact ``isqrt`` and one
   reciprocal per channel), plus a constant shift beta, to int16 Q(af) with counted saturation for the next
   block; ``normalise_wide`` gives the same map as int32 in a finer Q (Z_MAP_FRAC) for the loss. It replaces
   BatchNorm: the public code never calls ``eval()``, so its BatchNorm always uses the statistics of the batch,
   and with the device's batch of 1 these are the statistics of the sample's own map (instance normalisation).
4. ``project``: z[c] = M_c·y[c], each channel's wide normalised map (before ReLU and pooling, as the public
   code's z_mapping) through its own fixed matrix M_c (int16 Q15, a model constant): int64 in Q(15 + Z_MAP_FRAC),
   whose cosine with channel c's prototypes is the local loss.
5. ``relu_maxpool``: what the next block receives, int16 Q(af) (no rounding, no saturation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from onward import fixed
from onward.fixed import I64
from onward.nn.dense import F64

BN_EPS = 1e-5  # torch BatchNorm's eps (float path only)
RECIP_BITS = 24  # fractional bits of the per-channel reciprocal of the std in `normalise`
STD_BITS = 8  # fractional bits of the integer std in `normalise`
NORM_BITS = 15  # the centred map is scaled to |c| <= 2^NORM_BITS before its variance is taken
Z_MAP_FRAC = 20  # the normalised map the loss projects: int32 Q20 (|x̂| <= sqrt(n) < 2^8 for n < 65536)

Shape2 = tuple[int, int]


def as_2d(shape: tuple[int, ...]) -> Shape2:
    """A sample shape (length,) or (height, width) as (height, width): 1-D signals are 1 x length maps."""
    if len(shape) == 1:
        return 1, shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    raise ValueError(f"a convolution needs a 1-D or 2-D sample shape, got {shape}")


def kernel_2d(kernel: int, sample_shape: tuple[int, ...]) -> Shape2:
    """A square kernel for 2-D data, 1 x kernel for 1-D data (pooling windows follow the same rule)."""
    return (1, kernel) if len(sample_shape) == 1 else (kernel, kernel)


def out_shape(shape: Shape2, kernel: Shape2) -> Shape2:
    """Positions of a valid, stride-1 convolution."""
    return shape[0] - kernel[0] + 1, shape[1] - kernel[1] + 1


def pooled_shape(shape: Shape2, pool: Shape2) -> Shape2:
    return shape[0] // pool[0], shape[1] // pool[1]


# --- float and integer forward (the same code: int64 matmuls are exact) ------------------------------------

def patches(x: NDArray, kernel: Shape2) -> NDArray:
    """im2col: x (..., in, H, W) -> (..., positions, in*kh*kw), each row ordered like a filter (in, kh, kw)."""
    win = sliding_window_view(x, kernel, axis=(-2, -1))  # (..., in, H', W', kh, kw)
    win = np.moveaxis(win, -5, -3)  # (..., H', W', in, kh, kw)
    lead = win.shape[:-5]
    return win.reshape(*lead, win.shape[-5] * win.shape[-4], -1)


def conv(w: NDArray, x: NDArray) -> NDArray:
    """Valid, stride-1 convolution without bias: w (out, in, kh, kw), x (..., in, H, W) -> (..., out, positions).
    On int64 data this is ``conv_acc``: exact sums of int16 products, Q(wf + af)."""
    out = w.shape[0]
    return np.swapaxes(patches(x, w.shape[-2:]) @ w.reshape(out, -1).T, -1, -2)


def conv_acc(w_q: I64, x_q: I64) -> I64:
    """The int64 accumulators of a conv layer (out, positions): kernel 1 of the integer path."""
    return conv(fixed.as_i64(w_q), fixed.as_i64(x_q))


def direction_signs(key: int, first: int, count: int) -> I64:
    """±1 for parameters first .. first+count-1 of a block: bit (j % 32) of rand(key, j // 32), 1 -> +1."""
    j = np.arange(first, first + count, dtype=np.int64)
    bits = (fixed.rand(key, j >> 5) >> (j & 31)) & 1
    return 2 * bits - 1


def conv_response(x_q: I64, kernel: Shape2, key: int, first: int) -> I64:
    """P[i] = Σ_j r_j·patch_i[j] for one filter whose signs are direction_signs(key, first, in*kh*kw):
    the change of that filter's accumulators per LSB of every weight along r (additions only; |P| < 2^31)."""
    x_q = fixed.as_i64(x_q)
    r = direction_signs(key, first, x_q.shape[-3] * kernel[0] * kernel[1])
    return patches(x_q, kernel) @ r


def normalise_float(a: F64, beta: float) -> F64:
    """BatchNorm over each channel's map of one sample (gamma 1): (a - mean)/sqrt(var + eps) + beta; a (..., n)."""
    mean = a.mean(axis=-1, keepdims=True)
    var = a.var(axis=-1, keepdims=True)
    return (a - mean) / np.sqrt(var + BN_EPS) + beta


def standardise(acc: I64, frac: int) -> I64:
    """(a - mean)/std of each row of acc (channels, n) int64 (|acc|·n < 2^61), in Q(frac), frac <= 22, unsaturated
    (|result| <= sqrt(n)·2^frac).

    Per channel: the centred map n·a - Σa (exact: no rounded mean, so tiny accumulators lose nothing) is scaled by
    a power of two (rounding right shift or exact left shift) so that its largest magnitude lies in [2^14, 2^15];
    s = isqrt(trunc((Σ c² << 16) / n)) is its std in Q8 (>= 2^22/sqrt(n), so isqrt's floor costs < 2^-8 relative
    even for n = 65536); inv = trunc(2^(frac + 8 + 24) / s) and the result is round_shift(c·inv, 24): one
    reciprocal per channel, a multiply and a shift per value. A constant map gives 0."""
    acc = np.atleast_2d(fixed.as_i64(acc))
    n = acc.shape[-1]
    centred = acc * n - acc.sum(axis=-1, keepdims=True)
    # every row at once (the reference's speed): per-row shifts as arrays, constant rows give 0
    top = np.abs(centred).max(axis=-1)
    shift = np.array([int(m).bit_length() for m in top], dtype=np.int64)[:, None] - NORM_BITS
    right = np.maximum(shift, 0)
    half = np.where(right > 0, np.left_shift(1, np.maximum(right - 1, 0)), 0)
    c = np.where(shift > 0, (centred + half) >> right, centred << np.maximum(-shift, 0))
    var = fixed.div_trunc((c * c).sum(axis=-1) << (2 * STD_BITS), n)
    std = fixed.isqrt(var)
    inv = fixed.div_trunc(1 << (frac + STD_BITS + RECIP_BITS), np.maximum(std, 1))
    out = fixed.round_shift(c * inv[:, None], RECIP_BITS)
    return np.where((top == 0)[:, None], 0, out)


def normalise(acc: I64, frac: int, beta_q: int) -> tuple[I64, int]:
    """The integer twin of normalise_float: sat16(standardise(acc, frac) + beta_q), int16 Q(frac) (frac <= 14),
    what ReLU and pooling pass to the next block. Returns (y, saturations)."""
    return fixed.sat16(standardise(acc, frac) + beta_q)


def normalise_wide(acc: I64, frac: int, beta_q: int) -> I64:
    """standardise(acc, frac) + beta_q as int32 values, no saturation: the map the loss projects. Q(frac) up to
    Q22 keeps the rounding of the map far below a ±1 LSB weight perturbation's effect (int16 Q(af) would not);
    |beta_q| <= 2^30 - sqrt(n)·2^frac keeps it in int32."""
    return standardise(acc, frac) + beta_q
def relu_maxpool(y: NDArray, pool: Shape2) -> NDArray:
    """max(0, ·) then max over pool windows (stride = window, remainder dropped): (..., H, W) -> (..., H/ph, W/pw).
    Exact on int16 values (ReLU and max commute), so the same function serves float and integers."""
    h, w = y.shape[-2] // pool[0] * pool[0], y.shape[-1] // pool[1] * pool[1]
    y = np.maximum(y[..., :h, :w], 0)
    y = y.reshape(*y.shape[:-2], h // pool[0], pool[0], w // pool[1], pool[1])
    return y.max(axis=(-3, -1))


def project(m: NDArray, y: NDArray) -> NDArray:
    """Each channel's map through its own matrix: m (channels, dim, n), y (..., channels, n) -> (..., channels, dim).
    With m int16 Q15 and y int32 Q(f) (normalise_wide), the int64 result is exact (n < 2^16), in Q(15 + f)."""
    return np.einsum("cdn,...cn->...cd", m, y)


# --- one conv layer as the FFzero fixed rule sees a block ----------------------------------------------------

@dataclass(frozen=True)
class ConvLayerQ:
    """The integer operations of one conv layer, named as ffzero_fixed.DenseBlock's: the estimator's block is
    one filter c (weights c·fan .. (c+1)·fan of the layer, no bias), with channel c's own loss. The layer's
    int16 weights are (out, in, kh, kw) row-major; a sample h is (in, H, W) row-major, any flat or shaped."""

    in_ch: int
    in_hw: Shape2
    out_ch: int
    kernel: Shape2
    pool: Shape2
    act_frac: int
    beta_q: int  # the constant after the normalisation, Q(af)

    @property
    def fan(self) -> int:
        return self.in_ch * self.kernel[0] * self.kernel[1]

    @property
    def size(self) -> int:
        return self.out_ch * self.fan

    @property
    def out_hw(self) -> Shape2:
        return out_shape(self.in_hw, self.kernel)

    @property
    def positions(self) -> int:
        return self.out_hw[0] * self.out_hw[1]

    @property
    def output_size(self) -> int:
        h, w = pooled_shape(self.out_hw, self.pool)
        return self.out_ch * h * w

    def _maps(self, h: I64) -> I64:
        return fixed.as_i64(h).reshape(self.in_ch, *self.in_hw)

    def accumulate(self, w: I64, h: I64) -> I64:
        """A (out, positions): exact int64, Q(wf + af)."""
        return conv_acc(fixed.as_i64(w).reshape(self.out_ch, self.in_ch, *self.kernel), self._maps(h))

    def respond(self, key: int, h: I64, c: int) -> I64:
        """Filter c's response to its segment of the layer-wide direction rademacher(key, size)."""
        return conv_response(self._maps(h), self.kernel, key, c * self.fan)

    @staticmethod
    def pairs(a_c: I64, responses: list[I64], perturbation: int) -> list[tuple[I64, I64]]:
        """Filter c's accumulators perturbed by ±2^p LSB along each direction, exactly."""
        return [(a_c + (p << perturbation), a_c - (p << perturbation)) for p in responses]

    def z(self, maps_q: I64, a_c: I64, c: int) -> I64:
        """Channel c's z (dim,) int64 Q(15 + Z_MAP_FRAC) from its accumulators: M_c·normalise_wide(a_c); maps_q is
        (out, dim, positions) Q15. No saturation: the map is int32. a_c may be (rows, positions): one z per row."""
        y = normalise_wide(np.atleast_2d(a_c), Z_MAP_FRAC, self.beta_q << (Z_MAP_FRAC - self.act_frac))
        z = y @ fixed.as_i64(maps_q[c]).T
        return z if a_c.ndim == 2 else z[0]

    def z_all(self, maps_q: I64, a: I64) -> I64:
        """Every channel's z from the layer's accumulators a (out, positions): (out, dim)."""
        y = normalise_wide(a, Z_MAP_FRAC, self.beta_q << (Z_MAP_FRAC - self.act_frac))
        return project(fixed.as_i64(maps_q), y)

    def output(self, a: I64) -> tuple[I64, int]:
        """What the next block receives, flat (out, H', W') int16 Q(af): pool(ReLU(normalise(A)))."""
        y, sats = normalise(a, self.act_frac, self.beta_q)
        return relu_maxpool(y.reshape(self.out_ch, *self.out_hw), self.pool).reshape(-1), sats
