"""verify over a mangled link (onward.targets.mangle) for many sessions: how each ended, and what faults were
injected. A false "bit-exact", a false mismatch or a hang is a failure (exit status 1).

    python3 bench/mangle.py [--sessions 1000] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from onward.data import load_dataset
from onward.model import init_model
from onward.spec import parse_spec
from onward.targets.mangle import mangled_session

RATES = (0.01, 0.05, 0.2)  # the chance per frame of one fault, cycled over the sessions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    raw = {"name": "mangled", "seed": 3, "model": {"hidden": [9, 6]},
           "data": {"set": "synthetic", "features": 12, "classes": 4, "samples": 200},
           "rule": {"name": "pepita", "learning_rate": 0.05, "epochs": 2}, "format": {"activation_frac": 11}}
    spec = parse_spec(raw, "bench/mangle.py")
    data = load_dataset(spec)
    model = init_model(spec, data)
    rng = np.random.default_rng(args.seed)
    outcomes: collections.Counter[str] = collections.Counter()
    faulty = collections.Counter()
    start = time.perf_counter()
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i in tqdm(range(args.sessions), desc="sessions"):
            s = mangled_session(model, data, Path(tmp), rng, RATES[i % len(RATES)], batch=None if i % 2 else 1)
            outcomes[s.outcome] += 1
            faulty[s.outcome] += s.faults > 0
            worst = max(worst, s.seconds)
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({"outcomes": outcomes, "with_faults": faulty, "seconds": seconds, "longest": worst}))
    else:
        print(f"`python3 bench/mangle.py --sessions {args.sessions} --seed {args.seed}` (native firmware, 24 steps a "
              f"session, per-frame fault rates {', '.join(map(str, RATES))}):\n")
        print("| outcome | sessions | of which with faults |")
        print("|---|---|---|")
        for name in ("bit-exact", "link error", "false bit-exact", "false mismatch", "hang"):
            print(f"| {name} | {outcomes[name]} | {faulty[name]} |")
        print(f"\n{args.sessions} sessions in {seconds:.0f} s; the longest took {worst:.2f} s (host timeout 0.3 s).")
    bad = outcomes["false bit-exact"] + outcomes["false mismatch"] + outcomes["hang"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
