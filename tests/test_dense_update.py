"""The dense weight update (firmware/src/dense_update.c) against its specification, host/nn/dense.py's update_fixed,
called directly on every backend (helpers.EVERY_BACKEND: the emulated Cortex-M4/M7 path, SMLABB + SSUB16 with its
Q-flag undo, and the portable 32-bit and int64 loops on the M4, M0, RV32 and the host), on random and extreme data.
Also the definition's own promise: the expected update is the exact lr * delta x^T / 2^shift."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from helpers import kernel_emulators, make_spec
from onward import fixed
from onward.nn.dense import update_fixed

I16_MIN, I16_MAX = -32768, 32767


def test_the_expected_update_is_the_exact_one() -> None:
    """Over many rounding keys the mean step equals delta x lr / 2^shift within its standard error, for updates
    far below one LSB, near one, and many LSBs; both roundings (the row's factor and the per-weight dither)."""
    rng = np.random.default_rng(3)
    delta = np.array([1, -3, 200, -7000, 32767])
    x = np.array([1, -2, 5, 1000, -32768, 32767, 77, -1])
    w = np.zeros((len(delta), len(x)), dtype=np.int64)
    for lr_q, shift in ((1 << 20, 32), (12345, 16), ((1 << 32) - 1, 47), (3, 40)):
        exact = np.outer(delta, x) * lr_q / 2.0**shift
        keys = rng.integers(0, 1 << 32, size=4000)
        steps = np.array([-update_fixed(w, delta, x, lr_q, shift, int(k))[0] for k in keys], dtype=np.float64)
        mean, se = steps.mean(axis=0), steps.std(axis=0, ddof=1) / np.sqrt(len(keys))
        # a step's variance is at least the final rounding's, f (1 - f) for the fraction f of the exact step:
        # that floor keeps a rare event that the sample never saw from passing as exact
        frac = exact - np.floor(exact)
        se = np.maximum(se, np.sqrt(frac * (1 - frac) / len(keys)))
        inside = np.abs(exact) < 32000  # W starts at 0: past that the weight saturates (counted, tested below)
        assert inside.sum() >= 25
        off = np.abs(mean - exact)[inside]
        # 5 standard errors: a biased rounding (floor, or a shared offset) is off by far more
        assert np.all(off <= 5 * se[inside] + 1e-9), (lr_q, shift, off / se[inside])


def test_the_dither_stream_is_the_lcg() -> None:
    seeds = [0, 1, 0xFFFFFFFF, 0x9E3779B9]
    words = fixed.dither_stream(seeds, 40)
    for row, seed in zip(words, seeds, strict=True):
        u = seed
        for k in range(40):
            assert row[k] == u
            u = (u * fixed.DITHER_A + fixed.DITHER_C) & 0xFFFFFFFF


def test_rows_with_zero_delta_and_columns_with_zero_input_do_not_move() -> None:
    w = np.arange(12).reshape(3, 4) - 6
    new, sats = update_fixed(w, np.array([0, 5, 0]), np.array([3, 0, -2, 0]), 1 << 24, 32, 9)
    assert sats == 0 and (new[[0, 2]] == w[[0, 2]]).all() and (new[1, [1, 3]] == w[1, [1, 3]]).all()


if shutil.which("arm-none-eabi-gcc") is None:  # setup installs it; without it the firmware tests cannot run
    pytest.fail("needs arm-none-eabi-gcc (scripts/setup.sh installs it)", pytrace=False)

from onward.counting import Emulator  # noqa: E402


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Emulator]:
    """qemu-m4 firmware with the DSP path and with the portable one, qemu-m7's DSP build, qemu-m0 (Armv6-M)."""
    out = kernel_emulators(make_spec(name="upd"), tmp_path_factory.mktemp("update"))
    assert "onw_update_rows" in out["dsp"].symbols and "onw_update_rows" not in out["portable"].symbols
    return out


