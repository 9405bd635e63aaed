"""host/nn/conv.py (the spec) against firmware/src/conv.c on every backend (the emulated Cortex-M4, M7, M0 and RV32
and the host, as the dense kernels' tests), on random and extreme inputs; and
the kernels' own claims: the layout of the convolution, the exactness of the ±1 response, the integer
normalisation against float BatchNorm on one sample."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import numpy as np
import pytest

from helpers import kernel_emulators, make_spec
from onward import fixed
from onward.nn import conv
from onward.rules.ffzero.fixed import rademacher

if TYPE_CHECKING:
    from onward.counting import Emulator

if shutil.which("arm-none-eabi-gcc") is None:
    pytest.fail("needs arm-none-eabi-gcc (scripts/setup.sh installs it)", pytrace=False)

I16_MIN, I16_MAX = -32768, 32767
I16, I32, I64 = "<i2", "<i4", "<i8"


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Emulator]:
    """An FFzero CNN firmware (the rule that links conv.c) on every backend (helpers.EVERY_BACKEND): the emulated
    M4 (DSP and portable), M7, M0 and RV32, and the host through ctypes."""
    spec = make_spec(name="kconv", data={"set": "digits"},
                     model={"hidden": [10], "conv": [{"channels": 2, "kernel": 3}]},
                     rule={"name": "ffzero", "learning_rate": 1e-3, "epochs": 1}, format={"activation_frac": 11})
    return kernel_emulators(spec, tmp_path_factory.mktemp("kconv"))


def call(emu: Emulator, function: str, args: list[object], outputs: list[tuple[str, int]]) -> list[np.ndarray]:
    """function(*args) on one backend: numpy arguments go to its scratch memory (as their dtype says: int16, int32,
    int64), integers are passed as they are; each output (numpy dtype, count) is a zeroed buffer, read back after."""
    emu.reset_scratch()
    values = [emu.alloc(np.ascontiguousarray(a).tobytes(), 8) if isinstance(a, np.ndarray) else int(a)  # type: ignore
              for a in args]
    places = [(emu.alloc(np.dtype(dt).itemsize * max(1, n), 8), dt, n) for dt, n in outputs]
    emu.call(function, [*values, *(at for at, _, _ in places)], count=False)
    return [np.frombuffer(emu.read(at, np.dtype(dt).itemsize * n), dt).astype(np.int64) for at, dt, n in places]


def int16_data(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    if kind == "min":
        return np.full(shape, I16_MIN, dtype=np.int64)
    if kind == "max":
        return np.full(shape, I16_MAX, dtype=np.int64)
    if kind == "extreme":
        return rng.choice([I16_MIN, I16_MAX, 0, -1, 1], size=shape).astype(np.int64)
    return rng.integers(I16_MIN, I16_MAX + 1, size=shape, dtype=np.int64)


# (in_ch, height, width, out_ch, kh, kw): 1-D cases have height 1 and kh 1
SHAPES = [(1, 1, 40, 4, 1, 5), (3, 1, 17, 2, 1, 3), (1, 8, 8, 8, 3, 3), (2, 7, 9, 3, 2, 4), (4, 5, 5, 1, 5, 5),
          (1, 1, 1, 1, 1, 1)]
KINDS = ["random", "extreme", "min", "max"]


def reference_conv(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The definition, loop by loop: out[c, oy, ox] = Σ w[c, ci, ky, kx]·x[ci, oy+ky, ox+kx]."""
    out_ch, _, kh, kw = w.shape
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    y = np.zeros((out_ch, oh, ow), dtype=w.dtype)
    for o in range(out_ch):
        for oy in range(oh):
            for ox in range(ow):
                y[o, oy, ox] = np.sum(w[o] * x[:, oy:oy + kh, ox:ox + kw])
    return y.reshape(out_ch, -1)


