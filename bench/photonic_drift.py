"""Phase drift on an emulated photonic chip: a frozen model, periodic re-training and continuous forward-only
learning, on the same drift realisation (onward.photonic.drift; docs/photonic_drift.md has the measured table).

    python3 bench/photonic_drift.py [SPEC] [--queries 1000000] [--sigma 5e-4] [--seeds 1 2 3] [--workers 2]
                                    [--online spsa:1:2] [--plot docs/photonic_drift.png] [--json]
    python3 bench/photonic_drift.py --validation --seeds 11 12 --grid spsa:0.5:2 spsa:1:2 spsa:2:2

Each seed is a chip (its static flaws) and a drift realisation. Prints the command and a Markdown table per arm:
test accuracy at the start, at the end, the lowest, and the mean over time (the checkpoints), mean ± sd over seeds.
`--validation` scores on a fifth of the training split instead (the test set is not read) and compares online
learners (KIND:LR:DELTA, DAC LSB) against the frozen arm: the hyper-parameter search."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from onward.paths import EXAMPLES
from onward.photonic.drift import ARMS, ArmRun, DriftConfig, Learner, run_arm, warm_up
from onward.photonic.experiment import PhotonicSpec, Twin, load_photonic_spec, train_twin


class Inline(Executor):
    """Runs each job when submitted (--workers 1: no processes)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:  # type: ignore[override]
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def learner(text: str, batch: int) -> Learner:
    kind, lr, delta = text.split(":")
    return Learner(kind=kind, lr=float(lr), delta=float(delta), batch=batch, directions=2 if kind != "spsa" else 1)


def run(spec: PhotonicSpec, twin: Twin, seeds: list[int], jobs: list[tuple[str, str, DriftConfig]],
        base: DriftConfig, workers: int) -> dict[str, list[ArmRun]]:
    """Warm up every seed's chip once, then every (label, arm, config) job on every seed; runs by label."""
    pool: Executor = ProcessPoolExecutor(workers) if workers > 1 else Inline()
    with pool:
        starts = dict(zip(seeds, [f.result() for f in [pool.submit(warm_up, spec, twin, s, base) for s in seeds]],
                          strict=True))
        futures = [(label, pool.submit(run_arm, arm, spec, twin, seed, starts[seed], config))
                   for label, arm, config in jobs for seed in seeds]
        runs: dict[str, list[ArmRun]] = {}
        for label, future in tqdm(futures, desc="drift", file=sys.stderr):
            runs.setdefault(label, []).append(future.result())
    return runs


def stat(values: list[float]) -> str:
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{100 * float(np.mean(values)):.1f} ± {100 * sd:.1f} %"


def table(runs: dict[str, list[ArmRun]]) -> str:
    lines = ["| arm | training queries | start | end | lowest | mean over time | end − start |",
             "|---|---|---|---|---|---|---|"]
    for label, rs in runs.items():
        lines.append(f"| {label} | {int(np.mean([r.training_queries for r in rs]))} | {stat([r.start for r in rs])} "
                     f"| {stat([r.end for r in rs])} | {stat([r.low for r in rs])} | {stat([r.mean for r in rs])} "
                     f"| {stat([r.end - r.start for r in rs])} |")
    return "\n".join(lines)


def as_json(runs: dict[str, list[ArmRun]], config: DriftConfig) -> dict[str, Any]:
    return {"sigma": config.sigma, "queries": config.queries, "every": config.every,
            "arms": {label: [{"seed": r.seed, "training_queries": r.training_queries, "clock": r.curve.queries,
                              "accuracy": r.curve.accuracy, "drift_rms": r.drift_rms} for r in rs]
                     for label, rs in runs.items()}}


def plot(runs: dict[str, list[ArmRun]], config: DriftConfig, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=[3, 1])
    for (label, rs), color in zip(runs.items(), ("tab:red", "tab:orange", "tab:blue", "tab:green", "tab:purple"),
                                  strict=False):
        clock = np.array(rs[0].curve.queries)
        for r in rs:
            ax.plot(clock, 100 * np.array(r.curve.accuracy), color=color, lw=0.6, alpha=0.3)
        ax.plot(clock, 100 * np.mean([r.curve.accuracy for r in rs], axis=0), color=color, lw=2,
                label=f"{label} (mean of {len(rs)})")
    for r in next(iter(runs.values())):
        bx.plot(r.curve.queries, r.drift_rms, color="gray", lw=1)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    bx.set_ylabel("drift RMS (rad)")
    bx.set_xlabel(f"chip clock (queries); checkpoints every {config.every}")
    bx.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", nargs="?", type=Path, default=EXAMPLES / "photonic" / "iris.toml")
    parser.add_argument("--queries", type=int, default=1_000_000, help="clock ticks of the drifting run")
    parser.add_argument("--every", type=int, default=10_000, help="a checkpoint every this many ticks")
    parser.add_argument("--sigma", type=float, default=DriftConfig.sigma, help="drift, rad per shifter per tick")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--warmup", type=int, default=48_000, help="drift-free training queries first")
    parser.add_argument("--period", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--online", default="spsa:1:2", help="the online learner, KIND:LR:DELTA (DAC LSB)")
    parser.add_argument("--validation", action="store_true", help="score on a validation split; compare --grid")
    parser.add_argument("--grid", nargs="+", default=["spsa:0.5:2", "spsa:1:2", "spsa:2:2", "directional:1:2"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    spec = load_photonic_spec(args.spec)
    twin = train_twin(spec, validation=args.validation)
    retrain = Learner(lr=spec.step, delta=spec.perturbation, batch=spec.batch)
    base = DriftConfig(sigma=args.sigma, queries=args.queries, every=args.every, warmup=args.warmup,
                       period=args.period, burst=args.burst, retrain=retrain,
                       online=learner(args.online, spec.batch))
    base.check()
    if args.validation:
        jobs = [("frozen", "frozen", base)] + [(f"online {g}", "online", replace(base, online=learner(g, spec.batch)))
                                               for g in args.grid]
    else:
        jobs = [(arm, arm, base) for arm in ARMS]
    runs = run(spec, twin, args.seeds, jobs, base, args.workers)
    split = "validation split" if args.validation else "test set"
    title = (f"{spec.name}: {spec.modes}-mode chip, {spec.preset} flaws + drift σ = {args.sigma:g} rad/query, "
             f"{split}, seeds {' '.join(map(str, args.seeds))}")
    if args.plot:
        plot(runs, base, title, args.plot)
    if args.json:
        print(json.dumps(as_json(runs, base)))
        return 0
    print(f"$ python3 bench/photonic_drift.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"\n{title}; online = {args.online}, periodic = {args.burst} of every {args.period} ticks re-training "
          f"(spsa:{spec.step:g}:{spec.perturbation:g}); accuracy mean ± sd over seeds\n")
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
