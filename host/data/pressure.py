"""The simulated barometer's reference readings as a regression set (onward.calibration): what the calibration
model learns from, as `onward verify` and the rules' tests see it.

One sample per reference reading of the spec's scenario (`calibration.scenario`, default outdoor), simulated
with the spec's seed: the inputs the model
sees at that sample (`onward.calibration.features.inputs`: 1, swing, warming) and the correction that makes the
reading equal the reference (Pa). The targets are scaled by the fixed CORRECTION_SCALE, not by their own range, so
that a prediction means the same correction in every run: targets in Pa are restored with y_min, y_max = -+CS.
`onward calibrate` streams the whole trace instead (every sample inferred, these readings trained on)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from onward.calibration.features import CORRECTION_SCALE, correction_targets, inputs
from onward.calibration.sensor import DEFAULT_SCENARIO, scenario, simulate


def reference_readings(seed: int, name: str = DEFAULT_SCENARIO, days: float = 0.0,
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(x, y): the inputs at every reference reading and the correction there in Pa, in time order. days: 0 for
    the preset's."""
    tr = simulate(scenario(name, **({"days": days} if days else {})), seed)
    return inputs(tr)[tr.ref_index], correction_targets(tr) * CORRECTION_SCALE
