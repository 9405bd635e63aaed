"""What a calibration model sees at each sample: the sensor's own registers, scaled, and what a user would add.

Every feature is computable on the microcontroller from the registers alone (no truth, no reference), with a
first-order filter's state at most, so that the device can compute the same numbers in fixed point:

    pressure     (reported − 1000 hPa) / 100 hPa        the reading itself (for gain and nonlinearity errors)
    temperature  (T − 25 °C) / 25 °C                     the die temperature (offset and gain tempcos)
    warming      (T − T lagged by 1 h) / 5 °C            how fast the temperature moved (thermal hysteresis)

The correction a model learns is in Pa, scaled by CORRECTION_SCALE so that ±5 hPa maps to ±1."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from onward.calibration.sensor import P_PA_PER_LSB, T_LSB_PER_C, Trace

F64 = NDArray[np.float64]
NAMES = ("pressure", "temperature", "warming")
P_CENTRE_PA, P_SPAN_PA = 100000.0, 10000.0
T_CENTRE_C, T_SPAN_C = 25.0, 25.0
WARMING_TAU_S, WARMING_SPAN_C = 3600.0, 5.0
CORRECTION_SCALE = 500.0  # Pa per unit of the model's output


def lagged(x: F64, tau_s: float, dt: float) -> F64:
    """A first-order low-pass (what an IIR on the device computes), starting settled at x[0]."""
    a = math.exp(-dt / tau_s)
    return lfilter([1 - a], [1, -a], x, zi=[a * x[0]])[0]


def features(tr: Trace) -> F64:
    """(samples, 3): the NAMES features of every sample, from the registers only."""
    p = tr.p_counts * P_PA_PER_LSB
    t = tr.temp_counts / T_LSB_PER_C
    warming = (t - lagged(t.astype(np.float64), WARMING_TAU_S, tr.scenario.sample_period_s)) / WARMING_SPAN_C
    return np.stack([(p - P_CENTRE_PA) / P_SPAN_PA, (t - T_CENTRE_C) / T_SPAN_C, warming], axis=1)
