"""A data set on an emulated Clements chip with flaws: the digital twin's phases deployed, against forward-only
training in situ through the codes (SPSA, FLOPS-style Gaussian, FFzero's directional derivative), on one query
budget. Mean ± sd over chip seeds (each seed is another chip: other static flaws); the data split is fixed.
Data: iris (4 features + the bias mode on 8 modes), digits16 (scikit-learn's digits pooled to 4x4 + bias: 17
modes), digits64 (the 8x8 pixels + bias: 65 modes).

    python3 bench/photonic.py [--data iris] [--preset l2ight] [--seeds 1 2 3] [--queries 12000] [--json]
                              [--plot PNG]

Hyper-parameters were set once, before any test accuracy was looked at, and not tuned: step and perturbation
2 DAC LSB, mini-batches of 32, logits 30 x intensity, Adam lr 0.05 for the twin (600 steps). The test set
(30 %, stratified) is never used for a choice."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from sklearn.datasets import load_digits, load_iris
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from onward.photonic.device import Chip, Device, preset
from onward.photonic.train import Task, chip_intensity, deploy, fit_ideal, fit_in_situ, ideal_intensity


def iris() -> tuple[np.ndarray, np.ndarray, int, int]:
    x, y = load_iris(return_X_y=True)
    return (x - x.min(0)) / (x.max(0) - x.min(0)), y, 8, 3


def digits(pool: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    x, y = load_digits(return_X_y=True)
    side = 8 // pool
    x = x.reshape(-1, side, pool, side, pool).mean(axis=(2, 4)).reshape(len(x), -1) / 16.0
    return x, y, side * side + 1, 10


DATA = {"iris": iris, "digits16": lambda: digits(2), "digits64": lambda: digits(1)}
METHODS = {"spsa": 1, "gaussian": 4, "directional": 2}  # estimator: directions per step
QUERIES_PER_STEP = {"spsa": 2, "gaussian": 5, "directional": 4}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="l2ight")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--queries", type=int, default=12000, help="training queries per in-situ method")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plot", help="write test accuracy vs queries as this PNG")
    parser.add_argument("--data", choices=list(DATA), default="iris")
    parser.add_argument("--twin-steps", type=int, default=600, help="Adam steps of the digital twin")
    args = parser.parse_args()
    x, y, n_modes, classes = DATA[args.data]()
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    task = Task(n_modes, classes)
    phases = fit_ideal(task, x_tr, y_tr, steps=args.twin_steps)
    ideal = task.accuracy(ideal_intensity(n_modes, phases, task, x_te), y_te)
    results: dict[str, list[float]] = {"deployed": []}
    curves: dict[str, list] = {}
    for seed in tqdm(args.seeds, desc="chips", file=sys.stderr):
        chip = Chip(Device(n_modes, preset(args.preset), seed=seed))
        codes = deploy(phases, chip.dac_bits)
        results["deployed"].append(task.accuracy(chip_intensity(chip, codes, task, x_te), y_te))
        for kind, directions in METHODS.items():
            steps = args.queries // QUERIES_PER_STEP[kind]
            _, curve = fit_in_situ(chip, task, codes, x_tr, y_tr, x_te, y_te, kind=kind, steps=steps,
                                   directions=directions, seed=seed, every=max(1, steps // 20))
            results.setdefault(kind, []).append(curve.accuracy[-1])
            curves.setdefault(kind, []).append(curve)
    summary = {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0) for k, v in results.items()}
    lost = ideal - summary["deployed"][0]
    recovered = {k: (summary[k][0] - summary["deployed"][0]) / lost if lost > 0 else float("nan") for k in METHODS}
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for kind, cs in curves.items():
            q = cs[0].queries
            acc = np.mean([c.accuracy for c in cs], axis=0)
            ax.plot(q, acc, label=f"{kind} in situ")
        ax.axhline(ideal, color="black", ls="--", label="ideal model (twin)")
        ax.axhline(summary["deployed"][0], color="red", ls=":", label="twin's phases deployed")
        ax.set_xlabel("training queries (one set of codes measured on a mini-batch)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{args.data}, {n_modes}-mode Clements chip, {args.preset} flaws, mean of {len(args.seeds)} chips")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
    if args.json:
        print(json.dumps({"ideal": ideal, "summary": summary, "recovered": recovered}, indent=1))
        return 0
    print(f"$ python3 bench/photonic.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    print("| method | test accuracy | training queries | share of the deployment loss recovered |")
    print("|---|---|---|---|")
    print(f"| ideal model (digital twin, exact gradients) | {100 * ideal:.1f} % | — | — |")
    m, s = summary["deployed"]
    print(f"| twin's phases deployed on the chip | {100 * m:.1f} ± {100 * s:.1f} % | 0 | — |")
    for kind in METHODS:
        m, s = summary[kind]
        steps = args.queries // QUERIES_PER_STEP[kind]
        print(f"| {kind} in situ | {100 * m:.1f} ± {100 * s:.1f} % | {steps * QUERIES_PER_STEP[kind]} "
              f"| {100 * recovered[kind]:.0f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
