"""A seeded simulator of a MEMS barometer (ST LPS22HH-like) in the field, over days to months.

The truth is weather-like pressure and daily/seasonal temperature. The sensor adds the errors that a factory
calibration leaves or that appear later: offset and gain residuals, temperature coefficients, a quadratic
nonlinearity, thermal hysteresis, a soldering shift, thermal-stress shifts that recover over days, ageing, noise.
It then quantises to the LPS22HH's registers (24-bit pressure, 16-bit temperature). Sparse reference readings (a
reference barometer or a weather station's QNH), each with its own error, are what a calibration may learn from.

Every magnitude is a field of `Scenario`, with its unit and source. "Chosen" marks a value that no source gives
for this part. docs/calibration.md has the table. Randomness: `simulate(scenario, seed)` draws from independent
Philox (counter-based) streams, one per concern. Switching one effect off therefore leaves the draws of the others
unchanged, and one seed gives bit-identical traces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

F64 = NDArray[np.float64]
HOUR, DAY, YEAR = 3600.0, 86400.0, 365.25 * 86400.0
P_PA_PER_LSB = 100 / 4096  # LPS22HH datasheet: 4096 LSB/hPa, 1 hPa = 100 Pa (25/1024: exact in binary)
T_LSB_PER_C = 100  # LPS22HH datasheet: 100 LSB/°C
P_MIN, P_MAX = -(2**23), 2**23 - 1  # PRESS_OUT_H/L/XL: 24-bit two's complement
T_MIN, T_MAX = -(2**15), 2**15 - 1  # TEMP_OUT_H/L: 16-bit two's complement
DATASHEET_T_C = 25.0  # the datasheet's characterisation temperature: temperature errors are zero here


@dataclass(frozen=True)
class Scenario:
    """Every parameter of one simulated deployment. Defaults are the `outdoor` preset."""

    name: str = "outdoor"
    # --- time base
    days: float = 90.0  # length of the trace, days
    sample_period_s: float = 60.0  # one reading a minute (the sensor in one-shot mode, or its ODR decimated), s
    # --- true pressure (same indoors and outdoors: buildings are not airtight)
    p_mean_pa: float = 101325.0  # mean station pressure, Pa; ISA sea level (ISO 2533)
    synoptic_sigma_pa: float = 1000.0  # std of weather swings, Pa: ±20 hPa at 2σ (calibration.md), mid-latitudes
    synoptic_tau_s: float = 3 * DAY  # correlation time of the swings, s: highs and lows pass in days (chosen)
    weather_smooth_s: float = 9 * HOUR  # low-pass on the weather processes so a front takes hours, s (chosen:
    #   with the two above, 3-hour tendencies have a std of ~1 hPa and 24-hour changes ~6 hPa)
    tide_pa: float = 100.0  # semi-diurnal (S2) tide amplitude, Pa: ~1 hPa, peaks 10:00 and 22:00 local
    #                         (Haurwitz: ~1.16 hPa·cos³(latitude); we keep the brief's ~1 hPa)
    # --- true temperature (outdoor: a mid-latitude spring; indoor preset below)
    temp_mean_c: float = 11.0  # annual mean, °C (chosen: Central Europe)
    temp_daily_c: float = 5.0  # daily cycle amplitude, °C, peak 15:00 local (chosen)
    temp_seasonal_c: float = 9.0  # seasonal amplitude, °C, coldest on coldest_day (chosen)
    coldest_day: float = 20.0  # day of year of the seasonal minimum, days (northern hemisphere, chosen)
    temp_weather_c: float = 3.0  # std of weather-driven temperature anomalies, °C (chosen)
    temp_weather_tau_s: float = 3 * DAY  # their correlation time, s (chosen)
    start_day_of_year: float = 80.0  # trace starts on 21 March at local midnight, days
    # --- factory calibration and what it leaves (static per part, drawn from the seed)
    p_trim_pa: float = 100000.0  # pressure at which the factory trim is exact; gain errors pivot here, Pa (chosen)
    factory_offset_sigma_pa: float = 15.0  # std of the residual offset, Pa: inside the datasheet's ±0.5 hPa
    #                                         absolute accuracy with room for the TCO (chosen)
    gain_sigma_ppm: float = 100.0  # std of the residual gain error, ppm (chosen: about the datasheet's
    #                                relative accuracy, ±0.025 hPa over 800-1100 hPa, recalled, not re-read)
    nonlinearity_pa: float = 3.0  # quadratic error at ±100 hPa from p_trim, Pa (chosen, same order)
    tco_pa_per_c: float = 0.65  # offset temperature coefficient, Pa/°C: LPS22HH "TCO 0.65 Pa/°C"; sign seeded
    tcs_ppm_per_c: float = 10.0  # gain temperature coefficient about p_trim, ppm/°C (chosen)
    hysteresis_pa_per_c: float = 5.0  # error per °C between the die and its lagged stress state, Pa/°C (chosen;
    #                                   Electronics 2023, 12(23) 4819 reports hysteresis, not its size)
    hysteresis_tau_s: float = HOUR  # time constant of that lag (package stress relaxation), s (chosen)
    # --- drifts after calibration
    solder_shift_pa: float = 100.0  # reflow (soldering) offset shift at t = 0, Pa; sign seeded. Chosen: the
    #   ±0.5 hPa accuracy holds only after one-point calibration, which exists to remove this shift; the
    #   successor LPS22DF advertises 0.15 hPa "robustness to soldering stress" as an improvement (DS13316)
    stress_days: tuple[float, ...] = (30.0,)  # listed thermal-stress events (e.g. 100 °C for 2 h), days
    stress_pa: tuple[float, ...] = (160.0,)  # their shift at p_trim right after, Pa; sign seeded. 1.6 hPa:
    #   the drift that Vitolo, Pau et al. (Microprocessors and Microsystems 117, 105183, 2025) recover
    random_stress_per_day: float = 1 / 45  # rate of further, random stress events (a hot car, sun), 1/day (chosen)
    random_stress_max_pa: float = 100.0  # their magnitude, uniform in [1/4, 1] of this, Pa (chosen)
    stress_gain_share: float = 0.3  # share of a stress shift that is a gain change, pivoting at 0 Pa
    #   (Electronics 2023: gain changes); the rest is offset (chosen)
    stress_tau_s: float = 3 * DAY  # recovery time constant, s: "a few minutes ... shift readings for days"
    #   (Electronics 2023); 3 days chosen
    stress_residual: float = 0.1  # share of a stress shift that never recovers (chosen)
    ageing_pa_per_year: float = 10.0  # long-term drift, Pa/year, linear, sign seeded. LPS22DF (DS13316): 0.1
    #   hPa over 1 year (HTOL); the LPS22HH figure was not found here
    # --- output
    noise_rms_pa: float = 0.65  # pressure noise, Pa RMS: LPS22HH "low pressure sensor noise 0.65 Pa", taken as
    #   its low-noise mode (LOW_NOISE_EN = 1, ODR ≤ 75 Hz). White: samples are far apart next to the output filter
    temp_accuracy_c: float = 1.5  # temperature output offset, uniform in ±this, °C (LPS22DF, LPS27HHTW: ±1.5 °C)
    temp_noise_c: float = 0.01  # temperature output noise, °C RMS (chosen: one LSB)
    # --- reference readings
    ref_per_day: float = 4.0  # mean number a day, Poisson at uniform random times (chosen: "a few")
    ref_sigma_pa: float = 10.0  # reference error std, Pa (chosen: a good station barometer, 0.1 hPa)
    ref_resolution_pa: float = 10.0  # reported to 0.1 hPa (0 = not rounded), Pa

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "name":
                continue
            for v in value if isinstance(value, tuple) else (value,):
                _check(f.name, v)
        if len(self.stress_days) != len(self.stress_pa):
            raise ValueError(f"scenario field 'stress_pa': expected {len(self.stress_days)} values, one per "
                             f"stress_days entry, got {len(self.stress_pa)}")


SIGNED = {"temp_mean_c"}  # the only field that may be negative
POSITIVE = {"days", "sample_period_s", "p_mean_pa", "p_trim_pa", "synoptic_tau_s", "temp_weather_tau_s",
            "hysteresis_tau_s", "stress_tau_s"}  # divided by, or a trace would be empty
FRACTIONS = {"stress_gain_share", "stress_residual"}
# The magnitudes of the sensor's flaws: `without_flaws` zeroes them, leaving an ideal 24-bit sensor.
FLAWS = ("factory_offset_sigma_pa", "gain_sigma_ppm", "nonlinearity_pa", "tco_pa_per_c", "tcs_ppm_per_c",
         "hysteresis_pa_per_c", "solder_shift_pa", "stress_pa", "random_stress_per_day", "ageing_pa_per_year",
         "noise_rms_pa", "temp_accuracy_c", "temp_noise_c")


def _check(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"scenario field '{name}': expected a finite number, got {v!r}")
    if name in POSITIVE and v <= 0:
        raise ValueError(f"scenario field '{name}': expected a number > 0, got {v!r}")
    if name not in SIGNED and v < 0:
        raise ValueError(f"scenario field '{name}': expected a number >= 0, got {v!r}")
    if name in FRACTIONS and v > 1:
        raise ValueError(f"scenario field '{name}': expected a number in [0, 1], got {v!r}")


SCENARIOS: dict[str, Scenario] = {
    "outdoor": Scenario(),
    # indoors: heating and air conditioning hold ~21 °C; no sun, so no random stress events (chosen)
    "indoor": Scenario(name="indoor", temp_mean_c=21.0, temp_daily_c=1.0, temp_seasonal_c=1.5, temp_weather_c=0.3,
                       temp_weather_tau_s=DAY, random_stress_per_day=0.0),
}
DEFAULT_SCENARIO = "outdoor"


def scenario(name: str, **overrides: Any) -> Scenario:
    """The preset `name` with fields replaced; ValueError (one line, naming the field) on bad input."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}: expected one of {', '.join(sorted(SCENARIOS))}")
    known = {f.name for f in fields(Scenario)}
    for key in overrides:
        if key not in known:
            raise ValueError(f"unknown scenario field {key!r}: expected a field of onward.calibration.sensor.Scenario")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return replace(SCENARIOS[name], **overrides)


