"""The dense kernels of firmware/src/dense.c, called directly on every backend (the same cases everywhere: emulated
Cortex-M4 DSP and portable, M7, M0 and RV32 in unicorn, and the host's own CPU through ctypes): the SMLALD path of
DSP cores and the portable C loop against the Python reference, on random and extreme int16 data, every in_dim from
1 to 70, odd and even out_dim, aligned and unaligned rows and inputs; the same for onw_dense_acc (the exact sums,
rows `stride` apart, FFzero's accumulate). The weight update has its own file: test_dense_update.py."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from helpers import kernel_emulators, make_spec
from onward.counting import Emulator
from onward.data import load_dataset
from onward.model import init_model
from onward.nn.dense import acc_fixed, dense_fixed
from onward.report import build_variant

# A missing cross compiler fails these tests loudly (scripts/setup.sh installs it), never skips them.
assert shutil.which("arm-none-eabi-gcc") is not None, "needs arm-none-eabi-gcc: run scripts/setup.sh"

I16_MIN, I16_MAX = -32768, 32767


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Emulator]:
    """The kernels on every backend (helpers.EVERY_BACKEND): qemu-m4 DSP and portable, m7, m0, rv32, the host."""
    out = kernel_emulators(make_spec(name="kern"), tmp_path_factory.mktemp("kernels"))
    assert "onw_dense_pairs" in out["dsp"].symbols  # the SMLALD core is in the DSP build...
    assert "onw_dense_pairs" not in out["portable"].symbols  # ...and not in the portable one
    return out


def run_dense(emu: Emulator, w: np.ndarray, x: np.ndarray, weight_frac: int, relu: bool, w_offset: int = 0,
              x_offset: int = 0, count_saturations: bool = True) -> tuple[list[int], int]:
    """onw_dense on W (out x in) and x placed at 4-byte boundaries + offset; returns (y, saturations)."""
    out_dim, in_dim = w.shape
    emu.reset_scratch()
    w_at = emu.alloc(np.asarray(w, "<i2").tobytes(), 4, w_offset)
    x_at = emu.alloc(np.asarray(x, "<i2").tobytes(), 4, x_offset)
    y_at = emu.alloc(bytes([0xAA]) * (2 * out_dim + 4), 4)  # a guard past the end
    sat_at = emu.alloc(4, 4) if count_saturations else 0
    emu.call("onw_dense", [w_at, x_at, in_dim, out_dim, weight_frac, int(relu), y_at, sat_at], count=False)
    raw = emu.read(y_at, 2 * out_dim + 4)
    assert raw[2 * out_dim:] == bytes([0xAA]) * 4, "onw_dense wrote past y"
    sats = int.from_bytes(emu.read(sat_at, 4), "little") if count_saturations else 0
    return np.frombuffer(raw[:2 * out_dim], "<i2").astype(int).tolist(), sats


def check_dense(emulators: dict[str, Emulator], w: np.ndarray, x: np.ndarray, weight_frac: int, relu: bool,
                w_offset: int = 0, x_offset: int = 0) -> None:
    ref, ref_sats = dense_fixed(np.asarray(w, np.int64), np.asarray(x, np.int64), weight_frac, relu)
    expected = (ref.tolist(), ref_sats)
    for name, emu in emulators.items():
        got = run_dense(emu, w, x, weight_frac, relu, w_offset, x_offset)
        assert got == expected, (f"{name}: in {w.shape[1]} out {w.shape[0]} wf {weight_frac} relu {relu} "
                                 f"offsets {w_offset}/{x_offset}")


def test_every_shape_and_alignment(emulators: dict[str, Emulator]) -> None:
    rng = np.random.default_rng(1)
    for in_dim in range(1, 71):
        for out_dim in (1, 2, 3, 8, 11):
            w = rng.integers(-(1 << 13), 1 << 13, size=(out_dim, in_dim))
            x = rng.integers(-(1 << 12), 1 << 12, size=in_dim)
            offsets = (in_dim * out_dim) % 4  # vary the alignment of W and x with the shape
            check_dense(emulators, w, x, int(rng.integers(0, 17)), bool(in_dim % 2), offsets & 2,
                        (offsets << 1) & 2)


def test_unaligned_rows_and_inputs(emulators: dict[str, Emulator]) -> None:
    rng = np.random.default_rng(2)
    for in_dim in (6, 7, 12, 63, 64, 65):
        w = rng.integers(I16_MIN, I16_MAX + 1, size=(9, in_dim))
        x = rng.integers(I16_MIN, I16_MAX + 1, size=in_dim)
        for w_offset in (0, 2):
            for x_offset in (0, 2):
                check_dense(emulators, w, x, 12, False, w_offset, x_offset)


def test_extreme_values(emulators: dict[str, Emulator]) -> None:
    """-32768 everywhere: every product is 2^30 and two of them already overflow int32 (SMLAD would be
    wrong); the 64-bit sums are exact, and every output saturates and is counted."""
    rng = np.random.default_rng(3)
    for in_dim in (1, 2, 5, 6, 7, 24, 64, 70):
        for out_dim in (1, 2, 4, 5):
            for weight_frac in (0, 1, 15, 16):
                for relu in (False, True):
                    check_dense(emulators, np.full((out_dim, in_dim), I16_MIN), np.full(in_dim, I16_MIN),
                                weight_frac, relu)
                    check_dense(emulators, np.full((out_dim, in_dim), I16_MIN), np.full(in_dim, I16_MAX),
                                weight_frac, relu)
            corners = np.array([I16_MIN, I16_MIN + 1, -1, 0, 1, I16_MAX])
            check_dense(emulators, rng.choice(corners, size=(out_dim, in_dim)), rng.choice(corners, size=in_dim),
                        int(rng.integers(0, 17)), bool(rng.integers(0, 2)))


def test_rounding_and_saturation_boundaries(emulators: dict[str, Emulator]) -> None:
    """Sums that land just inside and just outside the int16 range after the rounding shift, and exact halves
    (round half up) around every boundary: W x = total with x constant and W summing to total / x."""
    for weight_frac in (0, 1, 2, 12, 15, 16):
        x_value = 1 if weight_frac == 0 else (1 << (weight_frac - 1) if weight_frac <= 15 else I16_MIN)
        for target in (I16_MIN - 1, I16_MIN, I16_MAX, I16_MAX + 1, 0, -1):
            for delta in (-1, 0, 1):
                total = (target << weight_frac) + delta * (1 << max(weight_frac - 1, 0))
                row_sum = total // x_value
                assert row_sum * x_value == total
                parts = [max(I16_MIN, min(I16_MAX, row_sum // 6))] * 5
                parts.append(row_sum - sum(parts))
                assert all(I16_MIN <= p <= I16_MAX for p in parts)
                w = np.array([parts, parts[::-1], [0] * 6])
                for relu in (False, True):
                    check_dense(emulators, w, np.full(6, x_value), weight_frac, relu)


def test_other_weight_fracs_and_no_counter(emulators: dict[str, Emulator]) -> None:
    """weight_frac outside the fast core's [0, 16] takes the general path; saturations may be NULL."""
    rng = np.random.default_rng(4)
    w = rng.integers(I16_MIN, I16_MAX + 1, size=(6, 10))
    x = rng.integers(I16_MIN, I16_MAX + 1, size=10)
    for weight_frac in (17, 20, 31):
        check_dense(emulators, w, x, weight_frac, False)
    for name, emu in emulators.items():
        y, _ = run_dense(emu, w, x, 3, True, count_saturations=False)
        assert y == dense_fixed(w, x, 3, True)[0].tolist(), name


