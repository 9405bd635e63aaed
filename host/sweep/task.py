"""One run of a sweep, as a Dask worker executes it: train, score, and return one row of the results table. A
failure is a row too (status "error" and the message), so one bad run never stops a sweep."""

from __future__ import annotations

import dataclasses
import json
import math
import time
import traceback
from pathlib import Path
from typing import Any

from onward.data import Dataset, load_dataset
from onward.model import InitialModel, device_inputs, head_dataset, init_model
from onward.reference import apply_step, make_fixed, make_float, training_stream
from onward.rules import rule_module
from onward.spec import Spec
from onward.sweep.plan import Run

BP_DD_LEARNING_RATES = (1e-3, 1e-4, 1e-5)  # bp_dd picks its best: the mean cross-entropy diverges at FFzero's lr


def execute(run: Run, build_root: str) -> dict[str, Any]:
    """The row of `run`. Device runs build into <build_root>/<run_id> (their own folder: any number of runs side by
    side on one worker host, each QEMU on a port of its own) and verify every step bit for bit."""
    row: dict[str, Any] = {
        "run_id": run.run_id, "run_key": run.run_key, "name": run.name, "kind": run.kind, "target": run.target,
        "spec_hash": run.spec_hash, "code": run.code, "settings": json.dumps(run.settings), "status": "ok",
        "error": ""}
    start = time.perf_counter()
    try:
        spec = run.parse()
        data = load_dataset(spec)
        model = init_model(spec, data)
        row.update(describe(spec, model, data))
        row.update(measure(run, spec, model, data, Path(build_root) / run.run_id))
    except Exception as exc:
        row["status"] = "error"
        row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        row["traceback"] = traceback.format_exc()[-2000:]
    row["seconds"] = time.perf_counter() - start
    return row


def describe(spec: Spec, model: InitialModel, data: Dataset) -> dict[str, Any]:
    r = spec.rule
    extra = {"ffzero": "activation", "fgrad": "mode"}.get(r.name)  # the option the results table's rows differ in
    conv = "".join(f"c{c.channels}k{c.kernel}p{c.pool}-" for c in spec.conv)
    return {"rule": f"{r.name} ({getattr(r.options, extra)})" if extra else r.name, "data": spec.data.set,
            "task": data.task, "seed": spec.seed, "epochs": r.epochs, "stages": model.stages,
            "network": conv + "-".join(str(d) for d in model.dims), "directions": getattr(r.options, "directions", 1)}


def forward_evals(model: InitialModel, epochs: int) -> list[float]:
    """Cumulative dense-layer evaluations per training sample after each epoch of each stage (the rule's own
    count of one step, onward.rules.<rule>.forward_evals)."""
    per_step = rule_module(model.spec.rule.name).forward_evals
    total, out = 0.0, []
    for stage in range(model.stages):
        for _ in range(epochs):
            total += per_step(model, stage)
            out.append(total)
    return out


def fixed_curve(model: InitialModel, data: Dataset, every_epoch: bool) -> tuple[list[float], int]:
    """The fixed-point reference trained on the spec's stream: its test score after every epoch of every stage (or
    only at the end), and its saturation count."""
    ref = make_fixed(model)
    x_q = device_inputs(model, data.x_test)
    n_train, trained, curve = len(data.y_train), 0, []
    for step in training_stream(model, data, model.spec.rule.epochs):
        apply_step(ref, step)
        trained += step.kind == "train"
        if every_epoch and step.kind == "train" and trained % n_train == 0:
            curve.append(ref.score(x_q, data.y_test))
    return (curve or [ref.score(x_q, data.y_test)]), ref.saturations


def measure(run: Run, spec: Spec, model: InitialModel, data: Dataset, build_dir: Path) -> dict[str, Any]:
    epochs = spec.rule.epochs
    if run.kind == "rule":
        evals = forward_evals(model, epochs)
        out: dict[str, Any] = {"evals": evals[-1], "evals_curve": evals}
        if run.target == "float":
            out["curve"] = [float(s) for s in make_float(model).fit(head_dataset(model, data))]
        elif run.target == "fixed":
            out["curve"], out["saturations"] = fixed_curve(model, data, "curve" in run.record)
        else:
            out.update(on_device(run, model, data, build_dir))
        out["score"] = out["curve"][-1] if "curve" in out else out["score"]
        return out
    if run.kind == "bp_dd":
        return bp_dd(spec, model, data)
    if run.kind == "fgrad_projection":
        from onward.rules.fgrad import Float as ForwardGradientFloat

        curve = [float(s) for s in ForwardGradientFloat(model, combine="projection").fit(data)]
        evals = forward_evals(model, epochs)
        return {"rule": "fgrad (activity, float only)", "variant": "projection", "curve": curve, "score": curve[-1],
                "evals": evals[-1], "evals_curve": evals}
    from onward.learn.baselines import baseline

    net = baseline(model.weights, spec.rule.learning_rate, last_layer_only=run.kind == "last_layer")
    curve = [float(s) for s in net.fit(data, epochs, 1, spec.seed)]
    return {"rule": run.kind.replace("_", "-"), "curve": curve, "score": curve[-1], "evals": math.nan}


def on_device(run: Run, model: InitialModel, data: Dataset, build_dir: Path) -> dict[str, Any]:
    """Train on the target in lockstep with the fixed-point reference (every step's outputs and state digest
    compared; a mismatch raises and makes this run an error), then score both on the test set."""
    from onward.session import run_on_target

    result = run_on_target(model, data, run.target, build_dir, evaluate_test=True)
    out: dict[str, Any] = {"score": result.device_accuracy, "reference_score": result.ref_accuracy,
                           "saturations": result.saturations, "steps_per_s": result.steps_per_second,
                           "verify": "bit-exact", "train_steps": result.train_steps}
    if "report" in run.record and run.target != "native":
        from onward.report import collect_model

        figures = collect_model(model, data, run.target, build_dir)
        out.update({k: figures[k] for k in ("flash_bytes", "flash_without_weights_bytes", "ram_static_bytes",
                                            "stack_worst_bytes", "instructions_per_inference",
                                            "instructions_per_training_step")})
    return out


def bp_dd(spec: Spec, model: InitialModel, data: Dataset) -> dict[str, Any]:
    """FFzero's estimator at FFzero's budget (its epochs per layer = bp_dd's epochs over the whole network) with one
    global loss: the ablation of layer-local losses. Its best of three learning rates."""
    from onward.rules.ffzero import fixed as ffzero_fixed
    from onward.rules.ffzero.paper import GlobalDD

    best: tuple[float, float, float] | None = None
    for lr in BP_DD_LEARNING_RATES:
        cfg = dataclasses.replace(ffzero_fixed.float_config(spec, data.task), lr=lr)
        net = GlobalDD(cfg, data.input_dim, data.classes).fit(data.x_train, data.y_train)
        found = (float(net.score(data.x_test, data.y_test)), lr, net.cost.layer_evals / len(data.y_train))
        best = found if best is None or found[0] > best[0] else best
    assert best is not None
    return {"rule": "bp_dd", "variant": f"global loss, lr {best[1]:g}", "score": best[0], "curve": [best[0]],
            "evals": best[2]}
