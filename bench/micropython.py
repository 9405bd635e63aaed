"""The MicroPython target's costs, per example: training steps per second on the MicroPython unix port (the runtime
alone, and through the protocol as `onward verify` drives it), the heap the model and a training step use, the
.py/.mpy sizes, and the same step in the C firmware (instructions on qemu-m0 and qemu-m4) for comparison.

    python3 bench/micropython.py [--specs SPEC ...] [--steps 200] [--json]

The heap figures come from MicroPython's own gc: after importing the runtime and the model and building the state
(gc.collect(); gc.mem_alloc()), and the bytes a training step allocates (gc.mem_alloc() before and after one step,
gc disabled). Prints the command and a Markdown table (docs/micropython.md)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from onward import fixed
from onward.deploy import compile_mpy
from onward.paths import EXAMPLES
from onward.reference import training_targets
from onward.report import collect_model
from onward.session import prepare, run_on_target
from onward.spec import load_spec
from onward.targets.build import BuildError
from onward.targets.micropython import MAIN, write_micropython

PROBE = """
import gc, json, time
gc.collect()
base = gc.mem_alloc()
import onward_rt as rt
import {module} as model
st = rt.State(model)
gc.collect()
loaded = gc.mem_alloc() - base
samples = json.loads(open("samples.json").read())
x, t = samples[0]
gc.disable()
before = gc.mem_alloc()
rt.train(st, x, t)
per_step = gc.mem_alloc() - before
gc.enable()
gc.collect()
start = time.ticks_us()
for x, t in samples:
    rt.train(st, x, t)
us = time.ticks_diff(time.ticks_us(), start)
print(json.dumps({{"loaded": loaded, "per_step": per_step, "us": us, "steps": len(samples), "digest": st.digest()}}))
"""


def measure(spec_path: Path, steps: int, build: Path) -> dict:
    data, model = prepare(load_spec(spec_path))
    folder, gen = write_micropython(model, build)
    x_q, _ = fixed.to_q(data.x_train[:steps], model.spec.format.activation_frac)
    targets = training_targets(model, data.y_train[:steps])
    (folder / "samples.json").write_text(json.dumps([[list(map(int, x)), int(t)] for x, t in zip(x_q, targets,
                                                                                                strict=True)]))
    (folder / "probe.py").write_text(PROBE.format(module=gen.module))
    out = subprocess.run([sys.executable, "-m", "micropython_unix", "probe.py"], cwd=folder, capture_output=True,
                         text=True, check=True, timeout=600).stdout
    probe = json.loads(out)
    start = time.perf_counter()
    run = run_on_target(model, data, "micropython", build, steps=steps)
    verify_rate = run.steps_per_second
    del start
    sizes = {name: (len((folder / name).read_bytes()),
                    None if name == MAIN else compile_mpy(folder / name, "armv6m").stat().st_size)
             for name in gen.files}
    counts = {}
    for target in ("qemu-m0", "qemu-m4"):
        try:
            counts[target] = collect_model(model, data, target, build)["instructions_per_training_step"]
        except BuildError:  # does not fit the board's RAM (qemu-m0: 16 KB)
            counts[target] = "does not fit"
    macs = sum(a * b for a, b in zip(model.dims[:-1], model.dims[1:], strict=True))
    return {"spec": model.spec.name, "rule": model.spec.rule.name, "macs_per_inference": macs,
            "steps_per_s_runtime": probe["steps"] / (probe["us"] / 1e6), "steps_per_s_verify": verify_rate,
            "ms_per_step_runtime": probe["us"] / 1e3 / probe["steps"],
            "heap_model_bytes": probe["loaded"], "heap_per_step_bytes": probe["per_step"],
            "sizes": sizes, "c_instructions_per_step": counts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = [EXAMPLES / f"{name}.toml" for name in ("digits_pepita", "digits_mempepita", "digits_last_layer",
                                                      "digits_ffzero", "f1_ffzero_regression", "digits_ff",
                                                      "digits_fgrad")]
    parser.add_argument("--specs", nargs="+", type=Path, default=default)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in tqdm(args.specs, desc="specs", file=sys.stderr):
            rows.append(measure(spec, args.steps, Path(tmp)))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"$ python3 bench/micropython.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    print("| spec | steps/s (runtime) | ms/step | steps/s (verify, protocol) | heap: model + state | heap allocated "
          "by a step | onward_rt .py / .mpy | model .py / .mpy | C step, qemu-m0 / qemu-m4 (instructions) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["sizes"]
        model_file = next(name for name in s if name.startswith("onward_") and name != "onward_rt.py")
        c = r["c_instructions_per_step"]
        print(f"| {r['spec']} | {r['steps_per_s_runtime']:.0f} | {r['ms_per_step_runtime']:.2f} "
              f"| {r['steps_per_s_verify']:.0f} | {r['heap_model_bytes']} B | {r['heap_per_step_bytes']} B "
              f"| {s['onward_rt.py'][0]} / {s['onward_rt.py'][1]} B | {s[model_file][0]} / {s[model_file][1]} B "
              f"| {c['qemu-m0']} / {c['qemu-m4']} |")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
