"""The corrections a learned calibration must beat, on the simulated barometer (onward.calibration): factory only,
one-point recalibration at each reference reading, and recursive least squares on the device's features, per seed.

    python3 bench/calibration_baselines.py [--scenario outdoor|indoor] [--seeds 0 1 2 3] [--json]

Prints the command and a Markdown table: share of samples within ±50 Pa after 20 reference readings, RMS and worst
error, and the reference readings needed to be back within ±50 Pa after the largest stress event."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from onward.calibration import baselines, metrics
from onward.calibration.features import features
from onward.calibration.sensor import DEFAULT_SCENARIO, SCENARIOS, scenario, simulate


def rows(name: str, seeds: list[int]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for seed in seeds:
        tr = simulate(scenario(name), seed)
        event = float(tr.stress_t_s[np.argmax(np.abs(tr.stress_pa))]) if tr.stress_t_s.size else float("inf")
        for method, corrected in (("factory", baselines.factory(tr)), ("one-point", baselines.one_point(tr)),
                                  ("RLS", baselines.rls(tr, features(tr)))):
            out.append({"seed": seed, "method": method, **metrics.scores(tr, corrected),
                        "recovery": metrics.recovery(tr, corrected, event)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=DEFAULT_SCENARIO, choices=sorted(SCENARIOS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    table = rows(args.scenario, args.seeds)
    if args.json:
        print(json.dumps(table, indent=1))
        return 0
    print("$ python3 " + " ".join(sys.argv) + "\n")
    print("| seed | method | within ±50 Pa | RMS error | worst error | readings to recover from the largest stress |")
    print("|---|---|---|---|---|---|")
    for r in table:
        rec = "never" if r["recovery"] is None else r["recovery"]
        print(f"| {r['seed']} | {r['method']} | {100 * r['within']:.1f} % | {r['rms']:.1f} Pa | {r['worst']:.1f} Pa "
              f"| {rec} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
