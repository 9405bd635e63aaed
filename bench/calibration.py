"""On-device sensor calibration on the simulated barometer (onward.calibration): onward's learned corrections
against factory only, one-point recalibration and RLS, per seed, and the hyper-parameter search behind them.

    python3 bench/calibration.py [--specs SPEC...] [--seeds 0 1 2 3] [--plot PNG] [--json]
    python3 bench/calibration.py --tune [--seeds 100 101 102 103] [--json]

The first prints the command and Markdown tables: per seed and method, the share of samples within ±50 Pa after
20 reference readings, the RMS and worst error, the reference readings needed to be back within ±50 Pa after the
largest stress event; then the mean ± sd over the seeds. onward's rows are the fixed-point reference, which the
device equals bit for bit (onward calibrate SPEC --target T checks it). --plot draws the first seed's life.

--tune searches each example spec's learning rate and steps per reference reading (FFzero's directions; PEPITA
with a hidden layer too), and RLS's forgetting factor, on the validation seeds 100-103, never on the seeds
reported: mean RMS error per setting, the lowest first. The examples hold the chosen values."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from onward.calibration import baselines, compare, metrics
from onward.calibration.features import features
from onward.data import load_dataset
from onward.model import InitialModel, init_model
from onward.spec import Spec, load_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = [ROOT / "examples" / "pressure_calibration.toml", ROOT / "examples" / "pressure_calibration_ffzero.toml"]
VALIDATION_SEEDS = [100, 101, 102, 103]
GRIDS = {  # per rule: (learning rates, steps per reference, FFzero's directions)
    "pepita": ([0.1, 0.15, 0.25, 0.4], [1, 3, 5], [0]),
    "ffzero": ([0.03, 0.1, 0.3], [5, 10, 20], [4, 8, 16]),
}
RLS_GRID = [0.95, 0.9, 0.8, 0.7]
# PEPITA with a hidden ReLU layer (its random weights must start away from zero: init_scale > 0), 5 steps a reading
HIDDEN_GRID = ([(8,), (16,)], [0.1, 0.5], [0.1, 0.25])  # widths, init_scale, learning rates


def label(spec: Spec) -> str:
    return f"onward {spec.rule.name}"


def model_for(spec: Spec, seed: int) -> InitialModel:
    spec = replace(spec, seed=seed)
    return init_model(spec, load_dataset(spec))


def run(specs: list[Spec], seeds: list[int], plot: str | None) -> list[dict[str, object]]:
    table: list[dict[str, object]] = []
    for seed in tqdm(seeds, desc="seeds", disable=None):
        tr = compare.lifetime(specs[0], seed)
        series = compare.baseline_series(tr)
        for spec in specs:
            series |= {label(spec): compare.compare(model_for(spec, seed), tr, label(spec))[label(spec)]}
        table += [{"seed": seed, **row.as_dict()} for row in compare.rows(tr, series)]
        if plot and seed == seeds[0]:
            from onward.calibration.plot import plot_life

            plot_life(tr, series, plot, title=f"scenario {specs[0].calibration.scenario!r}, seed {seed}")
    return table


def tune(specs: list[Spec], seeds: list[int]) -> list[dict[str, object]]:
    lives = [compare.lifetime(specs[0], seed) for seed in seeds]
    out: list[dict[str, object]] = []
    for lam in RLS_GRID:
        rms = [metrics.scores(tr, baselines.rls(tr, features(tr), lam))["rms"] for tr in lives]
        out.append({"method": "RLS", "setting": f"forgetting {lam}", "rms": float(np.mean(rms))})
    for spec in specs:
        lrs, steps, directions = GRIDS[spec.rule.name]
        grid = list(itertools.product(lrs, steps, directions))
        for lr, k, d in tqdm(grid, desc=spec.rule.name, disable=None):
            options = spec.rule.options if d == 0 else replace(spec.rule.options, directions=d)  # type: ignore[call-arg]
            trial = replace(spec, rule=replace(spec.rule, learning_rate=lr, options=options),
                            calibration=replace(spec.calibration, steps_per_reference=k))
            setting = f"lr {lr}, {k} steps per reading" + (f", {d} directions" if d else "")
            out.append({"method": label(spec), "setting": setting, **_mean_scores(trial, seeds, lives)})
        if spec.rule.name == "pepita":
            for hidden, scale, lr in tqdm(list(itertools.product(*HIDDEN_GRID)), desc="pepita hidden", disable=None):
                options = replace(spec.rule.options, init_scale=scale)  # type: ignore[call-arg]
                trial = replace(spec, hidden=hidden, rule=replace(spec.rule, learning_rate=lr, options=options),
                                calibration=replace(spec.calibration, steps_per_reference=5))
                out.append({"method": f"{label(spec)}, hidden {list(hidden)}",
                            "setting": f"lr {lr}, 5 steps per reading, init_scale {scale}",
                            **_mean_scores(trial, seeds, lives)})
    return sorted(out, key=lambda r: (str(r["method"]), float(r["rms"])))  # type: ignore[arg-type]


def _mean_scores(spec: Spec, seeds: list[int], lives: list) -> dict[str, float]:
    """The spec's mean RMS error and share within ±50 Pa over the lives (one per seed)."""
    rows = [compare.score(tr, "x", compare.compare(model_for(spec, seed), tr)["onward"])
            for seed, tr in zip(seeds, lives, strict=True)]
    return {"rms": float(np.mean([r.rms for r in rows])), "within": float(np.mean([r.within for r in rows]))}


