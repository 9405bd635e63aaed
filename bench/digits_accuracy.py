"""Digits (25 % stratified test split, 64-64-10, the spec's 100 epochs): float vs fixed-point test accuracy.

    python bench/digits_accuracy.py [--epochs N]

The fixed-point reference is bit-exact with the firmware (tests/test_verify.py, `onward verify`), so its
accuracy is the device's."""

from __future__ import annotations

import argparse
import time

from onward import fixed
from onward.paths import EXAMPLES
from onward.reference import apply_step, make_fixed, make_float, training_stream
from onward.session import prepare
from onward.spec import load_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="override the spec's epochs")
    args = parser.parse_args()
    rows = []
    for name in ("digits_pepita", "digits_mempepita"):
        spec = load_spec(EXAMPLES / f"{name}.toml")
        if args.epochs:
            spec = spec.with_epochs(args.epochs)
        data, model = prepare(spec)
        t0 = time.perf_counter()
        history = make_float(model).fit(data)
        t_float = time.perf_counter() - t0
        ref = make_fixed(model)
        t0 = time.perf_counter()
        for step in training_stream(model, data, spec.rule.epochs):
            apply_step(ref, step)
        t_fixed = time.perf_counter() - t0
        x_q, _ = fixed.to_q(data.x_test, spec.format.activation_frac)
        fixed_acc = ref.score(x_q, data.y_test)
        rows.append((spec.rule.name, spec.rule.epochs, 100 * history[-1], 100 * fixed_acc,
                     100 * (fixed_acc - history[-1]), ref.saturations, ref.steps / t_fixed,
                     ref.steps / t_float))
    header = ("rule", "epochs", "float acc %", "fixed acc %", "fixed - float (pp)", "saturations",
              "fixed ref steps/s", "float ref steps/s")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:+.2f} | {r[5]} | {r[6]:.0f} | {r[7]:.0f} |")


if __name__ == "__main__":
    main()