def instructions_per_mac(emulators: dict[str, Emulator], w: np.ndarray, x: np.ndarray, function: str,
                         args: Callable[[int, int, int], list[int]], out_bytes: int, macs: int) -> dict[str, float]:
    """Executed instructions per MAC of one call on the emulated cores (the host counts none): W and x placed in
    scratch memory, `args(w_at, x_at, out_at)` the call's arguments."""
    counts = {}
    for name in ("dsp", "portable", "m7"):
        emu = emulators[name]
        emu.reset_scratch()
        w_at, x_at = emu.alloc(np.asarray(w, "<i2").tobytes()), emu.alloc(np.asarray(x, "<i2").tobytes())
        out_at = emu.alloc(out_bytes, 8)
        counts[name] = emu.call(function, args(w_at, x_at, out_at)).instructions / macs
    return counts


def test_dsp_kernel_is_faster(emulators: dict[str, Emulator]) -> None:
    """The figure the report gives: executed instructions per MAC of a 64x64 layer (aligned, ReLU)."""
    rng = np.random.default_rng(0)
    w, x = rng.integers(-(1 << 11), 1 << 11, size=(64, 64)), rng.integers(0, 1 << 10, size=64)
    counts = instructions_per_mac(emulators, w, x, "onw_dense",
                                  lambda w_at, x_at, y_at: [w_at, x_at, 64, 64, 12, 1, y_at, y_at + 128], 132, 4096)
    assert counts["dsp"] <= 1.0
    assert counts["m7"] <= 1.0
    assert counts["portable"] > 4 * counts["dsp"]


# --- onw_dense_acc: exact int64 sums of rows `stride` apart (FFzero's padded blocks) ---

@pytest.fixture(scope="module")
def acc_emulators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Emulator]:
    """An FFzero firmware (the rule that links onw_dense_acc) on every backend (helpers.EVERY_BACKEND)."""
    spec = make_spec(name="kacc", model={"hidden": [12]}, data={"set": "synthetic", "features": 10, "classes": 4,
                                                               "samples": 40},
                     rule={"name": "ffzero", "learning_rate": 1e-3, "epochs": 1})
    out = kernel_emulators(spec, tmp_path_factory.mktemp("kernels_acc"))
    assert "onw_dense_pairs_raw" in out["dsp"].symbols and "onw_dense_pairs_raw" not in out["portable"].symbols
    return out


