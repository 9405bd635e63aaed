"""Long fuzzing runs (onward.fuzz): every rule's frames, commands and state-image harnesses for a given time each, then
the line coverage of the runtime's frame handling (app.c, protocol.c) and of state.c reached by the first rule's
frames and commands corpora (llvm-cov). Prints one table; exit status 1 on any finding (crash, sanitizer report,
broken invariant), whose input is kept in the output folder.

    python3 bench/fuzz.py [--frames-seconds 80] [--state-seconds 20] [--rules pepita ffzero ...] [--out DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from tqdm import tqdm

from onward import fuzz
from onward.data import load_dataset
from onward.model import init_model
from onward.paths import FIRMWARE_SRC
from onward.rules import rule_names
from onward.spec import parse_spec

COVERED = ("app.c", "protocol.c", "state.c")


def small_model(rule: str):  # type: ignore[no-untyped-def]
    """The model the harnesses are built for: small (many executions a second), two hidden layers, odd widths."""
    raw = {"name": f"fz_{rule}", "seed": 3, "model": {"hidden": [9, 6]},
           "data": {"set": "synthetic", "features": 12, "classes": 4, "samples": 200},
           "rule": {"name": rule, "learning_rate": 0.5, "epochs": 2}, "format": {"activation_frac": 11}}
    spec = parse_spec(raw, f"fuzz:{rule}")
    return init_model(spec, load_dataset(spec))


def line_coverage(model, harness: str, corpora: list[Path], folder: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Lines of COVERED executed by replaying the corpora through the harness built with coverage."""
    folder = folder / harness
    binary = folder / f"{harness}-cov"
    gen = folder / "gen"
    fuzz.build_harness(model, harness, gen)  # writes model.h/model.c into gen
    sources = sorted(str(p) for p in FIRMWARE_SRC.glob("*.c"))
    cmd = [fuzz.CLANG, "-std=c99", "-O1", "-fsanitize=fuzzer", "-fprofile-instr-generate", "-fcoverage-mapping",
           "-DONW_NO_MAIN", '-DONW_BOARD_NAME="fuzz"', "-I", str(fuzz.FIRMWARE_INCLUDE), "-I", str(gen), "-I",
           str(fuzz.FUZZ), *sources, str(fuzz.FUZZ / "port.c"), str(fuzz.FUZZ / f"{harness}.c"), str(gen / "model.c"),
           "-o", str(binary)]
    subprocess.run(cmd, check=True, capture_output=True)
    raw = folder / f"{harness}.profraw"
    subprocess.run([str(binary), "-runs=0", *map(str, corpora)], env={"LLVM_PROFILE_FILE": str(raw)},
                   check=True, capture_output=True)
    data = folder / f"{harness}.profdata"
    subprocess.run(["llvm-profdata", "merge", "-sparse", str(raw), "-o", str(data)], check=True)
    report = subprocess.run(["llvm-cov", "report", str(binary), f"-instr-profile={data}",
                             *[str(FIRMWARE_SRC / f) for f in COVERED]], check=True, capture_output=True, text=True)
    out = {}
    for line in report.stdout.splitlines():
        parts = line.split()
        if parts and Path(parts[0]).name in COVERED:
            out[Path(parts[0]).name] = parts[-4]  # Lines: Cover
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames-seconds", type=int, default=80, help="each of frames and commands")
    parser.add_argument("--state-seconds", type=int, default=20)
    parser.add_argument("--rules", nargs="+", default=list(rule_names()))
    parser.add_argument("--out", type=Path, default=Path("build/fuzz"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows, findings, corpora = [], [], {}
    seconds = {"frames": args.frames_seconds, "commands": args.frames_seconds, "state": args.state_seconds}
    for rule in tqdm(args.rules, desc="rules"):
        model = small_model(rule)
        for harness in fuzz.HARNESSES:
            folder = args.out / rule / harness
            binary = fuzz.build_harness(model, harness, folder / "bin")
            corpus = fuzz.seed_corpus(model, folder / "corpus")
            run = fuzz.run_harness(binary, corpus, seconds[harness], folder / "artifacts")
            rows.append({"rule": rule, "harness": harness, "executions": run.executions, "seconds": run.seconds,
                         "coverage": run.coverage, "features": run.features, "findings": len(run.crashes)})
            findings += run.crashes
            if rule == args.rules[0]:
                corpora[harness] = corpus
    model = small_model(args.rules[0])
    coverage = {h: line_coverage(model, h, [corpora[h]], args.out / "coverage") for h in ("frames", "commands")}
    if args.json:
        print(json.dumps({"runs": rows, "line_coverage": coverage}, indent=1))
    else:
        print(f"`python3 bench/fuzz.py --frames-seconds {args.frames_seconds} --state-seconds {args.state_seconds}`"
              " (libFuzzer, ASan + UBSan; executions as libFuzzer counts them):\n")
        print("| rule | harness | executions | seconds | edges (cov) | features (ft) | findings |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['rule']} | {r['harness']} | {r['executions']} | {r['seconds']:.0f} | {r['coverage']} | "
                  f"{r['features']} | {r['findings']} |")
        total = sum(int(r["executions"]) for r in rows)  # type: ignore[call-overload]
        print(f"\n{total} executions in all, {len(findings)} findings. Line coverage of the runtime by the "
              f"{args.rules[0]} corpora:")
        for harness, lines in coverage.items():
            print(f"- {harness}: " + ", ".join(f"{k} {v}" for k, v in lines.items()))
        for f in findings:
            print(f"FINDING: {f}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