@pytest.mark.parametrize("shape", SHAPES)
def test_conv_layout_and_batch(shape):
    in_ch, h, w_, out_ch, kh, kw = shape
    rng = np.random.default_rng(0)
    w = rng.standard_normal((out_ch, in_ch, kh, kw))
    x = rng.standard_normal((3, in_ch, h, w_))
    y = conv.conv(w, x)
    assert y.shape == (3, out_ch, (h - kh + 1) * (w_ - kw + 1))
    for b in range(3):
        np.testing.assert_allclose(y[b], reference_conv(w, x[b]), atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
def test_conv_acc_matches_c(backends, shape, kind):
    in_ch, h, w_, out_ch, kh, kw = shape
    rng = np.random.default_rng(hash((shape, kind)) % 2**32)
    x = int16_data(rng, (in_ch, h, w_), kind)
    w = int16_data(rng, (out_ch, in_ch, kh, kw), kind if kind != "random" else "extreme")
    want = conv.conv_acc(w, x)
    np.testing.assert_array_equal(want, reference_conv(w, x))  # exact int64
    for name, emu in backends.items():
        (got,) = call(emu, "onw_conv_acc", [x.astype(I16), in_ch, h, w_, w.astype(I16), out_ch, kh, kw],
                      [(I64, want.size)])
        assert got.tolist() == want.reshape(-1).tolist(), name


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("first", [0, 5, 31, 64, 1000])
def test_conv_response_matches_c(backends, shape, kind, first):
    in_ch, h, w_, _, kh, kw = shape
    rng = np.random.default_rng(first)
    x = int16_data(rng, (in_ch, h, w_), kind)
    key = int(rng.integers(0, 2**32))
    want = conv.conv_response(x, (kh, kw), key, first)
    for name, emu in backends.items():
        (got,) = call(emu, "onw_conv_response", [x.astype(I16), in_ch, h, w_, kh, kw, key, first], [(I32, want.size)])
        assert got.tolist() == want.tolist(), name


def test_response_is_the_exact_change_of_the_accumulators():
    """A(W ± 2^p r) = A(W) ± (P << p): the perturbed filter never has to be formed (nor fit int16)."""
    rng = np.random.default_rng(1)
    x = rng.integers(I16_MIN, I16_MAX + 1, size=(2, 6, 7))
    w = rng.integers(I16_MIN, I16_MAX + 1, size=(3, 2, 3, 3))
    key, fan = 12345, 2 * 3 * 3
    for c_out in range(3):
        r = conv.direction_signs(key, c_out * fan, fan).reshape(2, 3, 3)
        p = conv.conv_response(x, (3, 3), key, c_out * fan)
        for shift in (0, 3):
            plus = conv.conv_acc((w[c_out] + (r << shift))[None], x)[0]
            minus = conv.conv_acc((w[c_out] - (r << shift))[None], x)[0]
            a = conv.conv_acc(w[c_out][None], x)[0]
            np.testing.assert_array_equal(plus, a + (p << shift))
            np.testing.assert_array_equal(minus, a - (p << shift))


def test_direction_signs_are_balanced_and_consecutive():
    s = conv.direction_signs(7, 0, 64_000)
    assert set(np.unique(s)) == {-1, 1} and abs(s.mean()) < 0.02
    np.testing.assert_array_equal(conv.direction_signs(7, 100, 50), s[100:150])  # `first` is an offset
    # the dense block's signs (the FFzero rule) are the same stream: a conv layer's filter c is the segment
    # c·fan .. (c+1)·fan of one layer-wide direction
    np.testing.assert_array_equal(rademacher(7, 64_000), s)


def accumulators(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    if kind == "tiny":
        return rng.integers(-3, 4, size=n)
    if kind == "huge":
        return rng.integers(-(2**61) // n, 2**61 // n, size=n)
    if kind == "constant":
        return np.full(n, int(rng.integers(-(2**40), 2**40)))
    if kind == "spike":
        a = np.zeros(n, dtype=np.int64)
        a[int(rng.integers(n))] = -(2**45)
        return a
    if kind == "two_values":
        return rng.choice([-(2**33), 2**33 + 1], size=n)
    return rng.integers(-(2**36), 2**36, size=n)


NORM_KINDS = ["random", "tiny", "huge", "constant", "spike", "two_values"]


@pytest.mark.parametrize("n", [1, 2, 5, 36, 169, 4096])
@pytest.mark.parametrize("kind", NORM_KINDS)
def test_normalise_matches_c(backends, n, kind):
    rng = np.random.default_rng(n)
    for frac, beta in ((0, 0), (8, 256), (10, 1024), (12, -32768), (14, 32767)):
        a = accumulators(rng, n, kind)
        want, sats = conv.normalise(a[None], frac, beta)
        for name, emu in backends.items():
            got, count = call(emu, "onw_conv_normalise", [a.astype(I64), n, frac, beta], [(I16, n), ("<u4", 1)])
            assert got.tolist() == want[0].tolist() and int(count[0]) == sats, name
    for frac, beta in ((0, 0), (16, -(2**20)), (20, 1 << 20), (22, 2**30 - 2**29)):
        a = accumulators(rng, n, kind)
        want = conv.normalise_wide(a[None], frac, beta)
        assert np.abs(want).max() < 2**31
        for name, emu in backends.items():
            (got32,) = call(emu, "onw_conv_normalise_wide", [a.astype(I64), n, frac, beta], [(I32, n)])
            assert got32.tolist() == want[0].tolist(), name


def test_normalise_counts_saturations():
    a = np.zeros(169, dtype=np.int64)
    a[0] = 1 << 30  # a spike standardises to sqrt(168) ≈ 13: 13·2^12 overflows int16 in Q12, not in Q10
    assert conv.normalise(a, 12, 0)[1] == 1
    y, sats = conv.normalise(a, 10, 0)
    assert sats == 0 and abs(y[0, 0] / 1024 - np.sqrt(168)) < 2e-3


@pytest.mark.parametrize("kind", ["random", "tiny", "two_values", "spike"])
def test_normalise_is_batchnorm_of_one_sample(kind):
    """Within 1 LSB (plus the float eps) of BatchNorm's training-mode output on a batch of one."""
    rng = np.random.default_rng(3)
    a = np.stack([accumulators(rng, 36, kind) for _ in range(8)])
    frac, beta = 10, 1024
    y, _ = conv.normalise(a, frac, beta)
    scale = np.abs(a).max() if kind == "tiny" else 1.0  # float BN's eps matters only at tiny scales
    want = conv.normalise_float(a / scale, 1.0) * (1 << frac)
    tol = 1.01 if kind != "tiny" else 0.01 * (1 << frac)
    assert np.abs(y - want).max() <= tol


def test_normalise_is_scale_invariant():
    """A filter times 2^k gives the same map (up to rounding): halving a grown filter is harmless."""
    rng = np.random.default_rng(4)
    a = rng.integers(-(2**30), 2**30, size=(4, 50))
    y1, _ = conv.normalise(a, 10, 0)
    y2, _ = conv.normalise(a << 5, 10, 0)
    assert np.abs(y1 - y2).max() <= 1


@pytest.mark.parametrize(("ch", "h", "w", "ph", "pw"), [(3, 6, 6, 2, 2), (2, 1, 36, 1, 2), (1, 7, 5, 2, 2),
                                                       (4, 1, 13, 1, 3), (1, 3, 3, 3, 3), (2, 4, 4, 1, 1)])
@pytest.mark.parametrize("kind", KINDS)
def test_relu_maxpool_matches_c(backends, ch, h, w, ph, pw, kind):
    rng = np.random.default_rng(h * w)
    y = int16_data(rng, (ch, h, w), kind)
    want = conv.relu_maxpool(y, (ph, pw))
    assert want.shape == (ch, h // ph, w // pw)
    for name, emu in backends.items():
        (got,) = call(emu, "onw_relu_maxpool", [y.astype(I16), ch, h, w, ph, pw], [(I16, want.size)])
        assert got.tolist() == want.reshape(-1).tolist(), name
    if kind == "min":
        assert not want.any()  # ReLU


@pytest.mark.parametrize(("n", "dim"), [(36, 10), (1, 1), (169, 3), (7, 16)])
@pytest.mark.parametrize("kind", KINDS)
def test_project_matches_c(backends, n, dim, kind):
    rng = np.random.default_rng(n + dim)
    m = int16_data(rng, (2, dim, n), kind)
    y = int16_data(rng, (2, n), kind) << 15  # the wide map: int32 (|x̂| < 2^8 in Q22 at most)
    want = conv.project(m, y)
    for name, emu in backends.items():
        for ch in range(2):
            (got,) = call(emu, "onw_conv_project", [m[ch].astype(I16), y[ch].astype(I32), n, dim], [(I64, dim)])
            assert got.tolist() == want[ch].tolist(), name
    np.testing.assert_array_equal(want, np.einsum("cdn,cn->cd", m.astype(object), y.astype(object)).astype(np.int64))


def test_shapes_1d_and_2d():
    assert conv.as_2d((40,)) == (1, 40) and conv.as_2d((8, 8)) == (8, 8)
    assert conv.kernel_2d(5, (40,)) == (1, 5) and conv.kernel_2d(3, (8, 8)) == (3, 3)
    assert conv.pooled_shape(conv.out_shape((1, 40), (1, 5)), (1, 2)) == (1, 18)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        conv.as_2d((2, 3, 4))


def test_float_and_fixed_block_agree():
    """The integer path of a block (acc -> normalise -> project) tracks the float one on quantised data."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(1, 8, 8))
    w = rng.uniform(-0.3, 0.3, size=(4, 1, 3, 3))
    m = rng.uniform(-1 / 6, 1 / 6, size=(4, 10, 36))
    af, wf = 10, 12
    xq, wq, mq = fixed.to_q(x, af)[0], fixed.to_q(w, wf)[0], fixed.to_q(m, 15)[0]
    yq, sats = conv.normalise(conv.conv_acc(wq, xq), af, 1 << af)
    zq = conv.project(mq, yq) / 2.0 ** (15 + af)
    z = conv.project(m, conv.normalise_float(conv.conv(w, x), 1.0))
    assert sats == 0 and np.abs(zq - z).max() < 0.02 * np.abs(z).max()
    nxt = conv.relu_maxpool(yq.reshape(4, 6, 6), (2, 2)) / 2.0**af
    want = conv.relu_maxpool(conv.normalise_float(conv.conv(w, x), 1.0).reshape(4, 6, 6), (2, 2))
    assert np.abs(nxt - want).max() < 0.01


def test_perturbed_block_scores_from_integers_track_float():
    """How the fixed rule uses the kernels for one filter c: z± = M_c·normalise(A_c ± (P_c << p)), and the same
    filter perturbed in float by ±2^p LSB along the same signs gives the same scores (up to rounding)."""
    rng = np.random.default_rng(6)
    af, wf, p, key = 10, 12, 2, 99
    x = rng.uniform(-1, 1, size=(1, 1, 40))
    w = rng.uniform(-0.4, 0.4, size=(3, 1, 1, 5))
    m = rng.uniform(-1 / 6, 1 / 6, size=(3, 10, 36))
    xq, wq, mq = fixed.to_q(x, af)[0], fixed.to_q(w, wf)[0], fixed.to_q(m, 15)[0]
    acc = conv.conv_acc(wq, xq)
    for c_out in range(3):
        resp = conv.conv_response(xq, (1, 5), key, 5 * c_out)
        r = conv.direction_signs(key, 5 * c_out, 5).reshape(1, 1, 5)
        for sign in (1, -1):
            y = conv.normalise_wide(acc[c_out] + sign * (resp << p), conv.Z_MAP_FRAC, 0)
            z_int = conv.project(mq[c_out:c_out + 1], y)[0] / 2.0 ** (15 + conv.Z_MAP_FRAC)
            w_f = (wq[c_out] + sign * (r << p)) / 2.0**wf
            z_float = m[c_out] @ conv.normalise_float(conv.conv(w_f[None], xq / 2.0**af)[0], 0.0)
            assert np.abs(z_int - z_float).max() < 2e-3 * np.abs(z_float).max()
