"""The results table: rule x data set x {float reference, fixed-point reference, device (emulated Cortex-M4)}.

    python3 bench/results.py [--no-device] [--jobs N] [--only NAME ...] [--seed S] [--epochs E]

Every row is a spec (an example, or an example with another data set). For each: the float reference
(`make_float(model).fit`), the fixed-point reference and the device. The device trains in lockstep with the
fixed-point reference on qemu-m4 over the emulated UART, every step compared bit for bit (onward.session), so its
column is measured, not copied; with --no-device the fixed-point reference runs alone. Scores are test accuracy
(%) or R² (regression). Rows without a device column are host-only: the global bp_dd ablation (the same
directional-derivative estimator on all parameters with one global loss, at FFzero's budget of forward
evaluations) and the backpropagation / last-layer-only baselines.

"forward evals / sample": dense-layer evaluations per training sample over the whole training, as the device
(or the float reference, for host-only rows) does them. A perturbed pass of FFzero counts as one evaluation
(it is additions only on the device); a forward-gradient pass counts two (value and tangent).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from onward import fixed
from onward.data import Dataset, load_dataset
from onward.learn.baselines import baseline
from onward.model import InitialModel, init_model
from onward.paths import EXAMPLES
from onward.reference import apply_step, make_fixed, make_float, training_stream
from onward.rules.ffzero import fixed as ffzero_fixed
from onward.rules.ffzero.paper import GlobalDD
from onward.session import run_on_target
from onward.spec import Spec, parse_spec

DEVICE = "qemu-m4"
BP_DD_LEARNING_RATES = (1e-3, 1e-4, 1e-5)


@dataclass(frozen=True)
class Row:
    name: str
    example: str  # examples/<example>.toml
    overrides: dict[str, dict[str, Any]] | None = None  # section -> keys replaced
    # "rule" (float, fixed, device) | host only: "bp_dd", "fgrad_projection", "backprop", "last_layer"
    kind: str = "rule"


ROWS = [
    Row("ffzero-digits", "digits_ffzero"),
    Row("bp_dd-digits", "digits_ffzero", kind="bp_dd"),
    Row("ffzero-digits-cnn", "digits_ffzero_cnn"),
    Row("ffzero-mnist1d-cnn", "mnist1d_ffzero_cnn"),
    Row("ffzero-mnist1d-mlp", "mnist1d_ffzero_cnn", {"model": {"conv": []}}),
    Row("ffzero-f1", "f1_ffzero_regression"),
    Row("ffzero-f2", "f1_ffzero_regression", {"data": {"set": "f2"}}),
    Row("ff-digits", "digits_ff"),
    Row("fgrad-activity-digits", "digits_fgrad"),
    Row("fgrad-weight-digits", "digits_fgrad", {"rule": {"mode": "weight", "learning_rate": 0.0003}}),
    Row("fgrad-weight-k16-digits", "digits_fgrad",
        {"rule": {"mode": "weight", "directions": 16, "learning_rate": 0.001}}),
    Row("fgrad-activity-k16-digits", "digits_fgrad", {"rule": {"directions": 16, "learning_rate": 0.01}}),
    Row("fgrad-projection-k16-digits", "digits_fgrad", {"rule": {"directions": 16, "learning_rate": 0.03}},
        kind="fgrad_projection"),
    Row("pepita-digits", "digits_pepita"),
    Row("mempepita-digits", "digits_mempepita"),
    Row("backprop-digits", "digits_pepita", kind="backprop"),
    Row("last-layer-digits", "digits_pepita", kind="last_layer"),
]


def row_spec(row: Row, epochs: int | None = None, seed: int | None = None) -> Spec:
    raw = tomllib.loads((EXAMPLES / f"{row.example}.toml").read_text())
    if seed is not None:
        raw["seed"] = seed
    for section, keys in (row.overrides or {}).items():
        raw[section] = {**raw.get(section, {}), **keys}
    raw["name"] = row.name.replace("-", "_")
    spec = parse_spec(raw, f"{row.example}.toml + {row.overrides}")
    return spec.with_epochs(epochs) if epochs else spec


def forward_evals_per_step(model: InitialModel) -> Callable[[int], float]:
    """Dense-layer evaluations of one training step, as a function of the stage (FFzero's prefix grows)."""
    r, layers = model.spec.rule.options, model.num_layers
    per_rule: dict[str, Callable[[int], float]] = {
        "pepita": lambda s: layers + (layers - 1),  # pass 1, then pass 2 through the hidden layers
        "mempepita": lambda s: layers + 2 * (layers - 1),  # error pass, clean and modulated passes
        "ffzero": lambda s: s + 1 + r.directions,  # frozen prefix, the clean layer, K perturbed passes
        "ff": lambda s: 2 * layers,  # positive and negative pass
        "fgrad": lambda s: 2 * layers * r.directions,  # value and tangent, per tangent
    }
    return per_rule[r.name]


def forward_evals(model: InitialModel, epochs: int) -> float:
    per_step = forward_evals_per_step(model)
    return epochs * sum(per_step(stage) for stage in range(model.stages))


def run_row(row: Row, device: bool, build_dir: Path, epochs: int | None, seed: int | None) -> dict[str, Any]:
    spec = row_spec(row, epochs, seed)
    data = load_dataset(spec)
    out: dict[str, Any] = {"name": row.name, "rule": rule_label(spec), "data": spec.data.set,
                           "task": data.task, "epochs": spec.rule.epochs}
    start = time.perf_counter()
    if row.kind == "rule":
        model = init_model(spec, data)
        k = getattr(spec.rule.options, "directions", 1)
        out["network"] = network(spec, model) + (f", K = {k}" if k > 1 else "")
        out["float"] = make_float(model).fit(data)[-1]
        if device:
            run = run_on_target(model, data, DEVICE, build_dir, evaluate_test=True)
            out["fixed"], out["device"] = run.ref_accuracy, run.device_accuracy
            out["device_steps_per_s"] = run.steps_per_second
        else:
            out["fixed"] = fixed_score(model, data)
        out["evals"] = forward_evals(model, spec.rule.epochs)
        out["epochs"] = f"{spec.rule.epochs}" + (f" x {model.stages} layers" if model.stages > 1 else "")
    elif row.kind == "bp_dd":
        # FFzero's estimator and budget (its epochs per layer = bp_dd's epochs over the whole net), one global
        # loss; its own best of three learning rates (the mean cross-entropy diverges at FFzero's at batch 1)
        model = init_model(spec, data)
        best = None
        for lr in BP_DD_LEARNING_RATES:
            cfg = dataclasses.replace(ffzero_fixed.float_config(spec, data.task), lr=lr)
            net = GlobalDD(cfg, data.input_dim, data.classes).fit(data.x_train, data.y_train)
            found = (net.score(data.x_test, data.y_test), lr, net.cost.layer_evals / len(data.y_train))
            best = found if best is None or found[0] > best[0] else best
        assert best is not None
        out["network"] = f"{network(spec, model)}, global loss, lr {best[1]:g}"
        out["rule"], out["float"], out["evals"] = "bp_dd", best[0], best[2]
    elif row.kind == "fgrad_projection":
        from onward.rules.fgrad import Float as ForwardGradientFloat

        model = init_model(spec, data)
        out["network"] = f"{network(spec, model)}, K = {spec.rule.options.directions}, projection"
        out["rule"] = "fgrad (activity, float only)"
        out["float"] = ForwardGradientFloat(model, combine="projection").fit(data)[-1]
        out["evals"] = forward_evals(model, spec.rule.epochs)
    else:
        model = init_model(spec, data)
        net = baseline(model.weights, spec.rule.learning_rate, last_layer_only=row.kind == "last_layer")
        out["network"] = network(spec, model)
        out["rule"] = row.kind.replace("_", "-")
        out["float"] = net.fit(data, spec.rule.epochs, 1, spec.seed)[-1]
        out["evals"] = math.nan  # not forward-only
    out["seconds"] = time.perf_counter() - start
    return out


def rule_label(spec: Spec) -> str:
    r = spec.rule
    extra = {"ffzero": "activation", "fgrad": "mode"}.get(r.name)  # the option the table's rows differ in
    return f"{r.name} ({getattr(r.options, extra)})" if extra else r.name


def network(spec: Spec, model: InitialModel) -> str:
    conv = "".join(f"c{c.channels}k{c.kernel}p{c.pool}-" for c in spec.conv)
    return conv + "-".join(str(d) for d in model.dims)


def fixed_score(model: InitialModel, data: Dataset) -> float:
    ref = make_fixed(model)
    for step in training_stream(model, data, model.spec.rule.epochs):
        apply_step(ref, step)
    x_q, _ = fixed.to_q(data.x_test, model.spec.format.activation_frac)
    return ref.score(x_q, data.y_test)


def fmt_score(value: float | None, task: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.3f}" if task == "regression" else f"{100 * value:.1f} %"


def print_table(results: list[dict[str, Any]], command: str) -> None:
    print(f"`{command}`\n")
    header = ("rule", "data set", "network", "epochs", "forward evals / sample", "float", "fixed point",
              f"device ({DEVICE})", "fixed - float")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results:
        task = r["task"]
        gap = "—"
        if "fixed" in r:
            d = r["fixed"] - r["float"]
            gap = f"{d:+.3f}" if task == "regression" else f"{100 * d:+.1f} pp"
        evals = "—" if math.isnan(r["evals"]) else f"{r['evals']:.0f}"
        print(f"| {r['rule']} | {r['data']} | {r['network']} | {r['epochs']} | {evals} | "
              f"{fmt_score(r['float'], task)} | {fmt_score(r.get('fixed'), task)} | "
              f"{fmt_score(r.get('device'), task)} | {gap} |")
    print("\nScores: test accuracy, or R² on the test set (regression). Seconds per row: "
          + ", ".join(f"{r['name']} {r['seconds']:.0f}" for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-device", action="store_true", help="skip the emulated device (fixed point on the host)")
    parser.add_argument("--jobs", type=int, default=2, help="rows run in parallel (default 2)")
    parser.add_argument("--only", nargs="*", default=None, help="row names to run")
    parser.add_argument("--epochs", type=int, default=None, help="override every spec's epochs (a quick look)")
    parser.add_argument("--seed", type=int, default=None, help="override every spec's seed (split, init, order)")
    args = parser.parse_args()
    rows = [r for r in ROWS if args.only is None or r.name in args.only]
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_row, r, not args.no_device, Path(tmp), args.epochs, args.seed) for r in rows]
        results = []
        for f in futures:
            results.append(f.result())
            print(f"done: {results[-1]['name']} ({results[-1]['seconds']:.0f} s)", file=sys.stderr, flush=True)
    print_table(results, "python3 bench/" + " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
