"""What a calibration model sees at each sample: the sensor's own registers, scaled, and what a user would add.

Every feature is computable on the microcontroller from the registers alone (no truth, no reference), with a
first-order filter's state at most, so that the device can compute the same numbers in fixed point:

    swing    (T − T lagged by 1 day) / 10 °C     the day's temperature excursion (offset and gain tempcos)
    warming  (T − T lagged by 1 h) / 5 °C        how fast the temperature moved (thermal hysteresis)

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
from scipy.signal import lfilter

from onward.calibration.sensor import T_LSB_PER_C, Trace

F64 = NDArray[np.float64]
NAMES = ("swing", "warming")
INPUTS = ("one", *NAMES)
SWING_TAU_S, SWING_SPAN_C = 86400.0, 10.0
WARMING_TAU_S, WARMING_SPAN_C = 3600.0, 5.0
CORRECTION_SCALE = 500.0  # Pa per unit of the model's output


def lagged(x: F64, tau_s: float, dt: float) -> F64:
    """A first-order low-pass (what an IIR on the device computes), starting settled at x[0]."""
    a = math.exp(-dt / tau_s)
    return lfilter([1 - a], [1, -a], x, zi=[a * x[0]])[0]


def features(tr: Trace) -> F64:
    """(samples, len(NAMES)): the NAMES features of every sample, from the registers only."""
    t = (tr.temp_counts / T_LSB_PER_C).astype(np.float64)
    dt = tr.scenario.sample_period_s
    swing = (t - lagged(t, SWING_TAU_S, dt)) / SWING_SPAN_C
    warming = (t - lagged(t, WARMING_TAU_S, dt)) / WARMING_SPAN_C
    return np.stack([swing, warming], axis=1)


def inputs(tr: Trace) -> F64:
    """(samples, len(INPUTS)): the model's inputs, the bias input 1 then the features."""
    f = features(tr)
    return np.concatenate([np.ones((f.shape[0], 1)), f], axis=1)


def correction_targets(tr: Trace) -> F64:
    """At each reference reading, the correction that makes the reading equal the reference, scaled."""
    return (tr.ref_pa - tr.p_reported_pa[tr.ref_index]) / CORRECTION_SCALE
