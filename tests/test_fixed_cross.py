"""host/fixed.py against firmware/src/fixed.c, compiled natively: random and extreme inputs."""

import ctypes

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from onward import fixed

I62 = st.integers(-(2**62) + 1, 2**62 - 1)
U32 = st.integers(0, 2**32 - 1)
FRAC = st.integers(0, 15)
cross = settings(max_examples=400, deadline=None, derandomize=True)


@cross
@given(x=st.integers(-(2**63), 2**63 - 1))
@example(x=32767)
@example(x=32768)
@example(x=-32768)
@example(x=-32769)
def test_sat16(cfixed, x):
    count = ctypes.c_uint32(0)
    got = cfixed.onw_sat16(x, ctypes.byref(count))
    want, sats = fixed.sat16([x])
    assert got == want[0] and count.value == sats


@cross
@given(x=I62, shift=st.integers(0, 62))
@example(x=-3, shift=1)
@example(x=-2, shift=1)
@example(x=-1, shift=1)
@example(x=2**62 - 1, shift=62)
def test_round_shift(cfixed, x, shift):
    assert cfixed.onw_round_shift(x, shift) == fixed.round_shift([x], shift)[0]


def test_round_shift_is_half_up_and_arithmetic():
    assert list(fixed.round_shift([-3, -2, -1, 1, 2, 3], 1)) == [-1, -1, 0, 1, 1, 2]


@cross
@given(x=st.integers(-(2**40), 2**40), frm=st.integers(0, 30), to=FRAC)
def test_requant(cfixed, x, frm, to):
    count = ctypes.c_uint32(0)
    got = cfixed.onw_requant(x, frm, to, ctypes.byref(count))
    want, sats = fixed.requant([x], frm, to)
    assert got == want[0] and count.value == sats


@cross
@given(a=st.integers(-(2**63) + 1, 2**63 - 1), b=st.integers(-(2**63) + 1, 2**63 - 1).filter(bool))
@example(a=-7, b=2)
@example(a=7, b=-2)
@example(a=-7, b=-2)
@example(a=-(2**63) + 1, b=1)
def test_div_trunc(cfixed, a, b):
    assert cfixed.onw_div_trunc(a, b) == fixed.div_trunc([a], [b])[0]


def test_div_trunc_truncates_toward_zero():
    assert list(fixed.div_trunc([-7, 7, -7, 7], [2, 2, -2, -2])) == [-3, 3, 3, -3]


@cross
@given(x=st.integers(-(2**61), 2**61), shift=st.integers(0, 62), r=U32)
@example(x=-1, shift=32, r=2**32 - 1)
@example(x=2**61, shift=62, r=2**32 - 1)
def test_stochastic_shift(cfixed, x, shift, r):
    assert cfixed.onw_stochastic_shift(x, shift, r) == fixed.stochastic_shift([x], shift, [r])[0]


@cross
@given(x=st.integers(-(2**15), 2**15 - 1), row=st.integers(-(2**47), 2**47), offset=st.integers(0, 2**16 - 1))
@example(x=-32768, row=-32768, offset=65535)
@example(x=-1, row=1, offset=0)
@example(x=32767, row=-(2**47), offset=1)
def test_dither_update(cfixed, x, row, offset):
    assert cfixed.onw_dither_update(x, row, offset) == fixed.dither_update([x], [row], [offset])[0]


@cross
@given(seed=U32)
@example(seed=0)
@example(seed=2**32 - 1)
def test_dither_stream(cfixed, seed):
    words = fixed.dither_stream([seed], 6)[0]
    u = seed
    for k in range(6):
        assert words[k] == u
        u = cfixed.onw_dither_next_word(u)


def test_stochastic_shift_is_unbiased():
    r = fixed.rand(12345, np.arange(200_000))
    mean = fixed.stochastic_shift(np.full(r.shape, 3), 4, r).mean()  # 3/16 = 0.1875
    assert abs(mean - 3 / 16) < 0.005


@cross
@given(key=U32, n=U32, bound=st.integers(0, 32767))
@example(key=0, n=0, bound=0)
@example(key=2**32 - 1, n=2**32 - 1, bound=32767)
def test_prng(cfixed, key, n, bound):
    assert cfixed.onw_mix32(n) == fixed.mix32([n])[0]
    assert cfixed.onw_derive(key, n) == fixed.derive(key, n)
    assert cfixed.onw_rand(key, n) == fixed.rand(key, [n])[0]
    assert cfixed.onw_uniform_int(key, n, bound) == fixed.uniform_int(key, [n], bound)[0]


def test_uniform_int_covers_its_range_evenly():
    v = fixed.uniform_int(7, np.arange(100_000), 3)
    counts = np.bincount(v + 3)
    assert v.min() == -3 and v.max() == 3 and counts.min() > 0.9 * counts.max()


@cross
@given(t=st.integers(-(2**31), 0), frac=FRAC)
@example(t=0, frac=12)
@example(t=-(2**31), frac=0)
@example(t=-1, frac=15)
def test_exp2(cfixed, t, frac):
    assert cfixed.onw_exp2_q15(t, frac) == fixed.exp2_q15([t], frac)[0]


def test_exp2_is_accurate():
    t = np.arange(-8 << 12, 1)
    err = fixed.exp2_q15(t, 12) / 32768 - 2.0 ** (t / 4096)
    assert np.abs(err).max() < 2e-4


@cross
@given(z=st.lists(st.integers(-32768, 32767), min_size=1, max_size=64), frac=st.integers(0, 14))
@example(z=[32767, -32768], frac=0)
@example(z=[-32768] * 10, frac=14)
def test_softmax(cfixed, z, frac):
    zc = (ctypes.c_int16 * len(z))(*z)
    out = (ctypes.c_int32 * len(z))()
    cfixed.onw_softmax_q15(zc, len(z), frac, out)
    assert list(out) == list(fixed.softmax_q15(z, frac))


@cross
@given(z=st.lists(st.integers(-32768, 32767), min_size=1, max_size=32), frac=st.integers(0, 14), pick=U32)
@example(z=[32767, -32768], frac=0, pick=1)  # certain and wrong: e = [1, -1]
@example(z=[0, 0], frac=14, pick=0)  # -0.5 in Q1.14
def test_softmax_error(cfixed, z, frac, pick):
    label = pick % len(z)
    zc = (ctypes.c_int16 * len(z))(*z)
    scratch, out, count = (ctypes.c_int32 * len(z))(), (ctypes.c_int16 * len(z))(), ctypes.c_uint32(0)
    cfixed.onw_softmax_error(zc, len(z), frac, label, scratch, out, ctypes.byref(count))
    want, sats = fixed.softmax_error(z, label, frac)
    assert list(out) == list(want) and count.value == sats


def test_softmax_is_close_to_float():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, size=(200, 10))
    zq, _ = fixed.to_q(z, 12)
    for zi, qi in zip(z, zq, strict=True):
        p = np.exp(zi - zi.max())
        p /= p.sum()
        assert np.abs(fixed.softmax_q15(qi, 12) / 32768 - p).max() < 2e-3


@cross
@given(x=st.integers(0, 2**63 - 1))
@example(x=0)
@example(x=1)
@example(x=2**62)
@example(x=2**63 - 1)
@example(x=(2**31 - 1) ** 2)
@example(x=(2**31) ** 2 - 1)
def test_isqrt(cfixed, x):
    want = int(fixed.isqrt([x])[0])
    assert cfixed.onw_isqrt(x) == want and want * want <= x < (want + 1) * (want + 1)
