"""Soak: long lockstep runs of every rule's example against the fixed-point reference, every step's outputs and state
digest compared, the whole way. One table: steps, mismatches (0, or the run stops with the first), time.

    python3 bench/soak.py [--steps 1000000] [--target native] [--specs examples/digits_pepita.toml ...] [--json]

The training stream runs as many epochs as the steps need (past the spec's last epoch at its last learning rate). On
native at 10^6 steps per rule it takes about 30 minutes (2000-3000 steps/s: the Python reference is the limit);
docs/reliability.md has the figures and the command that made them."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from onward.errors import OnwardError
from onward.paths import EXAMPLES
from onward.session import prepare, run_on_target
from onward.spec import load_spec

DEFAULT_SPECS = ["digits_pepita", "digits_mempepita", "digits_ffzero", "digits_ff", "digits_fgrad",
                 "digits_last_layer"]


def soak(spec_path: Path, steps: int, target: str, build_dir: Path) -> dict[str, object]:
    data, model = prepare(load_spec(spec_path))
    start = time.perf_counter()
    row: dict[str, object] = {"spec": spec_path.stem, "target": target}
    try:
        run = run_on_target(model, data, target, build_dir, steps=steps, progress=True)
    except OnwardError as exc:
        return {**row, "steps": 0, "mismatches": 1, "seconds": time.perf_counter() - start, "detail": str(exc)}
    return {**row, "steps": run.train_steps, "mismatches": 0, "seconds": time.perf_counter() - start,
            "steps_per_second": run.steps_per_second}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--target", default="native")
    parser.add_argument("--specs", nargs="+", type=Path, default=[EXAMPLES / f"{s}.toml" for s in DEFAULT_SPECS])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [soak(s, args.steps, args.target, Path(tmp)) for s in args.specs]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"`python3 bench/soak.py --steps {args.steps} --target {args.target}`:\n")
        print("| spec | target | steps | mismatches | seconds | steps/s |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['spec']} | {r['target']} | {r['steps']} | {r['mismatches']} | {float(r['seconds']):.0f} | "
                  f"{float(r.get('steps_per_second', 0)):.0f} |")  # type: ignore[arg-type]
        for r in rows:
            if r["mismatches"]:
                print(f"\n{r['spec']}: {r['detail']}")
    return 1 if any(r["mismatches"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
