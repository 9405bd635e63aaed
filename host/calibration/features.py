"""What a calibration model sees at each sample: the sensor's own registers, scaled, and what a user would add.

Every feature is computed from the registers alone (no truth, no reference), in integers, as the
microcontroller beside the sensor computes it (`features_q`; its C twin is firmware/src/calibration_features.c):

    swing    (T − T lagged by 1 day) / 10 °C     the day's temperature excursion (offset and gain tempcos)
    warming  (T − T lagged by 1 h) / 5 °C        how fast the temperature moved (thermal hysteresis)

The lag is a first-order IIR on the temperature register (0.01 °C counts) held in Q8, its coefficient
1 − exp(−dt/τ) in Q16, each step rounded half up; it starts settled at the first sample. The features are Q12
(FEATURE_FRAC), the difference times a Q24 multiplier, rounded half up and saturated to int16. `features` is the
same numbers as floats (/ 2**12), for the float baselines and the data set.

`inputs` puts a constant 1 in front: the bias input of the rules whose layers have no bias.

Why these and not the raw reading and temperature (docs/calibration.md, measured: a little better): the error
that matters is a slowly varying offset (soldering, stress, ageing), which the model's bias follows from the
reference readings. A weight on a slow input (the reading, which moves with the weather; the temperature, which
moves with the season) is confounded with that offset and carries weather or season into the correction between
references; near sea level a gain error pivoting at the trim pressure is indistinguishable from an offset anyway.
High-passed temperature keeps what an offset cannot follow: the daily TCO and hysteresis ripple.

The correction a model learns is in Pa, scaled by CORRECTION_SCALE so that ±5 hPa maps to ±1."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from onward.calibration.sensor import T_LSB_PER_C, Trace

F64 = NDArray[np.float64]
NAMES = ("swing", "warming")
INPUTS = ("one", *NAMES)
SWING_TAU_S, SWING_SPAN_C = 86400.0, 10.0
WARMING_TAU_S, WARMING_SPAN_C = 3600.0, 5.0
CORRECTION_SCALE = 500.0  # Pa per unit of the model's output
STATE_FRAC, COEFF_FRAC, MULT_FRAC, FEATURE_FRAC = 8, 16, 24, 12  # the integer filters' formats (see above)


def filter_params(dt: float) -> tuple[int, int, int, int]:
    """(day coefficient, hour coefficient, swing multiplier, warming multiplier): the integers the filters use for a
    sample period of dt seconds (the C's `params`)."""
    def coefficient(tau_s: float) -> int:
        return round((1.0 - math.exp(-dt / tau_s)) * 2**COEFF_FRAC)

    def multiplier(span_c: float) -> int:  # Q8 counts difference -> Q12 feature, as a Q24 multiplier
        return round(2**FEATURE_FRAC / (2**STATE_FRAC * T_LSB_PER_C * span_c) * 2**MULT_FRAC)

    return coefficient(SWING_TAU_S), coefficient(WARMING_TAU_S), multiplier(SWING_SPAN_C), multiplier(WARMING_SPAN_C)


def features_q(temp_counts: NDArray[np.int64], dt: float) -> NDArray[np.int64]:
    """(samples, len(NAMES)) int16 features in Q12 from the temperature register, sample after sample, exactly as
    onw_calib_features computes them."""
    a_day, a_hour, m_swing, m_warming = filter_params(dt)
    t8 = np.asarray(temp_counts, dtype=np.int64) << STATE_FRAC
    day = hour = int(t8[0])
    out = np.empty((t8.size, 2), dtype=np.int64)
    half_c, half_m = 1 << (COEFF_FRAC - 1), 1 << (MULT_FRAC - 1)
    for k, x in enumerate(t8.tolist()):
        day += ((x - day) * a_day + half_c) >> COEFF_FRAC
        hour += ((x - hour) * a_hour + half_c) >> COEFF_FRAC
        out[k, 0] = ((x - day) * m_swing + half_m) >> MULT_FRAC
        out[k, 1] = ((x - hour) * m_warming + half_m) >> MULT_FRAC
    return np.clip(out, -32768, 32767)


def features(tr: Trace) -> F64:
    """(samples, len(NAMES)): the NAMES features of every sample, from the registers only: features_q as floats."""
    return features_q(tr.temp_counts, tr.scenario.sample_period_s) / 2.0**FEATURE_FRAC


def inputs(tr: Trace) -> F64:
    """(samples, len(INPUTS)): the model's inputs, the bias input 1 then the features."""
    f = features(tr)
    return np.concatenate([np.ones((f.shape[0], 1)), f], axis=1)


def correction_targets(tr: Trace) -> F64:
    """At each reference reading, the correction that makes the reading equal the reference, scaled."""
    return (tr.ref_pa - tr.p_reported_pa[tr.ref_index]) / CORRECTION_SCALE