def run_update(emu: Emulator, w: np.ndarray, a: np.ndarray, b: np.ndarray | None, x: np.ndarray, lr_q: int,
               shift: int, key: int, w_offset: int = 0, x_offset: int = 0) -> tuple[list[int], int]:
    out_dim, in_dim = w.shape
    emu.reset_scratch()
    w_at = emu.alloc(np.asarray(w, "<i2").tobytes() + b"\xAA" * 4, 4, w_offset)
    a_at = emu.alloc(np.asarray(a, "<i2").tobytes(), 4)
    b_at = emu.alloc(np.asarray(b, "<i2").tobytes(), 4) if b is not None else 0
    x_at = emu.alloc(np.asarray(x, "<i2").tobytes(), 4, x_offset)
    sat_at = emu.alloc(4, 4)
    emu.call("onw_dense_update", [w_at, a_at, b_at, x_at, in_dim, out_dim, lr_q, shift, key, sat_at], count=False)
    raw = emu.read(w_at, 2 * w.size + 4)
    assert raw[2 * w.size:] == b"\xAA" * 4, "onw_dense_update wrote past W"
    new_w = np.frombuffer(raw[:2 * w.size], "<i2").astype(int).tolist()
    return new_w, int.from_bytes(emu.read(sat_at, 4), "little")


def expected_update(w: np.ndarray, a: np.ndarray, b: np.ndarray | None, x: np.ndarray, lr_q: int, shift: int,
                    key: int) -> tuple[list[int], int]:
    delta, delta_sats = (a, 0) if b is None else fixed.sat16(a - b)
    new_w, sats = update_fixed(w, delta, x, lr_q, shift, key)
    return new_w.reshape(-1).tolist(), sats + delta_sats


def test_update_matches_the_reference(emulators: dict[str, Emulator]) -> None:
    """Every path against update_fixed: widths 1-70 (whole groups of 4 and tails), aligned and unaligned rows and
    inputs, shifts from 16 to 48, learning rates past 2^31 (the int64 path), weights in and past [-2^14, 2^14)
    (the DSP path's undo), saturating deltas and weights, with b or without."""
    rng = np.random.default_rng(5)
    for trial in range(80):
        out_dim, in_dim = int(rng.integers(1, 7)), int(rng.integers(1, 71))
        kind = trial % 4  # 0: extreme, 1: small, 2: weights near the int15 edge, 3: typical training
        lim = {0: 1 << 15, 1: 1 << 9, 2: 1 << 12, 3: 1 << 11}[kind]
        w = rng.integers(-lim, min(lim, I16_MAX + 1), size=(out_dim, in_dim))
        if kind == 2:
            w[rng.integers(0, out_dim), rng.integers(0, in_dim)] = int(rng.choice([-16385, 16384, I16_MAX, I16_MIN]))
        a = rng.integers(-lim, min(lim, I16_MAX + 1), size=out_dim)
        b = rng.integers(-lim, min(lim, I16_MAX + 1), size=out_dim) if trial % 2 else None
        x = rng.integers(-lim, min(lim, I16_MAX + 1), size=in_dim) * rng.integers(0, 2, size=in_dim)
        shift = int(rng.choice([16, 17, 31, 32, 33, 40, 48]))
        lr_q = int(rng.choice([1, 1 << 20, 1_677_722, (1 << 31) - 1, (1 << 31) + 5, (1 << 32) - 1]))
        key = int(rng.integers(0, 1 << 32))
        offsets = (0, 0) if trial % 3 else (int(rng.integers(0, 2)) * 2, int(rng.integers(0, 2)) * 2)
        expected = expected_update(w, a, b, x, lr_q, shift, key)
        for name, emu in emulators.items():
            got = run_update(emu, w, a, b, x, lr_q, shift, key, *offsets)
            assert got == expected, f"{name}: trial {trial}"


def test_the_dsp_update_costs_a_few_instructions_per_weight(emulators: dict[str, Emulator]) -> None:
    """The figure behind the training step's cost: a 64x64 update with training-like values. The DSP path's
    instructions per weight, and that it is well below the portable loop's (the exact figures: bench/speed.py)."""
    rng = np.random.default_rng(1)
    w = rng.integers(-2000, 2000, size=(64, 64))
    a, x = rng.integers(-300, 300, size=64), rng.integers(0, 1 << 10, size=64)
    per_weight = {}
    for name in ("dsp", "portable"):
        emu = emulators[name]
        emu.reset_scratch()
        at = [emu.alloc(np.asarray(v, "<i2").tobytes(), 4) for v in (w, a, x)]
        sat_at = emu.alloc(4, 4)
        call = emu.call("onw_dense_update", [at[0], at[1], 0, at[2], 64, 64, 1_677_722, 32, 7, sat_at])
        per_weight[name] = call.instructions / w.size
    assert per_weight["dsp"] < 5.5  # 3.75 in the group loop, the rest the row's factor and hash
    assert per_weight["portable"] > 1.5 * per_weight["dsp"]
