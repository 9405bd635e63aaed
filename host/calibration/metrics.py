"""How good a corrected pressure series is against the truth: the issue's measures.

- within: the share of samples within ±50 Pa (the ±0.5 hPa band), after a warm-up of `warmup` reference readings;
- rms, worst: the RMS and largest error (Pa) after the warm-up;
- recovery: after a stress event, how many reference readings pass before the corrected reading is back in the band
  (every sample between that reading and the next within ±50 Pa)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from onward.calibration.sensor import Trace

F64 = NDArray[np.float64]
BAND_PA = 50.0
WARMUP = 20  # reference readings before the scores count (the issue allows at most 20)


def scores(tr: Trace, corrected: F64, warmup: int = WARMUP) -> dict[str, float]:
    start = int(tr.ref_index[min(warmup, tr.ref_index.size - 1)]) if tr.ref_index.size else 0
    err = corrected[start:] - tr.p_true_pa[start:]
    return {"within": float(np.mean(np.abs(err) <= BAND_PA)), "rms": float(np.sqrt(np.mean(err**2))),
            "worst": float(np.max(np.abs(err)))}


def recovery(tr: Trace, corrected: F64, event_s: float) -> int | None:
    """Reference readings after the event until the error stays in the band up to the next reading (None: never)."""
    after = np.flatnonzero(tr.t_s[tr.ref_index] >= event_s)
    err = np.abs(corrected - tr.p_true_pa)
    for n, j in enumerate(after):
        stop = tr.ref_index[j + 1] if j + 1 < tr.ref_index.size else tr.t_s.size
        if np.all(err[tr.ref_index[j]:stop] <= BAND_PA):
            return n + 1
    return None
