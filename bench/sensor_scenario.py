"""The simulated barometer's life without any correction: how far the factory-calibration-only reading
(onward.calibration.sensor) is from the truth, over one scenario and seed.

    python3 bench/sensor_scenario.py [--scenario indoor|outdoor] [--seed N] [--days D]
                                     [--plot docs/calibration_scenario.png]

Prints the command and a Markdown table (days, samples, reference readings, stress events, share of samples within
±50 Pa, RMS and worst error). With --plot, writes a PNG: the error over time with the ±50 Pa band, the reference
readings and the stress events, and the true temperature below it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from onward.calibration.sensor import DAY, DEFAULT_SCENARIO, SCENARIOS, Trace, scenario, simulate

BAND_PA = 50.0  # ±0.5 hPa: the accuracy the calibration must reach


def summary(tr: Trace) -> dict[str, float]:
    err = tr.error_pa
    return {"days": tr.scenario.days, "samples": err.size, "refs": tr.ref_index.size,
            "stress": tr.stress_t_s.size, "within": float(np.mean(np.abs(err) <= BAND_PA)),
            "rms": float(np.sqrt(np.mean(err**2))), "worst": float(np.max(np.abs(err)))}


def plot(tr: Trace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = tr.t_s / DAY
    fig, (ax, ax_t) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, height_ratios=[2.2, 1])
    ax.axhspan(-BAND_PA, BAND_PA, color="tab:green", alpha=0.15, lw=0, label="±50 Pa")
    ax.plot(days, tr.error_pa, lw=0.6, color="tab:blue", label="factory calibration only: reported − true")
    ref_days = days[tr.ref_index]
    # What the device can observe at a reference reading: its own reading minus the reference.
    ax.plot(ref_days, tr.p_reported_pa[tr.ref_index] - tr.ref_pa, ".", ms=3, color="tab:orange",
            label="reported − reference, at each reference reading")
    ax.plot(ref_days, tr.ref_error_pa, ".", ms=2, color="0.4", label="reference's own error: reference − true")
    for i, (ts, shift) in enumerate(zip(tr.stress_t_s, tr.stress_pa, strict=True)):
        ax.axvline(ts / DAY, color="tab:red", lw=0.9, ls="--", label="thermal-stress event" if i == 0 else None)
        ax.annotate(f"{shift / 100:+.2f} hPa", (ts / DAY, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(2, -10), textcoords="offset points", fontsize=7, color="tab:red")
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_ylabel("pressure error (Pa)")
    fig.suptitle(f"Simulated LPS22HH, scenario '{tr.scenario.name}', seed {tr.seed}: the uncorrected reading")
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), fontsize=7, ncol=3, frameon=False)
    ax.grid(alpha=0.3)
    ax_t.plot(days, tr.temp_true_c, lw=0.6, color="tab:purple")
    ax_t.set_ylabel("true temperature (°C)")
    ax_t.set_xlabel("days since soldering")
    ax_t.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default=DEFAULT_SCENARIO)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=float, default=None, help="override the scenario's length")
    parser.add_argument("--plot", type=Path, default=None, help="write the PNG here")
    args = parser.parse_args()
    overrides = {} if args.days is None else {"days": args.days}
    try:
        tr = simulate(scenario(args.scenario, **overrides), args.seed)
    except ValueError as e:
        parser.error(str(e))
    s = summary(tr)
    print(f"$ python3 bench/sensor_scenario.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"\nscenario '{args.scenario}', seed {args.seed}: factory-calibration-only reading vs truth\n")
    print("| days | samples | reference readings | stress events | within ±50 Pa | RMS error | worst error |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {s['days']:g} | {s['samples']} | {s['refs']} | {s['stress']} | {100 * s['within']:.1f} % "
          f"| {s['rms']:.1f} Pa | {s['worst']:.1f} Pa |")
    if args.plot:
        plot(tr, args.plot)
        print(f"\nwrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
