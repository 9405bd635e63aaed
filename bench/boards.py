"""Every example on the real boards onward has a bare-metal port for: flash and RAM against the part's, the worst-case
stack, instructions per inference and training step, and the time they take at the port's clock (one cycle per
instruction: a lower bound). The figures are `onward report SPEC --target BOARD` (onward.report.collect): the very
firmware `onward build --target BOARD` makes, its functions run in the unicorn emulator and checked against the
fixed-point reference.

    python bench/boards.py [--boards nucleo_f446re nucleo_l476rg] [--specs SPEC ...] [--json]

Prints the command and a Markdown table (docs/report.md, "Real boards"), or with --json one JSON list of rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from onward.paths import EXAMPLES
from onward.report import collect

BOARDS = ["nucleo_f446re", "nucleo_l476rg"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", nargs="+", default=BOARDS)
    parser.add_argument("--specs", nargs="+", type=Path, default=sorted(EXAMPLES.glob("*.toml")))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as build:
        jobs = [(spec, board) for spec in args.specs for board in args.boards]
        for spec, board in tqdm(jobs, desc="boards", file=sys.stderr):
            r = collect(spec, board, Path(build))
            rows.append({k: r[k] for k in ("spec", "target", "flash_bytes", "flash_without_weights_bytes",
                                            "part_flash_bytes", "ram_with_stack_bytes", "part_ram_bytes",
                                            "stack_worst_bytes", "instructions_per_inference",
                                            "instructions_per_training_step", "clock_hz", "us_per_inference",
                                            "us_per_training_step")})
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    print(f"$ python3 bench/boards.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    print("| spec | board | flash | of it not weights | RAM with stack | stack | instr/inference | instr/step | "
          "µs/inference | µs/step |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['spec']} | {r['target']} at {r['clock_hz'] / 1e6:g} MHz "
              f"| {r['flash_bytes']} B ({100 * r['flash_bytes'] / r['part_flash_bytes']:.1f} %) "
              f"| {r['flash_without_weights_bytes']} B "
              f"| {r['ram_with_stack_bytes']} B ({100 * r['ram_with_stack_bytes'] / r['part_ram_bytes']:.1f} %) "
              f"| {r['stack_worst_bytes']} B | {r['instructions_per_inference']} "
              f"| {r['instructions_per_training_step']} | {r['us_per_inference']} | {r['us_per_training_step']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