def print_runs(table: list[dict[str, object]]) -> None:
    print("| seed | method | within ±50 Pa | RMS error | worst error | readings to recover from the largest stress |")
    print("|---|---|---|---|---|---|")
    for r in table:
        rec = "never" if r["recovery"] is None else r["recovery"]
        print(f"| {r['seed']} | {r['method']} | {100 * float(r['within']):.1f} % | {float(r['rms']):.1f} Pa "  # type: ignore[arg-type]
              f"| {float(r['worst']):.1f} Pa | {rec} |")  # type: ignore[arg-type]
    seeds = sorted({r["seed"] for r in table})  # type: ignore[type-var]
    print(f"\nmean ± sd over seeds {', '.join(map(str, seeds))}:\n")
    print("| method | within ±50 Pa | RMS error | worst error | readings to recover (each seed) |")
    print("|---|---|---|---|---|")
    for method in dict.fromkeys(str(r["method"]) for r in table):
        rs = [r for r in table if r["method"] == method]
        w = np.array([float(r["within"]) for r in rs]) * 100  # type: ignore[arg-type]
        e = np.array([float(r["rms"]) for r in rs])  # type: ignore[arg-type]
        worst = np.array([float(r["worst"]) for r in rs])  # type: ignore[arg-type]
        rec = ", ".join("never" if r["recovery"] is None else str(r["recovery"]) for r in rs)
        print(f"| {method} | {w.mean():.1f} ± {w.std():.1f} % | {e.mean():.1f} ± {e.std():.1f} Pa "
              f"| {worst.mean():.0f} Pa | {rec} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", nargs="+", type=Path, default=SPECS)
    ap.add_argument("--seeds", type=int, nargs="+")
    ap.add_argument("--tune", action="store_true", help="search the hyper-parameters on the validation seeds")
    ap.add_argument("--plot", help="PNG of the first seed's life: every method's error over time")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    specs = [load_spec(p) for p in args.specs]
    if args.tune:
        table = tune(specs, args.seeds or VALIDATION_SEEDS)
    else:
        table = run(specs, args.seeds or [0, 1, 2, 3], args.plot)
    if args.json:
        print(json.dumps(table, indent=1))
        return 0
    print("$ python3 " + " ".join(sys.argv) + "\n")
    if args.tune:
        print("| method | setting | mean RMS error | mean within ±50 Pa |\n|---|---|---|---|")
        for r in table:
            within = f"{100 * float(r['within']):.1f} %" if "within" in r else ""  # type: ignore[arg-type]
            print(f"| {r['method']} | {r['setting']} | {float(r['rms']):.2f} Pa | {within} |")  # type: ignore[arg-type]
    else:
        print_runs(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
