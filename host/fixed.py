"""The integer semantics of onward: the one Python definition the firmware must match bit for bit.

Every function here has a twin of the same name in firmware/src/fixed.c (prefixed ``onw_``) and the
two are cross-tested on random and extreme inputs (tests/test_fixed_cross.py). Conventions:

* Values are int16 in a Q format with ``frac`` fractional bits (value = q / 2**frac).
* Products are int16 x int16 -> int32, accumulated exactly in int64, then requantised once:
  round half up (add half, arithmetic shift right) and saturate to int16. Every saturation is counted.
* Right shifts of negative numbers are arithmetic (floor), as numpy's ``>>`` and GCC on every target.
* Division is C's: it truncates toward zero (Python's ``//`` floors; :func:`div_trunc` does not).
* Randomness is a counter-based hash (:func:`rand`), so a value can be regenerated from
  (key, index) at any time, in any order: PEPITA's feedback matrix is never stored on the device.

Functions take and return numpy int64 arrays (or Python ints where noted) and report how many values
they saturated, so the reference and the firmware count the same events.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

I16_MIN, I16_MAX = -32768, 32767
MASK32 = 0xFFFFFFFF
GOLDEN = 0x9E3779B9  # 2**32 / golden ratio: odd, so i * GOLDEN is a bijection on uint32
LOG2E_Q14 = 23637  # round(log2(e) * 2**14)
# 2**f on [0, 1) ~ 1 + C1 f + C2 f^2 + C3 f^3 (max error 1e-4), coefficients in Q15
EXP2_C1, EXP2_C2, EXP2_C3 = 22792, 7411, 2561
ONE_Q15 = 1 << 15
# the weight update's dither: an LCG per row (Numerical Recipes' constants), one 16-bit offset per 8 weights
DITHER_A, DITHER_C = 1664525, 1013904223
DITHER_BITS = 16
DITHER_GROUP = 8

I64 = NDArray[np.int64]


def as_i64(x: ArrayLike) -> I64:
    return np.asarray(x, dtype=np.int64)


# --- conversion (host only: data and initial weights are quantised before they reach a device) ---

def to_q(x: ArrayLike, frac: int) -> tuple[I64, int]:
    """Float -> int16 Q(frac), round half up, saturated. Returns (values, saturations)."""
    scaled = np.floor(np.asarray(x, dtype=np.float64) * (1 << frac) + 0.5)
    return sat16(np.clip(scaled, -(2**62), 2**62).astype(np.int64))


def from_q(q: ArrayLike, frac: int) -> NDArray[np.float64]:
    return np.asarray(q, dtype=np.float64) / (1 << frac)


# --- rounding, saturation, division -------------------------------------------------------------

def sat16(x: ArrayLike) -> tuple[I64, int]:
    """Clamp to int16; return (values, number of values that were clamped)."""
    x = as_i64(x)
    out = np.clip(x, I16_MIN, I16_MAX)
    return out, int(np.count_nonzero(out != x))


def round_shift(x: ArrayLike, shift: int) -> I64:
    """x / 2**shift rounded half up (toward +inf on ties): (x + 2**(shift-1)) >> shift.

    shift in [0, 62]; |x| < 2**62 so that adding the half cannot overflow int64."""
    x = as_i64(x)
    if shift == 0:
        return x
    return (x + (1 << (shift - 1))) >> shift


def requant(x: ArrayLike, from_frac: int, to_frac: int) -> tuple[I64, int]:
    """Move a value from Q(from_frac) to int16 Q(to_frac): rounding shift (or exact left shift), saturate."""
    if from_frac >= to_frac:
        return sat16(round_shift(x, from_frac - to_frac))
    return sat16(as_i64(x) << (to_frac - from_frac))


def div_trunc(a: ArrayLike, b: ArrayLike) -> I64:
    """C99 integer division: the quotient truncated toward zero. b != 0."""
    a, b = as_i64(a), as_i64(b)
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def stochastic_shift(x: ArrayLike, shift: int, r: ArrayLike) -> I64:
    """x / 2**shift rounded stochastically with the uint32 random values r: floor((x + u) / 2**shift),
    u uniform in [0, 2**shift) built from r's top bits (or r scaled up when shift > 32).

    Unbiased: weight updates far smaller than one int16 LSB still move the weights on average."""
    x = as_i64(x)
    r = as_i64(r) & MASK32
    if shift == 0:
        return x
    offset = (r >> (32 - shift)) if shift <= 32 else (r << (shift - 32))
    return (x + offset) >> shift


def dither_update(x: ArrayLike, row: ArrayLike, offsets: ArrayLike) -> I64:
    """floor((row * x + o) / 2**16): the weight update's step, with x int16, `row` the row's factor (see
    onward.nn.dense.update_fixed) and o in [0, 2**16) the dither. Unbiased: its mean over o is row * x / 2**16.

    When |row| < 2**15 every intermediate fits int32 (|row * x| <= 2**30), which is what lets the firmware
    compute it with one SMLABB and take the step as the top half of the sum; past that, int64."""
    return (as_i64(row) * as_i64(x) + as_i64(offsets)) >> DITHER_BITS


def dither_stream(seeds: ArrayLike, count: int) -> I64:
    """The uint32 dither words u_0..u_{count-1} of each seed: u_0 = seed, u_{k+1} = A u_k + C mod 2**32 (the
    Numerical Recipes LCG: one multiply-accumulate per word on the device). A group of DITHER_GROUP weights
    shares the word's top DITHER_BITS bits as its rounding offset. Returns (len(seeds), count).

    Every u_k is an affine bijection of the seed, so with a uniform seed each offset is uniform: the
    rounding stays unbiased; the words of one row are correlated, which costs nothing in expectation."""
    seeds = as_i64(seeds).reshape(-1, 1) & MASK32
    k = np.arange(count)
    # u_k = A^k u_0 + C (A^k - 1)/(A - 1) mod 2**32, from tables of A^k and the sum, in Python ints
    a_pow, c_sum, a, c = [], [], 1, 0
    for _ in k:
        a_pow.append(a)
        c_sum.append(c)
        a, c = (a * DITHER_A) & MASK32, (c * DITHER_A + DITHER_C) & MASK32
    with np.errstate(over="ignore"):
        u = (seeds.astype(np.uint64) * np.array(a_pow, dtype=np.uint64)) & MASK32
    return ((u.astype(np.int64) + np.array(c_sum, dtype=np.int64)) & MASK32)


def isqrt(x: ArrayLike) -> I64:
    """floor(sqrt(x)) of non-negative int64 values, exactly (the C twin is a bitwise square root).

    Norms in integers (FFzero's cosine scores, Forward-Forward's length normalisation) use it."""
    x = as_i64(x)
    if np.any(x < 0):
        raise ValueError("isqrt: negative input")
    u = x.astype(np.uint64)  # squares up to (2**31.5 + 1)**2 fit uint64, not int64
    r = np.floor(np.sqrt(x.astype(np.float64))).astype(np.uint64)  # within 1 of the answer; fix it exactly
    r = np.where(r * r > u, r - np.uint64(1), r)
    r = np.where((r + np.uint64(1)) * (r + np.uint64(1)) <= u, r + np.uint64(1), r)
    return r.astype(np.int64)


# --- counter-based random numbers ---------------------------------------------------------------

def mix32(x: ArrayLike) -> I64:
    """A 32-bit integer hash (Wellons' lowbias32): a bijection with good avalanche."""
    x = np.asarray(x).astype(np.uint64) & MASK32
    with np.errstate(over="ignore"):  # products wrap mod 2**64; only their low 32 bits are kept
        x ^= x >> 16
        x = (x * 0x7FEB352D) & MASK32
        x ^= x >> 15
        x = (x * 0x846CA68B) & MASK32
        x ^= x >> 16
    return x.astype(np.int64)


def derive(key: int, n: int) -> int:
    """A sub-key: independent streams (per purpose, per step, per layer) from one seed."""
    return int(mix32((key & MASK32) ^ int(mix32((n + GOLDEN) & MASK32))))


def rand(key: int, index: ArrayLike) -> I64:
    """The index-th uint32 of the stream `key`. Random access: no state to carry."""
    i = as_i64(index) & MASK32
    return mix32((key & MASK32) ^ ((i * GOLDEN) & MASK32))


def uniform_int(key: int, index: ArrayLike, bound: int) -> I64:
    """Integers uniform in [-bound, bound], 0 <= bound <= 32767 (multiply-shift range reduction)."""
    return ((rand(key, index) * (2 * bound + 1)) >> 32) - bound


# --- softmax in integers --------------------------------------------------------------------------

def exp2_q15(t: ArrayLike, frac: int) -> I64:
    """2**(t / 2**frac) for t <= 0, as Q15 in [0, 32768]: integer part by shifting, fraction by a cubic."""
    t = as_i64(t)
    k = t >> frac  # floor: t = k * 2**frac + f with 0 <= f < 2**frac
    f = t - (k << frac)
    f15 = f >> (frac - 15) if frac >= 15 else f << (15 - frac)
    a = EXP2_C2 + round_shift(EXP2_C3 * f15, 15)
    a = EXP2_C1 + round_shift(a * f15, 15)
    p = ONE_Q15 + round_shift(a * f15, 15)  # 2**f in Q15, [32768, 65536)
    n = np.minimum(-k, 62)
    return np.where(n >= 31, 0, (p + ((1 << n) >> 1)) >> n)  # rounding shift by n (n may be 0)


def softmax_q15(z: ArrayLike, frac: int) -> I64:
    """Softmax of int16 logits in Q(frac) as Q15 probabilities: exp2 of (z - max) * log2(e), then a
    C-style division by the sum. The sum is >= 32768 (the largest term is exactly 1.0)."""
    z = as_i64(z)
    t = round_shift((z - z.max()) * LOG2E_Q14, 14)
    e = exp2_q15(t, frac)
    return div_trunc(e << 15, int(e.sum()))


def sigmoid_q15(t: ArrayLike, frac: int) -> I64:
    """The logistic 1 / (1 + e^(-t / 2**frac)) as Q15 in [0, 32768], for |t| < 2**62 and frac in [0, 24].

    e^(-|t|) comes from exp2_q15 (|t| scaled by log2(e) in Q14, as softmax_q15) and one C division gives
    1 / (1 + e^-|t|), or e^-|t| / (1 + e^-|t|) for t < 0: no table, max error 2e-4 (sigmoid(0) = 16384
    exactly). |t| is clamped at 32 first, where e^-32 is 0 in Q15 anyway, so every intermediate fits int32.
    Forward-Forward's softplus derivative uses it."""
    t = as_i64(t)
    a = np.minimum(np.abs(t), 32 << frac)
    e = exp2_q15(-round_shift(a * LOG2E_Q14, 14), frac)
    return np.where(t >= 0, div_trunc(1 << 30, ONE_Q15 + e), div_trunc(e << 15, ONE_Q15 + e))


def softmax_error(z: ArrayLike, label: int, frac: int) -> tuple[I64, int]:
    """The softmax cross-entropy error e = softmax(z) - onehot(label), from Q15 probabilities back to the
    logits' Q(frac), saturated. Returns (e, saturations)."""
    p = softmax_q15(z, frac)
    p[label] -= ONE_Q15
    return requant(p, 15, frac)
