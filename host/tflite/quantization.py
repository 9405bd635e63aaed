"""TFLite's integer requantisation, as its kernels do it (tensorflow/lite/kernels/internal/common.h and
quantization_util.cc), in numpy int64: the bit-exact specification of firmware/src/tflite_*.c.

A real multiplier M (input scale x filter scale / output scale) becomes an int32 Q31 mantissa and a power-of-two
exponent (`quantize_multiplier`); an int32 accumulator is multiplied by it in one of two roundings:

- **double rounding** (`multiply_double`, gemmlowp's, TFLite's default build): a saturating rounding doubling
  high multiply (rounding half up at bit 31: gemmlowp's nudge takes a negative tie toward zero), then a rounding
  right shift (half away from zero);
- **double rounding, the shift half up** (`multiply_double_half_up`): the same high multiply, then the right
  shift rounding half up (toward +infinity);
- **single rounding** (`multiply_single`, TFLITE_SINGLE_ROUNDING builds): one 64-bit product shifted once,
  rounding half up.

Which one each LiteRT operator uses is measured against the interpreter, not assumed (tests/test_tflite.py);
docs/tflite.md has the table."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(q, shift) with real = q * 2**(shift - 31), q in [2**30, 2**31): TFLite's QuantizeMultiplier (frexp, then
    round half away from zero; a mantissa that rounds up to 2**31 is halved and the exponent raised)."""
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    q = int(math.copysign(math.floor(abs(fraction) * 2**31 + 0.5), fraction))
    if q == 2**31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def _saturating_rounding_doubling_high_mul(a: I64, b: int) -> I64:
    """gemmlowp's SaturatingRoundingDoublingHighMul: a * b / 2**31 rounded half up (a positive tie up, and the
    nudge 1 - 2**30 with C's truncating division takes a negative tie toward zero: up too); saturates the one
    overflow, INT32_MIN * INT32_MIN."""
    ab = a * np.int64(b)
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    num = ab + nudge
    result = np.where(num >= 0, num >> 31, -((-num) >> 31))  # C division by 2**31 truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, result)


def rounding_divide_by_pot(x: I64, exponent: int) -> I64:
    """gemmlowp's RoundingDivideByPOT: x / 2**exponent, rounding half away from zero."""
    if exponent == 0:
        return x
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_double(acc: I64, q: int, shift: int) -> I64:
    """MultiplyByQuantizedMultiplier, double rounding: acc * q * 2**(shift - 31)."""
    acc = np.asarray(acc, dtype=np.int64)
    left, right = max(shift, 0), max(-shift, 0)
    # the left shift is on int32 in C; the accumulators here never overflow it (checked by the graph's ranges)
    return rounding_divide_by_pot(_saturating_rounding_doubling_high_mul(acc * (1 << left), q), right)


def multiply_single(acc: I64, q: int, shift: int) -> I64:
    """MultiplyByQuantizedMultiplier, single rounding: (acc * q + 2**(30 - shift)) >> (31 - shift), saturated."""
    acc = np.asarray(acc, dtype=np.int64)
    total = 31 - shift
    out = (acc * np.int64(q) + (np.int64(1) << (total - 1))) >> total
    return np.clip(out, INT32_MIN, INT32_MAX)


def multiply_double_half_up(acc: I64, q: int, shift: int) -> I64:
    """Double rounding whose second step, the right shift, rounds half up (toward +infinity) instead of away from
    zero: what LiteRT's built-in int8 kernels compute (measured: docs/tflite.md)."""
    acc = np.asarray(acc, dtype=np.int64)
    left, right = max(shift, 0), max(-shift, 0)
    high = _saturating_rounding_doubling_high_mul(acc * (1 << left), q)
    return (high + ((1 << right) >> 1)) >> right


MULTIPLY = {"double": multiply_double, "single": multiply_single, "double_half_up": multiply_double_half_up}


def activation_range(activation: str, scale: float, zero_point: int, lo: int = -128, hi: int = 127,
                     ) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized: the fused activation's bounds in the output's integers."""

    def q(v: float) -> int:  # zero_point + TfLiteRound(f / scale): a float32 quotient, rounded half away from 0
        f = float(np.float32(v) / np.float32(scale))
        return zero_point + int(math.copysign(math.floor(abs(f) + 0.5), f))

    if activation == "relu":
        return max(lo, q(0.0)), hi
    if activation == "relu6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if activation == "relu_n1_to_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    return lo, hi
