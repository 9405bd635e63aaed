"""Digits (25 % stratified test split): FFzero (linear, as the public code, and ReLU between layers) vs the bp_dd
ablation (the same estimator on all parameters, one global cross-entropy) at equal forward evaluations.

    python bench/ffzero.py                                   # about 3-4 minutes on 2 cores
    python bench/ffzero.py --budgets 100 --batches 256 --seeds 5   # the paper's settings (100 epochs, batch 256)

A budget of E epochs-equivalent is E epochs for every FFzero layer and E epochs for bp_dd: both then cost 2K·E·L
layer evaluations per training sample (FFzero adds one propagation through each frozen layer), and the same MACs.
"samples/s" counts samples fed to a DD step (one layer's for FFzero, the whole net's for bp_dd) per second of
training, on this machine, in numpy float64. Batch-1 rows (the device learns online) use --online-seeds seeds."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import cast

import numpy as np

from onward.data import Dataset, load_dataset
from onward.rules.ffzero.paper import Activation, FFzero, FFzeroConfig, GlobalDD
from onward.rules.ffzero.zeroth_order import Distribution
from onward.spec import parse_spec

VARIANTS = ("ffzero-linear", "ffzero-relu", "bp_dd-linear", "bp_dd-relu")


@dataclass
class Row:
    variant: str
    batch: int
    budget: int
    accs: list[float]
    evals: float
    macs: float
    seconds: float
    samples_per_s: float


def digits(seed: int) -> Dataset:
    spec = parse_spec({"name": "ffzero_bench", "seed": seed, "data": {"set": "digits", "test_fraction": 0.25},
                       "model": {"hidden": [64]}, "rule": {"name": "pepita", "learning_rate": 0.1, "epochs": 1}})
    return load_dataset(spec)


def run(variant: str, cfg: FFzeroConfig, data: Dataset) -> tuple[float, float, float, float, float]:
    """Test accuracy, layer evaluations and MACs per training sample, training seconds, samples/s."""
    cls = FFzero if variant.startswith("ffzero") else GlobalDD
    model = cls(cfg, data.input_dim, data.classes).fit(data.x_train, data.y_train)
    n = len(data.y_train)
    c = model.cost
    return model.score(data.x_test, data.y_test), c.layer_evals / n, c.macs / n, c.seconds, c.samples_per_second


def bench(args: argparse.Namespace, data: Dataset) -> list[Row]:
    rows = []
    for budget in args.budgets:
        for batch in args.batches:
            seeds = range(args.online_seeds if batch == 1 else args.seeds)
            for variant in args.variants:
                results = []
                for seed in seeds:
                    cfg = FFzeroConfig(hidden=tuple(args.hidden), epochs=budget, lr=args.lr, eps=args.eps,
                                       directions=args.directions, batch_size=batch,
                                       activation=cast(Activation, variant.split("-")[1]), seed=seed,
                                       distribution=cast(Distribution, args.distribution),
                                       eps_per_weight=args.eps_per_weight)
                    results.append(run(variant, cfg, data))
                acc, evals, macs, secs, sps = zip(*results, strict=True)
                rows.append(Row(variant, batch, budget, list(acc), evals[0], macs[0], float(np.mean(secs)),
                                float(np.mean(sps))))
                print(f"  {variant} batch {batch} budget {budget}: {100 * np.mean(acc):.1f} %", flush=True)
    return rows


def table(rows: list[Row]) -> str:
    header = ("method", "batch", "epochs-equiv.", "seeds", "test acc % (mean ± sd)", "layer evals / sample",
              "MACs / sample", "train s", "samples/s")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        acc = 100 * np.array(r.accs)
        lines.append(f"| {r.variant} | {r.batch} | {r.budget} | {len(r.accs)} | {acc.mean():.1f} ± {acc.std():.1f} | "
                     f"{r.evals:.0f} | {r.macs:.3g} | {r.seconds:.2f} | {r.samples_per_s:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 50], help="epochs-equivalent budgets")
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 64, 1])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per row (batch > 1)")
    parser.add_argument("--online-seeds", type=int, default=1, help="seeds per batch-1 row")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--hidden", type=int, nargs="+", default=[100, 100])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eps", type=float, default=1e-3)
    parser.add_argument("--eps-per-weight", action="store_true", help="--eps is per parameter: ε = eps·sqrt(d)")
    parser.add_argument("--directions", type=int, default=1)
    parser.add_argument("--distribution", choices=("gaussian", "rademacher"), default="gaussian")
    parser.add_argument("--data-seed", type=int, default=1, help="seed of the stratified split")
    args = parser.parse_args()
    data = digits(args.data_seed)
    eps = f"{args.eps}{' per weight' if args.eps_per_weight else ''}"
    print(f"digits: {len(data.y_train)} train / {len(data.y_test)} test, hidden {args.hidden}, "
          f"K = {args.directions}, lr {args.lr}, eps {eps}, {args.distribution}", flush=True)
    print(table(bench(args, data)))


if __name__ == "__main__":
    main()