def without_flaws(sc: Scenario, keep: tuple[str, ...] = ()) -> Scenario:
    """`sc` with every flaw magnitude zeroed except those named in `keep`."""
    zero: dict[str, Any] = {f: 0.0 for f in FLAWS if f not in keep}
    if "stress_pa" in zero:
        zero["stress_pa"] = (0.0,) * len(sc.stress_days)
    return replace(sc, **zero)


@dataclass(frozen=True, eq=False)
class Trace:
    """One simulated deployment: sample k is at t_s[k]; ref_pa[j] was read at sample ref_index[j]."""

    scenario: Scenario
    seed: int
    t_s: F64  # time since soldering, s
    p_true_pa: F64  # true pressure, Pa
    temp_true_c: F64  # true (die = ambient) temperature, °C
    p_analog_pa: F64  # the sensor's pressure before quantisation, Pa
    p_counts: NDArray[np.int32]  # PRESS_OUT, 24-bit signed, LSB
    temp_counts: NDArray[np.int16]  # TEMP_OUT, 16-bit signed, LSB
    p_reported_pa: F64  # counts at the nominal 4096 LSB/hPa: the factory-calibration-only reading, Pa
    ref_index: NDArray[np.int64]  # sample index of each reference reading
    ref_pa: F64  # reference readings, Pa (true pressure + the reference's own error, rounded)
    stress_t_s: F64  # thermal-stress event times (listed and random, sorted), s
    stress_pa: F64  # their signed shift at p_trim right after the event, Pa

    @property
    def error_pa(self) -> F64:
        """Factory-only error: reported minus true pressure, Pa."""
        return self.p_reported_pa - self.p_true_pa

    @property
    def temp_reported_c(self) -> F64:
        return self.temp_counts / T_LSB_PER_C

    @property
    def ref_error_pa(self) -> F64:
        """The references' own error: reading minus true pressure, Pa."""
        return self.ref_pa - self.p_true_pa[self.ref_index]


