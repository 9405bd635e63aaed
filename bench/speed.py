"""Executed instructions per inference and per training step of every example spec on one emulated target (qemu-m4
by default), the step's multiply-accumulates counted from the model, and the step's instructions per MAC;
optionally against the same examples built from another git revision.

    python bench/speed.py [--target qemu-m4] [--specs SPEC ...] [--baseline REV] [--json]

The counts are those of `onward report` (onward.report.count_instructions on the firmware of
onward.report.build_variant): `onw_infer` on test sample 0 and `onw_train` on the first training sample of the
spec's stream, both after `onw_reset(seed)`, in the unicorn emulator, each checked bit for bit against the
fixed-point reference. FFzero's step is stage 0's (RESET leaves the device at stage 0: the first layer learns).

MACs of one training step, from the model (products of a weight with an input; a "MAC" of an additions-only
pass is one accumulate per weight; norms, softmax, goodness and the sums of squares, O(width), are not counted;
padding columns are not counted). W_l is layer l's (out x in) matrix, |W_l| its size, L the layer count:

* PEPITA:    pass 1 over every layer (sum |W_l|) + F e (input x classes) + pass 2 over the hidden layers
             (sum over l < L-1 of |W_l|) + one update per weight (sum |W_l|).
* MEMPEPITA: PEPITA's, plus the clean pass over the hidden layers again (pass 1 only computes the error).
* fgrad:     the forward pass (sum |W_l|) + per tangent k = 1..K: activity mode W_l t over the layers after the
             first (sum over l >= 1 of |W_l|), weight mode V_l h + W_l t (|W_0| + 2 sum over l >= 1 of |W_l|);
             + e . t (classes) per tangent + one update per weight (sum |W_l|).
* Forward-Forward: per layer the positive and the negative pass (2 |W_l|, W_l with the bias column and, for the
             first layer, the label inputs) + their two updates (2 |W_l|).
* FFzero (stage 0: layer 0 learns; d = its parameters, bias included): the clean accumulators (d) + K
             additions-only responses (K d) + z's projection onto the prototypes for the vote and for z+ and z-
             per direction ((1 + 2K) out x prototypes) + one update per weight (d). A conv layer (d = its filters'
             weights, p positions): accumulators p d, responses K p d, each channel's map through its projection
             M_c and its prototypes, for the vote and z+, z- per direction ((1 + 2K) (|M| + |prototypes|)), the
             update d.

--baseline REV checks REV out into a temporary git worktree and counts the same example files there: each spec
is measured in a subprocess that imports that tree's `onward` (a folder holding a symlink `onward` ->
<worktree>/host, first on PYTHONPATH: this checkout's `onward` is installed in editable mode). The MACs are this
tree's model's in both columns. A spec the baseline cannot build or count shows "—".

Prints the command and a Markdown table (docs/report.md, "Every example's inference and training step"), or
with --json one JSON list of rows. Counts are instructions, not cycles.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:  # the progress bar is optional: without tqdm, one line per measurement on stderr
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
DEFAULT_TARGET = "qemu-m4"


# -- one measurement (also what the baseline subprocess runs, with the baseline's `onward`) ----------------

STATE_STAGE = 12  # onw_state's header: seed, steps, lr_q, stage (u32 each): the stage's offset


def measure(spec_path: Path, target: str, build_dir: Path, all_stages: bool = False) -> dict[str, Any]:
    """Instructions per inference and per training step of one spec, as `onward report` counts them
    (onward.report.build_variant and count_instructions, which a baseline tree's `onward` has too); with
    all_stages, also every later stage's first training step: {"inference", "training_step", "stages": {s: n}}."""
    from onward.report import build_variant, count_instructions
    from onward.session import prepare
    from onward.spec import load_spec

    spec = load_spec(spec_path)
    data, model = prepare(spec)
    firmware = build_variant(model, target, build_dir)
    counts = count_instructions(firmware, model, data)
    stages = range(1, model.stages) if all_stages else range(0)
    return {"inference": counts.inference, "training_step": counts.training_step,
            "stages": {str(s): count_stage_step(firmware, model, data, s) for s in stages}}


def count_stage_step(firmware: Any, model: Any, data: Any, stage: int) -> int:
    """Executed instructions of stage `stage`'s first training sample after RESET and SET_STAGE (the layers
    before it run with their initial weights), checked against the reference like count_instructions."""
    import numpy as np

    from onward.counting import Emulator
    from onward.reference import make_fixed, training_stream
    from onward.report import ReportError, board_cpu

    spec = model.spec
    step = [s for s in training_stream(model, data, 1, steps_per_stage=1) if s.kind == "train"][stage]
    emu = Emulator(firmware.path, board_cpu(firmware))
    sample, outputs = emu.symbols["sample"], emu.symbols["outputs"]
    ref = make_fixed(model)
    emu.call("onw_reset", [spec.seed], count=False)
    ref.reset(spec.seed)
    emu.write(emu.symbols["onw_state"] + STATE_STAGE, stage.to_bytes(4, "little"))  # what SET_STAGE does
    ref.stage = stage
    emu.write(sample, np.asarray(step.x, dtype="<i2").tobytes())
    call = emu.call("onw_train", [sample, step.target & 0xFFFFFFFF, outputs])
    expected = ref.train(step.x, step.target)
    got = np.frombuffer(emu.read(outputs, 2 * len(expected)), dtype="<i2")
    digest = emu.call("onw_state_digest", count=False).result
    if got.tolist() != [int(v) for v in expected] or digest != ref.digest():
        raise ReportError(f"{firmware.path}: stage {stage}'s first training step differs from the reference")
    return call.instructions


# -- MACs of one training step, from the model ---------------------------------------------------------------

def step_macs(spec_path: Path, stage: int = 0) -> int:
    """The training step's multiply-accumulates (see the module docstring for how each rule is counted)."""
    from onward.session import prepare
    from onward.spec import load_spec

    spec = load_spec(spec_path)
    _, model = prepare(spec)
    rule, classes = spec.rule.name, model.outputs
    # |W_l| without padding columns: pepita/fgrad blocks are (out, in); FF and FFzero rows are in + 1 wide (bias)
    sizes = [a * b for a, b in model.layer_shapes]
    if rule in ("pepita", "mempepita"):
        hidden = sum(sizes[:-1])
        passes = 3 if rule == "mempepita" else 2  # pass 1 (all layers) is counted apart below
        return sum(sizes) + model.dims[0] * classes + (passes - 1) * hidden + sum(sizes)
    if rule == "fgrad":
        k = spec.rule.options.directions
        tangent = sum(sizes[1:]) if spec.rule.options.mode == "activity" else sizes[0] + 2 * sum(sizes[1:])
        return sum(sizes) + k * (tangent + classes) + sum(sizes)
    if rule == "ff":
        fans = [model.dims[0] + classes, *model.dims[1:-1]]
        return sum(4 * out * (fan + 1) for fan, out in zip(fans, model.dims[1:], strict=True))
    if rule == "ffzero":
        return ffzero_step_macs(model, stage)
    raise ValueError(f"no MAC count for rule {rule!r}")


def ffzero_step_macs(model: Any, stage: int) -> int:
    """FFzero at `stage`: the layers before it run (accumulators and vote), layer `stage` learns."""
    from onward.rules.ffzero.fixed import conv_constants, conv_layers, prototypes

    k = model.spec.rule.options.directions
    convs = conv_layers(model)
    conv_consts, protos = conv_constants(model, convs), prototypes(model)
    total = 0
    for layer in range(min(stage, model.num_layers - 1) + 1):
        learns = 1 if layer == stage else 0
        if layer < len(convs):
            c, (maps, cprotos) = convs[layer], conv_consts[layer]
            d, projections = c.size, maps.size + cprotos.size
            total += c.positions * d * (1 + k * learns) + projections * (1 + 2 * k * learns) + d * learns
        else:
            fan_in, out = model.layer_shapes[layer]
            d = out * (fan_in + 1)
            total += d * (1 + k * learns) + protos[layer - len(convs)].size * (1 + 2 * k * learns) + d * learns
    return total


# -- the baseline -------------------------------------------------------------------------------------------

@contextmanager
def baseline_tree(rev: str) -> Iterator[tuple[Path, Path]]:
    """(the worktree of `rev`, a folder whose `onward` is that tree's host/), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="onward-baseline-") as tmp:
        tree, shim = Path(tmp) / "tree", Path(tmp) / "shim"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(tree), rev],
                       check=True, capture_output=True, text=True)
        try:
            shim.mkdir()
            (shim / "onward").symlink_to(tree / "host", target_is_directory=True)
            yield tree, shim
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                           check=False, capture_output=True)


def measure_elsewhere(shim: Path, tree: Path, spec_path: Path, target: str, build_dir: Path,
                      all_stages: bool) -> dict[str, Any]:
    """`measure` in a subprocess that imports the baseline's `onward` (this file's code, that tree's package)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shim), *filter(None, [os.environ.get("PYTHONPATH")])]))
    cmd = [sys.executable, str(HERE), "--measure", str(spec_path), "--target", target, "--build-dir", str(build_dir),
           *(["--all-stages"] if all_stages else [])]
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {done.returncode}"}
    return dict(json.loads(done.stdout))


# -- the table ----------------------------------------------------------------------------------------------

class Progress:
    """A tqdm bar on stderr, or without tqdm one line per finished measurement."""

    def __init__(self, total: int, desc: str) -> None:
        self.bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False) if tqdm is not None else None
        self.desc, self.total, self.done = desc, total, 0

    def step(self, what: str) -> None:
        """Say what is being measured now."""
        if self.bar is not None:
            self.bar.set_postfix_str(what)

    def advance(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update()
        else:
            print(f"{self.desc}: {self.done}/{self.total}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _ratio(a: int | None, b: int | None, digits: int = 1) -> str:
    return "—" if a is None or b in (None, 0) else f"{a / b:.{digits}f}"


def _n(value: int | None) -> str:
    return "—" if value is None else str(value)


def rows(specs: list[Path], target: str, build_dir: Path, baseline: str | None,
         all_stages: bool) -> list[dict[str, Any]]:
    """One row per spec (stage 0), and with all_stages one more per later FFzero stage."""
    from onward.spec import load_spec

    out: list[dict[str, Any]] = []
    progress = Progress(len(specs) * (2 if baseline else 1), f"counting on {target}")
    try:
        now: dict[Path, list[dict[str, Any]]] = {}
        for spec in specs:
            progress.step(spec.stem)
            counts = measure(spec, target, build_dir / "now", all_stages)
            rule = load_spec(spec).rule.name
            now[spec] = [{"spec": spec.stem, "rule": rule, "stage": 0,
                          "instructions_per_inference": counts["inference"],
                          "instructions_per_training_step": counts["training_step"],
                          "macs_per_training_step": step_macs(spec)}]
            now[spec] += [{"spec": spec.stem, "rule": rule, "stage": int(s), "instructions_per_inference": None,
                           "instructions_per_training_step": n, "macs_per_training_step": step_macs(spec, int(s))}
                          for s, n in counts["stages"].items()]
            out += now[spec]
            progress.advance()
        if baseline:
            with baseline_tree(baseline) as (tree, shim):
                for spec in specs:
                    progress.step(f"{spec.stem} @ {baseline}")
                    before = measure_elsewhere(shim, tree, spec, target, build_dir / "baseline", all_stages)
                    for row in now[spec]:
                        row["baseline"] = baseline
                        row["baseline_instructions_per_inference"] = (before.get("inference") if row["stage"] == 0
                                                                      else None)
                        row["baseline_instructions_per_training_step"] = (
                            before.get("training_step") if row["stage"] == 0
                            else before.get("stages", {}).get(str(row["stage"])))
                        if "error" in before:
                            row["baseline_error"] = before["error"]
                    progress.advance()
    finally:
        progress.close()
    return out


def table(results: list[dict[str, Any]], baseline: str | None) -> str:
    if baseline:
        head = ["spec", "rule", f"instr/inference {baseline}", "instr/inference", f"instr/step {baseline}",
                "instr/step", "step / inference", "MACs/step", f"instr/MAC {baseline}", "instr/MAC"]
    else:
        head = ["spec", "rule", "instr/inference", "instr/step", "step / inference", "MACs/step", "instr/MAC"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        inf, step = r["instructions_per_inference"], r["instructions_per_training_step"]
        macs = r["macs_per_training_step"]
        ratio, per_mac = _ratio(step, inf), _ratio(step, macs, 2)
        name, rule = (r["spec"], r["rule"]) if r["stage"] == 0 else (f"&nbsp;&nbsp;stage {r['stage']}", "")
        if r["stage"] == 0 and any(o["spec"] == r["spec"] and o["stage"] for o in results):
            name += " (stage 0)"
        if baseline:
            b_inf, b_step = r["baseline_instructions_per_inference"], r["baseline_instructions_per_training_step"]
            cells = [name, rule, _n(b_inf), _n(inf), _n(b_step), str(step), ratio, str(macs),
                     _ratio(b_step, macs, 2), per_mac]
        else:
            cells = [name, rule, _n(inf), str(step), ratio, str(macs), per_mac]
        lines.append("| " + " | ".join(cells) + " |")
    notes = sorted({f"{r['spec']} @ {baseline}: {r['baseline_error']}" for r in results if r.get("baseline_error")})
    return "\n".join(lines + ([""] + [f"- {n}" for n in notes] if notes else []))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=DEFAULT_TARGET)
    parser.add_argument("--specs", nargs="+", type=Path, help="default: every examples/*.toml")
    parser.add_argument("--baseline", metavar="REV", help="also count the examples built from this git revision")
    parser.add_argument("--all-stages", action="store_true",
                        help="also FFzero's later stages (SET_STAGE, then that stage's first sample)")
    parser.add_argument("--json", action="store_true", help="print one JSON list of rows instead of the table")
    parser.add_argument("--build-dir", type=Path, help="default: a temporary folder")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the baseline's subprocess: one spec
    args = parser.parse_args(argv)
    if args.measure:
        json.dump(measure(args.measure.resolve(), args.target, args.build_dir, args.all_stages), sys.stdout)
        return
    specs = [s.resolve() for s in args.specs] if args.specs else sorted((REPO / "examples").glob("*.toml"))
    with tempfile.TemporaryDirectory(prefix="onward-speed-") as tmp:
        results = rows(specs, args.target, args.build_dir.resolve() if args.build_dir else Path(tmp),
                       args.baseline, args.all_stages)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    command = " ".join(["python3", "bench/speed.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"`{command}` (on {args.target}; instructions counted in unicorn, MACs from the model):\n")
    print(table(results, args.baseline))


if __name__ == "__main__":
    main()