def run_dense_acc(emu: Emulator, w: np.ndarray, in_dim: int, x: np.ndarray, w_offset: int = 0,
                  x_offset: int = 0) -> list[int]:
    """onw_dense_acc on W (out x stride, the first in_dim columns used) and x; returns the int64 sums."""
    out_dim, stride = w.shape
    emu.reset_scratch()
    w_at = emu.alloc(np.asarray(w, "<i2").tobytes(), 4, w_offset)
    x_at = emu.alloc(np.asarray(x, "<i2").tobytes(), 4, x_offset)
    acc_at = emu.alloc(bytes([0xAA]) * (8 * out_dim + 8), 8)  # a guard past the end
    emu.call("onw_dense_acc", [w_at, stride, x_at, in_dim, out_dim, acc_at], count=False)
    raw = emu.read(acc_at, 8 * out_dim + 8)
    assert raw[8 * out_dim:] == bytes([0xAA]) * 8, "onw_dense_acc wrote past acc"
    return np.frombuffer(raw[:8 * out_dim], "<i8").astype(int).tolist()


def check_dense_acc(emulators: dict[str, Emulator], w: np.ndarray, in_dim: int, x: np.ndarray, w_offset: int = 0,
                    x_offset: int = 0) -> None:
    want = [int(v) for v in acc_fixed(np.asarray(w, np.int64)[:, :in_dim], np.asarray(x, np.int64))]
    for name, emu in emulators.items():
        got = run_dense_acc(emu, w, in_dim, x, w_offset, x_offset)
        assert got == want, f"{name}: in {in_dim} stride {w.shape[1]} out {w.shape[0]} offsets {w_offset}/{x_offset}"


def test_dense_acc_every_shape_stride_and_alignment(acc_emulators: dict[str, Emulator]) -> None:
    """Odd and even in_dim and stride (stride = in_dim, + 1, + 2: FFzero's bias and padding), odd and even out_dim,
    aligned and unaligned W and x: the SMLALD core, the DSP C path and the portable loop agree with numpy."""
    rng = np.random.default_rng(5)
    for in_dim in (*range(1, 40), 63, 64, 65, 100):
        for extra in (0, 1, 2):
            for out_dim in (1, 2, 3, 8, 11):
                w = rng.integers(I16_MIN, I16_MAX + 1, size=(out_dim, in_dim + extra))
                x = rng.integers(I16_MIN, I16_MAX + 1, size=in_dim)
                shift = (in_dim + extra + out_dim) % 4
                check_dense_acc(acc_emulators, w, in_dim, x, shift & 2, (shift << 1) & 2)
    for in_dim in (6, 7, 64, 65):  # every alignment of a padded block
        w = rng.integers(-(1 << 12), 1 << 12, size=(9, in_dim + 2))
        x = rng.integers(-(1 << 12), 1 << 12, size=in_dim)
        for w_offset in (0, 2):
            for x_offset in (0, 2):
                check_dense_acc(acc_emulators, w, in_dim, x, w_offset, x_offset)


def test_dense_acc_extreme_values(acc_emulators: dict[str, Emulator]) -> None:
    """-32768 x -32768 everywhere (sums of 2^30 that overflow int32 from the second term), and the corners."""
    rng = np.random.default_rng(6)
    corners = np.array([I16_MIN, I16_MIN + 1, -1, 0, 1, I16_MAX])
    for in_dim in (1, 2, 6, 7, 64, 65, 100):
        for out_dim in (1, 2, 5):
            for stride in (in_dim, in_dim + 1, in_dim + 2):
                for v in (I16_MIN, I16_MAX):
                    check_dense_acc(acc_emulators, np.full((out_dim, stride), I16_MIN), in_dim, np.full(in_dim, v))
                check_dense_acc(acc_emulators, rng.choice(corners, size=(out_dim, stride)), in_dim,
                                rng.choice(corners, size=in_dim))


def test_dense_acc_dsp_is_faster(acc_emulators: dict[str, Emulator]) -> None:
    """FFzero's digits stage 0: 100 rows of 64 inputs, stride 66; about one instruction per MAC with SMLALD."""
    rng = np.random.default_rng(7)
    w, x = rng.integers(-(1 << 12), 1 << 12, size=(100, 66)), rng.integers(0, 1 << 9, size=64)
    counts = instructions_per_mac(acc_emulators, w, x, "onw_dense_acc",
                                  lambda w_at, x_at, acc_at: [w_at, 66, x_at, 64, 100, acc_at], 800, 6400)
    assert counts["dsp"] <= 1.0 and counts["m7"] <= 1.0
    assert counts["portable"] > 3 * counts["dsp"]


def test_emulator_loads_the_elf_like_the_startup_code(tmp_path: Path) -> None:
    """.data is at its run address with its initial values and .bss is zero, without running Reset_Handler."""
    spec = make_spec(name="load")
    model = init_model(spec, load_dataset(spec))
    firmware = build_variant(model, "qemu-m4", tmp_path)
    emu = Emulator(firmware.path)
    emu.call("onw_reset", [7], count=False)
    seed = int.from_bytes(emu.read(emu.address("onw_state"), 4), "little")
    assert seed == 7
    first = np.frombuffer(emu.read(emu.address("onw_state") + 16, 2 * 4), "<i2").tolist()
    assert first == model.weights_q[0].reshape(-1)[:4].tolist()