# One Philox stream per concern, so that zeroing one effect does not shift the random numbers of another.
STATIC, WEATHER, NOISE, REFS, STRESS = range(5)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, stream])))


def _lag(x: F64, tau_s: float, dt: float) -> F64:
    """First-order low-pass y' = (x - y)/tau, exact for piecewise-constant x, starting in equilibrium y[0] = x[0]."""
    a = math.exp(-dt / tau_s) if tau_s > 0 else 0.0
    return lfilter([1 - a], [1, -a], x, zi=[a * x[0]])[0]


def _weather(z: F64, sigma: float, tau_s: float, smooth_s: float, dt: float, burn: int) -> F64:
    """An Ornstein-Uhlenbeck process (std sigma, correlation time tau_s) from standard normals z, low-passed by
    smooth_s so that it has no minute-scale jitter, rescaled to std sigma again, the first `burn` samples dropped
    (the low-pass's start-up)."""
    a = math.exp(-dt / tau_s)
    w = z * math.sqrt(1 - a * a)
    w[0] = z[0]  # x[0] from the stationary distribution
    x = lfilter([1.0], [1.0, -a], w)
    # a first-order low-pass keeps tau/(tau + smooth) of an OU process's variance
    return sigma * math.sqrt((tau_s + smooth_s) / tau_s) * _lag(x, smooth_s, dt)[burn:]


