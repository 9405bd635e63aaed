"""Every example on every target: `onward verify` of each spec of examples/ on each target for a few hundred steps
(every output and state digest compared), as one table. A board that cannot hold a model says so before anything
is built (`does not fit`); anything else that is not bit-exact is a failure (exit status 1).

    python3 bench/examples.py [--steps 200] [--targets native qemu-m4 ...] [--json]

About a minute for the nine examples on the six targets (2 cores); the tests run every rule on every target
with small models (tests/test_matrix.py), this runs the examples themselves."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from onward.errors import OnwardError
from onward.paths import EXAMPLES
from onward.session import prepare, run_on_target
from onward.spec import load_spec
from onward.targets.build import TARGETS


def verify_one(spec_path: Path, target: str, steps: int, build_dir: Path) -> dict[str, object]:
    data, model = prepare(load_spec(spec_path))
    row: dict[str, object] = {"example": spec_path.stem, "target": target}
    try:
        run = run_on_target(model, data, target, build_dir, steps=steps)
    except OnwardError as exc:
        fits = "does not fit" in str(exc)
        return {**row, "result": "does not fit" if fits else "FAILED", "detail": str(exc).splitlines()[0]}
    return {**row, "result": "bit-exact", "steps": run.train_steps, "inferences": run.inferences,
            "transport": run.transport}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    specs = sorted(EXAMPLES.glob("*.toml"))
    jobs = [(s, t) for s in specs for t in args.targets]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [verify_one(s, t, args.steps, Path(tmp)) for s, t in tqdm(jobs, desc="examples x targets")]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"`python3 bench/examples.py --steps {args.steps}` (every output and state digest compared):\n")
        print("| example | " + " | ".join(args.targets) + " |")
        print("|---|" + "---|" * len(args.targets))
        for spec in specs:
            cells = [next(r for r in rows if r["example"] == spec.stem and r["target"] == t) for t in args.targets]
            print(f"| {spec.stem} | " + " | ".join(str(c["result"]) for c in cells) + " |")
        for row in rows:
            if row["result"] != "bit-exact":
                print(f"\n{row['example']} on {row['target']}: {row['detail']}")
    return 1 if any(r["result"] == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
