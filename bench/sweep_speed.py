"""How much a second worker buys: the same CPU-bound sweep (16 runs: the fixed-point reference of digits PEPITA,
seeds 1-16, 10 epochs each) on a Dask LocalCluster of 1 worker, then of 2 workers, in one run of this script.

    python3 bench/sweep_speed.py [--runs 16] [--epochs 10] [--json]

Prints the command, both wall times (each from creating its LocalCluster to the last result: start-up included)
and their ratio, and checks that both sweeps measured the same scores."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from onward.paths import EXAMPLES
from onward.sweep.plan import load_sweep
from onward.sweep.runner import run_sweep

SWEEP = """\
base = "{base}"
targets = ["fixed"]

[grid]
seed = {seeds}
"rule.epochs" = [{epochs}]
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    timings: dict[int, float] = {}
    scores: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speed.toml"
        path.write_text(SWEEP.format(base=EXAMPLES / "digits_pepita.toml", seeds=list(range(1, args.runs + 1)),
                                     epochs=args.epochs))
        for workers in (1, 2):
            sweep = load_sweep(path, Path(tmp) / f"w{workers}.parquet")
            start = time.perf_counter()
            rows = run_sweep(sweep, workers=workers, progress=False)
            timings[workers] = time.perf_counter() - start
            scores[workers] = [r["score"] for r in sorted(rows, key=lambda r: r["seed"])]
    same = scores[1] == scores[2]
    if args.json:
        print(json.dumps({"runs": args.runs, "seconds_1_worker": timings[1], "seconds_2_workers": timings[2],
                          "ratio": timings[2] / timings[1], "same_scores": same}))
        return 0 if same else 1
    print(f"$ python3 bench/sweep_speed.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    print("| LocalCluster | runs | wall time | ratio to 1 worker |")
    print("|---|---|---|---|")
    for workers in (1, 2):
        print(f"| {workers} worker{'s' if workers > 1 else ''} | {args.runs} | {timings[workers]:.1f} s "
              f"| {timings[workers] / timings[1]:.2f} |")
    print(f"\nsame scores from both: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
