"""onward.calibration.sensor: one seed gives one trace; the registers are the LPS22HH's; each effect has the size
and time course its parameter says; the uncorrected default sensor is outside ±50 Pa most of the time."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields

import numpy as np
import pytest

from onward.calibration.sensor import (
    DAY,
    DEFAULT_SCENARIO,
    P_MAX,
    P_MIN,
    P_PA_PER_LSB,
    SCENARIOS,
    T_MAX,
    T_MIN,
    Scenario,
    Trace,
    scenario,
    simulate,
    without_flaws,
)

HALF_LSB = P_PA_PER_LSB / 2
ARRAYS = [f.name for f in fields(Trace) if f.name not in ("scenario", "seed")]


def test_same_seed_bit_identical_other_seed_differs() -> None:
    sc = scenario("outdoor", days=5.0)
    a, b, c = simulate(sc, 7), simulate(sc, 7), simulate(sc, 8)
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name
    for name in ("p_true_pa", "temp_true_c", "p_counts", "ref_pa"):
        x, z = getattr(a, name), getattr(c, name)
        assert x.shape != z.shape or not np.array_equal(x, z), name


def test_counts_are_register_integers_and_round_trip_within_half_an_lsb() -> None:
    tr = simulate(scenario(DEFAULT_SCENARIO, days=10.0), 0)
    assert tr.p_counts.dtype == np.int32 and tr.temp_counts.dtype == np.int16
    assert P_MIN <= tr.p_counts.min() and tr.p_counts.max() <= P_MAX
    assert T_MIN <= tr.temp_counts.min() and tr.temp_counts.max() <= T_MAX
    assert np.all(np.abs(tr.p_counts * (100 / 4096) - tr.p_analog_pa) <= HALF_LSB + 1e-9)
    assert np.array_equal(tr.p_reported_pa, tr.p_counts / 4096 * 100)
    assert np.all(np.abs(tr.temp_reported_c - tr.temp_true_c) < 1.5 + 0.1)  # offset ≤ ±1.5 °C plus noise
    # out of range: clipped to the registers, not wrapped
    far = simulate(scenario("indoor", days=1.0, p_mean_pa=400000.0, temp_mean_c=-400.0), 0)
    assert np.all(far.p_counts == P_MAX) and np.all(far.temp_counts == T_MIN)


@pytest.mark.parametrize("rms", [0.65, 2.0])
def test_noise_rms_matches_the_parameter(rms: float) -> None:
    sc = without_flaws(scenario("indoor", days=10.0, noise_rms_pa=rms), keep=("noise_rms_pa",))
    tr = simulate(sc, 3)
    assert math.sqrt(np.mean((tr.p_analog_pa - tr.p_true_pa) ** 2)) == pytest.approx(rms, rel=0.03)
    assert math.sqrt(np.mean(tr.error_pa**2)) == pytest.approx(rms, rel=0.03)  # quantisation adds 0.007 Pa RMS


def test_stress_event_shift_and_recovery_with_its_time_constant() -> None:
    m, tau, residual = 200.0, 1.5 * DAY, 0.1
    base = scenario("indoor", days=12.0, synoptic_sigma_pa=0.0, tide_pa=0.0, p_mean_pa=100000.0,
                    stress_days=(2.0,), stress_pa=(m,), stress_tau_s=tau, stress_residual=residual)
    tr = simulate(without_flaws(base, keep=("stress_pa",)), 0)
    err = tr.p_analog_pa - tr.p_true_pa
    at = int(2 * DAY / base.sample_period_s)
    assert np.all(err[:at] == 0.0)
    assert abs(err[at]) >= m and abs(tr.error_pa[at]) >= m - HALF_LSB
    one_tau = at + int(tau / base.sample_period_s)
    assert abs(err[one_tau]) == pytest.approx(m * (residual + (1 - residual) / math.e), rel=1e-6)
    assert abs(err[-1]) == pytest.approx(m * residual, rel=0.05)  # 6.7 time constants later
    assert tr.stress_t_s.tolist() == [2 * DAY] and abs(tr.stress_pa[0]) == m


def test_default_scenario_has_a_stress_event_of_at_least_1_6_hpa() -> None:
    tr = simulate(scenario(DEFAULT_SCENARIO), 0)
    assert np.max(np.abs(tr.stress_pa)) >= 160.0


def test_hysteresis_warming_and_cooling_through_the_same_temperature_differ() -> None:
    amp, k, tau = 5.0, 5.0, 3600.0
    base = scenario("outdoor", days=3.0, temp_daily_c=amp, temp_seasonal_c=0.0, temp_weather_c=0.0,
                    synoptic_sigma_pa=0.0, tide_pa=0.0, p_mean_pa=100000.0, hysteresis_pa_per_c=k,
                    hysteresis_tau_s=tau)
    on = simulate(without_flaws(base, keep=("hysteresis_pa_per_c",)), 0)
    off = simulate(without_flaws(base), 0)
    per_hour = int(3600 / base.sample_period_s)
    up, down = (int((2 * 24 + h) * per_hour) for h in (9, 21))  # day 2: mean temperature, rising and falling
    assert on.temp_true_c[up] == pytest.approx(on.temp_true_c[down], abs=1e-9)
    assert on.temp_true_c[up + 1] > on.temp_true_c[up] and on.temp_true_c[down + 1] < on.temp_true_c[down]
    err = on.p_analog_pa - on.p_true_pa
    # a first-order lag of a sinusoid: at the mean crossing, T - T_lag = ±A·ωτ/(1 + (ωτ)²)
    wt = 2 * math.pi / DAY * tau
    # (continuous time; the one-minute steps of the discrete lag make it ~1 % smaller)
    assert err[up] - err[down] == pytest.approx(2 * k * amp * wt / (1 + wt**2), rel=0.02)
    assert err[up] > 0 > err[down]
    assert off.p_analog_pa[up] - off.p_true_pa[up] == off.p_analog_pa[down] - off.p_true_pa[down] == 0.0


@pytest.mark.parametrize(("per_day", "sigma", "res"), [(4.0, 10.0, 10.0), (8.0, 25.0, 0.0)])
def test_reference_readings_rate_and_error(per_day: float, sigma: float, res: float) -> None:
    days = 365.0
    sc = scenario("indoor", days=days, sample_period_s=600.0, ref_per_day=per_day, ref_sigma_pa=sigma,
                  ref_resolution_pa=res)
    tr = simulate(sc, 11)
    n = tr.ref_index.size
    assert n / days == pytest.approx(per_day, rel=4 / math.sqrt(per_day * days))  # Poisson, 4 σ
    assert np.all(np.diff(tr.ref_index) > 0) and 0 <= tr.ref_index[0] and tr.ref_index[-1] < tr.t_s.size
    expected = math.sqrt(sigma**2 + res**2 / 12)  # rounding to `res` adds a uniform error
    assert np.std(tr.ref_error_pa) == pytest.approx(expected, rel=4 / math.sqrt(2 * n))
    assert abs(np.mean(tr.ref_error_pa)) < 4 * expected / math.sqrt(n)
    if res:
        assert np.all(np.rint(tr.ref_pa / res) * res == tr.ref_pa)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_default_scenario_uncorrected_mostly_outside_50_pa_and_ideal_sensor_within_half_an_lsb(seed: int) -> None:
    sc = scenario(DEFAULT_SCENARIO)
    assert np.mean(np.abs(simulate(sc, seed).error_pa) <= 50.0) < 0.5
    ideal = simulate(without_flaws(sc), seed)
    assert np.max(np.abs(ideal.error_pa)) <= HALF_LSB + 1e-9


def test_presets_are_valid_and_indoor_is_milder() -> None:
    assert set(SCENARIOS) == {"indoor", "outdoor"} and DEFAULT_SCENARIO in SCENARIOS
    indoor, outdoor = (simulate(scenario(name, days=30.0), 0) for name in ("indoor", "outdoor"))
    assert abs(np.mean(indoor.temp_true_c) - 21.0) < 2.0
    assert np.ptp(indoor.temp_true_c) < np.ptp(outdoor.temp_true_c) / 2


@pytest.mark.parametrize(("call", "field"), [
    (lambda: scenario("attic"), "attic"),
    (lambda: scenario("indoor", noise_rms_pa=-1.0), "noise_rms_pa"),
    (lambda: scenario("indoor", tide_pa=float("nan")), "tide_pa"),
    (lambda: scenario("outdoor", stress_pa=(float("inf"),)), "stress_pa"),
    (lambda: scenario("outdoor", stress_days=(1.0, 2.0)), "stress_pa"),
    (lambda: scenario("outdoor", days=0), "days"),
    (lambda: scenario("outdoor", stress_residual=1.5), "stress_residual"),
    (lambda: scenario("outdoor", noise=1.0), "noise"),
    (lambda: Scenario(ref_sigma_pa="10"), "ref_sigma_pa"),
    (lambda: simulate(scenario("indoor", days=1.0), -1), "seed"),
])
def test_bad_input_is_a_one_line_value_error_naming_the_field(call: Callable[[], object], field: str) -> None:
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert field in message and "\n" not in message and "expected" in message
