"""The photonic chip's controller (rule `photonic`, examples/photonic_iris.toml) on Iris: its hyper-parameters chosen
on a validation split, then its test accuracy in float, in fixed point and on the device, over seeds.

    python3 bench/photonic_controller.py --tune [--seeds 0 1 2] [--json]
    python3 bench/photonic_controller.py [--target qemu-m4] [--seeds 0 1 2] [--json]

A seed is the spec's seed (the data split, the initial codes, the directions) and another chip (chip_seed = seed + 1:
other static flaws). Drift is off here (the drift run is `onward photonic SPEC --target T`).

--tune trains the fixed-point reference on four fifths of the training split and scores it on the last fifth (never
the test set), for every learning rate, number of directions, schedule and initial codes (random, or the digital
twin deployed) of the grid; the mean over the seeds ranks them. The example holds the chosen values.

The default run prints, per seed and as mean ± sd, the test accuracy of the float reference (the same estimator
with real-valued codes), of the fixed-point reference and of the device, which `onward verify` holds bit-exact to
the fixed-point reference along the whole run (its accuracy is computed from its own outputs), with the chip queries
each training run took."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from onward.data import Dataset, load_dataset
from onward.model import device_inputs, init_model
from onward.reference import apply_step, make_fixed, make_float, training_stream
from onward.spec import Spec, load_spec

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "photonic_iris.toml"
GRID = {"learning_rate": [0.0005, 0.001, 0.002, 0.004], "directions": [1, 2],
        "schedule": ["constant", "decay"],  # decay: x0.3 at 2/3 of the epochs
        "init": ["random", "twin"]}


def seeded(spec: Spec, seed: int) -> Spec:
    return replace(spec, seed=seed, table=replace(spec.table, chip_seed=seed + 1, drift=0.0))


def configured(spec: Spec, lr: float, directions: int, schedule: str, init: str) -> Spec:
    decay = (spec.rule.epochs * 2 // 3,) if schedule == "decay" else ()
    return replace(spec, rule=replace(spec.rule, learning_rate=lr, lr_decay=0.3, lr_decay_epochs=decay,
                                      options=replace(spec.rule.options, directions=directions, init=init)))


def validation_split(data: Dataset, seed: int) -> Dataset:
    x_tr, x_va, y_tr, y_va = train_test_split(data.x_train, data.y_train, test_size=0.2, stratify=data.y_train,
                                              random_state=seed)
    return replace(data, x_train=x_tr, y_train=y_tr, x_test=x_va, y_test=y_va)


def fixed_score(spec: Spec, data: Dataset) -> tuple[float, int]:
    """The fixed-point reference trained for the spec's epochs: its score on data's test part, its training queries."""
    model = init_model(spec, data)
    ref = make_fixed(model)
    for step in training_stream(model, data, spec.rule.epochs):
        apply_step(ref, step)
    queries = ref.queries
    return ref.score(device_inputs(model, data.x_test), data.y_test), queries


def tune_one(args: tuple[tuple[float, int, str, str], int]) -> tuple[tuple[float, int, str, str], float]:
    config, seed = args
    spec = configured(seeded(load_spec(SPEC), seed), *config)
    data = validation_split(load_dataset(spec), seed)
    return config, fixed_score(spec, data)[0]


def tune(seeds: list[int], workers: int) -> list[dict[str, object]]:
    jobs = [(config, seed) for config in itertools.product(*GRID.values()) for seed in seeds]
    scores: dict[tuple[float, int, str, str], list[float]] = {}
    with ProcessPoolExecutor(workers) as pool:
        for config, score in tqdm(pool.map(tune_one, jobs), total=len(jobs), desc="grid", disable=None):
            scores.setdefault(config, []).append(score)
    rows = [{"learning_rate": c[0], "directions": c[1], "schedule": c[2], "init": c[3],
             "validation": float(np.mean(v)), "sd": float(np.std(v)), "per_seed": v} for c, v in scores.items()]
    return sorted(rows, key=lambda r: -float(r["validation"]))  # type: ignore[arg-type]


def evaluate_one(args: tuple[int, str, str]) -> dict[str, object]:
    seed, target, build_dir = args
    from onward.session import run_on_target

    spec = seeded(load_spec(SPEC), seed)
    data = load_dataset(spec)
    fixed, queries = fixed_score(spec, data)
    model = init_model(spec, data)
    flt = make_float(model)
    float_score = flt.fit(data)[-1]
    run = run_on_target(model, data, target, Path(build_dir) / f"seed{seed}", evaluate_test=True)
    return {"seed": seed, "float": float_score, "fixed": fixed, "device": run.device_accuracy,
            "device_reference": run.ref_accuracy, "steps": run.train_steps, "queries": queries}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tune", action="store_true")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--target", default="qemu-m4")
    p.add_argument("--build-dir", default="build/bench-photonic-controller")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    print("$ python3 bench/photonic_controller.py " + " ".join(sys.argv[1:]) + "\n", file=sys.stderr)
    if args.tune:
        rows = tune(args.seeds, args.workers)
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        print("| learning rate | directions | schedule | initial codes | validation accuracy (mean ± sd) | per seed |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            per = ", ".join(f"{100 * v:.1f}" for v in r["per_seed"])  # type: ignore[attr-defined]
            print(f"| {r['learning_rate']} | {r['directions']} | {r['schedule']} | {r['init']} | "
                  f"{100 * r['validation']:.1f} ± {100 * r['sd']:.1f} % | {per} |")  # type: ignore[operator]
        return 0
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(evaluate_one, [(s, args.target, args.build_dir) for s in args.seeds]))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"| seed | float | fixed point | device ({args.target}) | training steps | chip queries |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {100 * r['float']:.1f} % | {100 * r['fixed']:.1f} % | {100 * r['device']:.1f} % | "
              f"{r['steps']} | {r['queries']} |")  # type: ignore[operator]
    mean = {k: (100 * np.mean([r[k] for r in rows]), 100 * np.std([r[k] for r in rows]))
            for k in ("float", "fixed", "device")}
    print(f"| mean ± sd | {mean['float'][0]:.1f} ± {mean['float'][1]:.1f} % | {mean['fixed'][0]:.1f} ± "
          f"{mean['fixed'][1]:.1f} % | {mean['device'][0]:.1f} ± {mean['device'][1]:.1f} % | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
