"""One sensor life, every method: the baselines and onward's learned correction side by side, scored alike.

`lifetime` simulates the life a calibration spec describes; `compare` corrects it with factory only, one-point
recalibration, RLS on the model's features and the spec's model (its fixed-point reference, which the device
equals bit for bit), and `rows` scores each (onward.calibration.metrics)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from onward.calibration import baselines, loop, metrics
from onward.calibration.features import features
from onward.calibration.sensor import Trace, scenario, simulate
from onward.model import InitialModel
from onward.spec import Spec

F64 = NDArray[np.float64]


def lifetime(spec: Spec, seed: int | None = None) -> Trace:
    """The sensor's life of the spec's [calibration] (scenario, days), simulated with `seed` (default the spec's)."""
    c = spec.calibration
    return simulate(scenario(c.scenario, **({"days": c.days} if c.days else {})), spec.seed if seed is None else seed)


def baseline_series(tr: Trace) -> dict[str, F64]:
    return {"factory": baselines.factory(tr), "one-point": baselines.one_point(tr),
            "RLS": baselines.rls(tr, features(tr))}


@dataclass(frozen=True)
class Row:
    method: str
    within: float  # share of samples within ±50 Pa after the warm-up
    rms: float  # Pa
    worst: float  # Pa
    recovery: int | None  # reference readings to be back in the band after the largest stress event
    references: int  # reference readings the method used

    def as_dict(self) -> dict[str, object]:
        return {"method": self.method, "within": self.within, "rms": self.rms, "worst": self.worst,
                "recovery": self.recovery, "references": self.references}


def largest_stress(tr: Trace) -> float:
    """The time (s) of the largest stress event, or +inf when there is none."""
    return float(tr.stress_t_s[np.argmax(np.abs(tr.stress_pa))]) if tr.stress_t_s.size else float("inf")


def score(tr: Trace, method: str, series: F64) -> Row:
    s = metrics.scores(tr, series)
    used = 0 if method == "factory" else int(tr.ref_index.size)
    return Row(method, s["within"], s["rms"], s["worst"], metrics.recovery(tr, series, largest_stress(tr)), used)


def compare(model: InitialModel, tr: Trace, label: str = "onward") -> dict[str, F64]:
    """Every method's corrected pressure (Pa) over the life: the baselines, then the model's reference as `label`."""
    lf = loop.life(model, tr, model.spec.calibration.steps_per_reference)
    return {**baseline_series(tr), label: loop.corrected(model, tr, loop.run_reference(model, lf))}


def rows(tr: Trace, series: dict[str, F64]) -> list[Row]:
    return [score(tr, method, s) for method, s in series.items()]
