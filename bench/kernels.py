"""Executed instructions of the dense kernels, an inference and a training step, per target: the DSP (SMLALD)
kernel of firmware/src/dense.c against the portable C loop (-DONW_PORTABLE_KERNELS), counted in the
unicorn emulator on the firmware of examples/digits_pepita.toml (onward.report).

    python bench/kernels.py [--targets qemu-m0 qemu-m4 qemu-m7] [--spec SPEC]

Prints a Markdown table (docs/report.md holds its output). Counts are exact and repeatable; they are
instructions, not cycles."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from onward.paths import EXAMPLES
from onward.report import collect

DEFAULT_TARGETS = ["qemu-m0", "qemu-m4", "qemu-m7"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS)
    parser.add_argument("--spec", type=Path, default=EXAMPLES / "digits_pepita.toml")
    args = parser.parse_args(argv)
    spec = args.spec.resolve()
    shown = spec.relative_to(EXAMPLES.parent) if spec.is_relative_to(EXAMPLES.parent) else spec
    command = " ".join(["python", "bench/kernels.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"`{command}` ({shown}; per MAC: one 64x64 layer with ReLU):\n")
    print("| target | core | kernel | instr/MAC | instr/MAC portable | instr/inference | instr/inference portable "
          "| instr/training step | instr/training step portable |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for target in args.targets:
            r = collect(spec, target, Path(tmp))
            print(f"| {target} | {r['cpu']} | {r['kernel']} | {r['instructions_per_mac']:.3f} | "
                  f"{r['instructions_per_mac_portable']:.3f} | {r['instructions_per_inference']} | "
                  f"{r['instructions_per_inference_portable']} | {r['instructions_per_training_step']} | "
                  f"{r['instructions_per_training_step_portable']} |")
    print(f"\nOne inference is {r['macs_per_inference']} MACs; the training step is the first of the spec's "
          "stream after RESET (its cost depends on the data: zero inputs and zero errors skip updates).")


if __name__ == "__main__":
    main()
