"""`onward demo`: learn a spec on an emulated board (by default the 8x8 digits example on a Cortex-M4; cli.py names it),
verify it step by step, report."""

from __future__ import annotations

import time
from pathlib import Path

from onward.model import head_dataset
from onward.reference import make_float
from onward.session import prepare, run_on_target
from onward.size import size_report
from onward.spec import load_spec
from onward.targets.build import build_firmware
from onward.targets.run import TRANSPORT_NAMES, resolve_transport


def demo(spec_path: Path, target: str, epochs: int, build_dir: Path, transport: str = "auto") -> int:
    spec = load_spec(spec_path).with_epochs(epochs)
    resolve_transport(target, transport)  # a bad choice fails now, not after the float reference has trained
    data, model = prepare(spec)
    per_layer = f" per layer, {model.stages} layers one after another" if model.stages > 1 else ""
    print(f"onward demo: {spec.name}, {spec.rule.name}, {'-'.join(map(str, model.dims))}, "
          f"{len(data.y_train)} training / {len(data.y_test)} test samples, {epochs} epochs{per_layer} "
          f"(lr {spec.rule.learning_rate:g}, x{spec.rule.lr_decay:g} at epochs {list(spec.rule.lr_decay_epochs)})")
    t0 = time.perf_counter()
    float_acc = make_float(model).fit(head_dataset(model, data))[-1]
    print(f"float reference trained in {time.perf_counter() - t0:.1f} s")
    firmware = build_firmware(model, target, build_dir)  # the UART build, as a real board carries it: its sizes
    size = size_report(firmware)
    print(f"firmware built for {target}: {firmware.path}")
    run = run_on_target(model, data, target, build_dir, evaluate_test=True, progress=True, transport=transport)
    metric, show = (("test R²", lambda v: f"{v:.4f}") if data.task == "regression"
                    else ("test accuracy", lambda v: f"{100 * v:.2f} %"))
    rows = [
        (f"float reference, {metric}", show(float_acc)),
        (f"fixed-point reference, {metric}", show(run.ref_accuracy)),
        (f"device ({target}), {metric}", show(run.device_accuracy)),
        ("mismatches (every step's outputs + state digest, every test output)", "0"),
        ("training steps / inferences checked", f"{run.train_steps} / {run.inferences + len(data.y_test)}"),
        ("saturations (reference = device)", str(run.saturations)),
        ("flash (text + rodata + data)", f"{size.flash} B"),
        ("RAM, static (data + bss)", f"{size.ram} B"),
        ("  of which training activation buffers", f"{size.training_activations} B"),
        (f"training steps per second ({'emulated, ' if target.startswith('qemu') else ''}over "
         f"{TRANSPORT_NAMES[run.transport]})", f"{run.steps_per_second:.0f}"),
    ]
    width = max(len(r[0]) for r in rows)
    print("\n" + "\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    return 0