def _environment(sc: Scenario, t: F64, rng: np.random.Generator) -> tuple[F64, F64]:
    dt, n = sc.sample_period_s, t.size
    burn = math.ceil(5 * sc.weather_smooth_s / dt)
    z = rng.standard_normal((2, n + burn))
    hour = (t / HOUR) % 24
    day_of_year = sc.start_day_of_year + t / DAY
    p = (sc.p_mean_pa + _weather(z[0], sc.synoptic_sigma_pa, sc.synoptic_tau_s, sc.weather_smooth_s, dt, burn)
         + sc.tide_pa * np.cos(2 * np.pi * (hour - 10) / 12))
    temp = (sc.temp_mean_c + sc.temp_daily_c * np.cos(2 * np.pi * (hour - 15) / 24)
            - sc.temp_seasonal_c * np.cos(2 * np.pi * (day_of_year - sc.coldest_day) / 365.25)
            + _weather(z[1], sc.temp_weather_c, sc.temp_weather_tau_s, sc.weather_smooth_s, dt, burn))
    return p, temp


def _stress_events(sc: Scenario, span_s: float, rng: np.random.Generator) -> tuple[F64, F64]:
    listed_t = np.asarray(sc.stress_days, dtype=np.float64) * DAY
    listed_sign = np.where(rng.random(len(listed_t)) < 0.5, -1.0, 1.0)
    k = rng.poisson(sc.random_stress_per_day * span_s / DAY)
    rand_t = rng.uniform(0.0, span_s, k)
    rand_mag = sc.random_stress_max_pa * rng.uniform(0.25, 1.0, k) * np.where(rng.random(k) < 0.5, -1.0, 1.0)
    times = np.concatenate([listed_t, rand_t])
    shifts = np.concatenate([listed_sign * np.asarray(sc.stress_pa, dtype=np.float64), rand_mag])
    order = np.argsort(times, kind="stable")
    order = order[times[order] < span_s]  # listed events past the end of the trace did not happen in it
    return times[order], shifts[order]


