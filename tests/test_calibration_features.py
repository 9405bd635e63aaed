"""The calibration model's inputs in integers (onward.calibration.features.features_q) and their C twin
(firmware/src/calibration_features.c, what a sensor's firmware computes beside its driver): equal on a simulated
temperature register and on extreme jumps, on the host CPU, a Cortex-M0 and a Cortex-M4; and close to the float
filters they stand for."""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import NATIVE_LIBRARY_FLAGS, NativeKernels, make_spec
from onward.calibration.features import (
    FEATURE_FRAC,
    SWING_SPAN_C,
    SWING_TAU_S,
    WARMING_SPAN_C,
    WARMING_TAU_S,
    features_q,
    filter_params,
)
from onward.calibration.sensor import T_LSB_PER_C, scenario, simulate
from onward.counting import Emulator
from onward.data import load_dataset
from onward.model import init_model
from onward.report import NO_LTO_FLAG, board_cpu
from onward.targets.build import build_firmware

KEEP = "-Wl,--undefined=onw_calib_features"  # no firmware calls it yet: keep it through --gc-sections


def registers() -> np.ndarray:
    """Three simulated days of the temperature register, then jumps across its whole range."""
    t = simulate(scenario("outdoor", days=3.0), 4).temp_counts.astype(np.int64)
    jumps = np.array([32767, -32768, 32767, 0, -32768, 1, -1, 32767, 32767, -32768], dtype=np.int64)
    return np.concatenate([t, jumps, t[:200]])


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    spec = make_spec()
    model = init_model(spec, load_dataset(spec))
    folder = tmp_path_factory.mktemp("calib")
    out: dict[str, object] = {}
    library = build_firmware(model, "native", folder, variant="lib", extra_cflags=NATIVE_LIBRARY_FLAGS)
    out["host"] = NativeKernels(library.path)
    for target in ("qemu-m0", "qemu-m4"):
        firmware = build_firmware(model, target, folder, extra_cflags=(NO_LTO_FLAG, KEEP), variant="calib")
        out[target] = Emulator(firmware.path, board_cpu(firmware))
    return out


@pytest.mark.parametrize("backend", ["host", "qemu-m0", "qemu-m4"])
def test_the_c_features_equal_the_python_ones(backends: dict[str, object], backend: str) -> None:
    emu = backends[backend]
    temps = registers()
    expected = features_q(temps, 60.0)
    params = np.array(filter_params(60.0), dtype="<i4")
    emu.reset_scratch()  # type: ignore[attr-defined]
    state = emu.alloc(12)  # type: ignore[attr-defined]
    emu.write(state, bytes(12))  # type: ignore[attr-defined]
    p, out = emu.alloc(params.tobytes()), emu.alloc(6)  # type: ignore[attr-defined]
    for k, t in enumerate(temps.tolist()):
        emu.call("onw_calib_features", [state, t & 0xFFFFFFFF if backend != "host" else t, p, out],  # type: ignore[attr-defined]
                 count=False)
        got = np.frombuffer(emu.read(out, 6), dtype="<i2")  # type: ignore[attr-defined]
        assert got[0] == 1 << FEATURE_FRAC and np.array_equal(got[1:], expected[k]), (k, got, expected[k])


def test_the_integer_filters_follow_the_float_ones() -> None:
    """Against exact first-order lags in float: the coefficient's Q16 rounding (45 for 45.5 at tau = 1 day) is
    a 1 % change of time constant, which moves the swing by a few thousandths of its range."""
    temps = simulate(scenario("outdoor", days=10.0), 2).temp_counts.astype(np.int64)
    got = features_q(temps, 60.0) / 2.0**FEATURE_FRAC
    t = temps / T_LSB_PER_C
    for col, tau, span, tol in ((0, SWING_TAU_S, SWING_SPAN_C, 0.01), (1, WARMING_TAU_S, WARMING_SPAN_C, 0.002)):
        a = math.exp(-60.0 / tau)
        lag = np.empty_like(t)
        lag[0] = t[0]
        for k in range(1, t.size):
            lag[k] = a * lag[k - 1] + (1 - a) * t[k]
        assert np.abs(got[:, col] - (t - lag) / span).max() < tol


def test_filter_params_for_the_default_sample_period() -> None:
    assert filter_params(60.0) == (45, 1083, 268435, 536871)