def simulate(sc: Scenario, seed: int) -> Trace:
    """The scenario's truth, the sensor's registers and the reference readings, from `seed` (an int >= 0)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    seed = int(seed)
    dt = sc.sample_period_s
    n = max(1, round(sc.days * DAY / dt))
    t = np.arange(n) * dt
    p_true, temp_true = _environment(sc, t, _rng(seed, WEATHER))

    # The part's static character. Always the same draws in the same order, whatever is zeroed.
    rs = _rng(seed, STATIC)
    z_offset, z_gain = rs.standard_normal(2)
    s_tco, s_tcs, s_solder, s_age = np.where(rs.random(4) < 0.5, -1.0, 1.0)
    temp_offset = sc.temp_accuracy_c * rs.uniform(-1.0, 1.0)

    dp = p_true - sc.p_trim_pa  # factory trimming makes gain errors vanish at p_trim
    dtemp = temp_true - DATASHEET_T_C
    err = (sc.factory_offset_sigma_pa * z_offset + sc.gain_sigma_ppm * 1e-6 * z_gain * dp
           + sc.nonlinearity_pa * (dp / 10000.0) ** 2
           + s_tco * sc.tco_pa_per_c * dtemp + s_tcs * sc.tcs_ppm_per_c * 1e-6 * dtemp * dp
           + s_solder * sc.solder_shift_pa + s_age * sc.ageing_pa_per_year * t / YEAR)
    # Hysteresis: the membrane's package stress follows the temperature with a lag, so warming and cooling
    # through the same temperature leave opposite errors (a rate-dependent loop).
    err = err + sc.hysteresis_pa_per_c * (temp_true - _lag(temp_true, sc.hysteresis_tau_s, dt))

    # Thermal stress: a shift M that decays to residual·M with stress_tau_s. A share of it is a change of
    # sensitivity (error ∝ p, equal to that share of M at p_trim), the rest an offset.
    stress_t, stress_shift = _stress_events(sc, n * dt, _rng(seed, STRESS))
    gain_shape = (1 - sc.stress_gain_share) + sc.stress_gain_share * p_true / sc.p_trim_pa
    for ti, m in zip(stress_t, stress_shift, strict=True):
        since = t - ti
        decay = np.exp(-np.maximum(since, 0.0) / sc.stress_tau_s)
        err = err + np.where(since >= 0, m * (sc.stress_residual + (1 - sc.stress_residual) * decay), 0.0) * gain_shape

    rn = _rng(seed, NOISE)
    z_noise = rn.standard_normal((2, n))
    p_analog = p_true + err + sc.noise_rms_pa * z_noise[0]
    temp_analog = temp_true + temp_offset + sc.temp_noise_c * z_noise[1]
    p_counts = np.clip(np.rint(p_analog / P_PA_PER_LSB), P_MIN, P_MAX).astype(np.int32)
    temp_counts = np.clip(np.rint(temp_analog * T_LSB_PER_C), T_MIN, T_MAX).astype(np.int16)

    rr = _rng(seed, REFS)
    k = rr.poisson(sc.ref_per_day * n * dt / DAY)
    ref_index = np.unique(np.floor(rr.uniform(0.0, n * dt, k) / dt).astype(np.int64).clip(0, n - 1))
    ref_pa = p_true[ref_index] + sc.ref_sigma_pa * rr.standard_normal(ref_index.size)
    if sc.ref_resolution_pa > 0:
        ref_pa = np.rint(ref_pa / sc.ref_resolution_pa) * sc.ref_resolution_pa

    return Trace(scenario=sc, seed=seed, t_s=t, p_true_pa=p_true, temp_true_c=temp_true, p_analog_pa=p_analog,
                 p_counts=p_counts, temp_counts=temp_counts, p_reported_pa=p_counts * P_PA_PER_LSB,
                 ref_index=ref_index, ref_pa=ref_pa, stress_t_s=stress_t, stress_pa=stress_shift)
