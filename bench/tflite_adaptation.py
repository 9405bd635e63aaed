"""On-device adaptation of an imported .tflite model: the digits CNN (examples/tflite/train_digits_cnn.py,
trained on plain digits) meets shifted digits; its frozen feature extractor stays, a head learns forward-only.

    python3 bench/tflite_adaptation.py [--shift invert] [--seeds 0 1 2] [--json]

For the shift: the original model's test accuracy (its own classifier, onward's int8 reference = LiteRT), then
the head's settings searched on a validation split (the last fifth of the training split; never the test set):
the cut (the 128 pooled conv features, or the 32 of the first FULLY_CONNECTED) x the learning rate; the chosen
one retrained on the whole training split, test accuracy of the fixed-point reference (the device's, bit for
bit: `onward verify examples/tflite/digits_inverted_head.toml --target qemu-m4`), mean ± sd over the seeds. Each
seed is a data split: the CNN is retrained on that split's training part (train_digits_cnn.build), so that no
test digit was ever seen by the extractor; the search runs on seed 0, the example's model."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from itertools import product
from pathlib import Path

import numpy as np

from onward.data import Dataset, load_dataset
from onward.model import device_inputs, init_model
from onward.reference import apply_step, make_fixed, training_stream
from onward.spec import Spec, load_spec
from onward.tflite import graph, interpret

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "tflite" / "digits_inverted_head.toml"
CUTS = {"pooled conv features (128)": 6, "first FULLY_CONNECTED (32)": 9}  # tensors of digits_cnn.tflite
LEARNING_RATES = [0.01, 0.02, 0.05]


def accuracy(spec: Spec, data: Dataset) -> float:
    """Train the spec's head on data's training split (its epochs); the fixed-point reference's test accuracy."""
    model = init_model(spec, data)
    ref = make_fixed(model)
    for step in training_stream(model, data, spec.rule.epochs):
        apply_step(ref, step)
    x = device_inputs(model, data.x_test)
    return ref.score(x, data.y_test)


def validation_split(data: Dataset) -> Dataset:
    n = len(data.y_train) * 4 // 5
    return replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n], x_test=data.x_train[n:],
                   y_test=data.y_train[n:])


def original_accuracy(spec: Spec) -> float:
    """The imported model's own classifier on the spec's (shifted) test split: onward's int8 reference."""
    g = graph.read(spec.frozen.tflite)
    data = load_dataset(spec)
    x = device_inputs(init_model(spec, data), data.x_test).reshape(-1, *g.tensor(g.inputs[0]).shape[1:])
    return float(np.mean(interpret.run(g, x).argmax(axis=1) == data.y_test))


def with_model_of_seed(spec: Spec, seed: int, folder: Path) -> Spec:
    """The spec on split `seed`, its frozen model the CNN trained on that split's training part."""
    if seed == 0:
        return spec
    import importlib.util

    loader = importlib.util.spec_from_file_location("train_digits_cnn", SPEC.parent / "train_digits_cnn.py")
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    path = folder / f"digits_cnn_seed{seed}.tflite"
    path.write_bytes(module.build(seed=seed)[0])
    return replace(spec, seed=seed, frozen=replace(spec.frozen, tflite=str(path)))


def run(shift: str, seeds: list[int]) -> dict[str, object]:
    import tempfile

    base = load_spec(SPEC)
    base = replace(base, data=replace(base.data, shift=shift))
    search = []
    for (cut_name, cut), lr in product(CUTS.items(), LEARNING_RATES):
        spec = replace(base, frozen=replace(base.frozen, cut=cut), rule=replace(base.rule, learning_rate=lr))
        search.append({"cut": cut_name, "tensor": cut, "lr": lr,
                       "validation": accuracy(spec, validation_split(load_dataset(spec)))})
    best = max(search, key=lambda r: float(r["validation"]))  # type: ignore[arg-type]
    chosen = replace(base, frozen=replace(base.frozen, cut=int(best["tensor"])),  # type: ignore[call-overload]
                     rule=replace(base.rule, learning_rate=float(best["lr"])))  # type: ignore[arg-type]
    originals, tests = [], []
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            spec = with_model_of_seed(chosen, seed, Path(folder))
            originals.append(original_accuracy(spec))
            tests.append(accuracy(spec, load_dataset(spec)))
    return {"shift": shift, "original": originals, "search": search, "chosen": best, "test": tests}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shift", default="invert", choices=["invert", "rotate", "noise"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = run(args.shift, args.seeds)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print("$ python3 " + " ".join(sys.argv) + "\n")
    originals = np.array(r["original"]) * 100  # type: ignore[arg-type]
    each = ", ".join(f"{t:.1f}" for t in originals)
    print(f"digits, {r['shift']}: the original int8 model (its own classifier), test accuracy over seeds "
          f"{args.seeds}: {originals.mean():.1f} ± {originals.std():.1f} % ({each})\n")
    print("| cut | learning rate | validation accuracy |\n|---|---|---|")
    for row in r["search"]:  # type: ignore[union-attr]
        print(f"| {row['cut']} | {row['lr']} | {100 * row['validation']:.1f} % |")
    tests = np.array(r["test"]) * 100  # type: ignore[arg-type]
    best = r["chosen"]
    print(f"\nchosen: {best['cut']}, lr {best['lr']}; the head relearned (PEPITA, fixed point = the device), test "  # type: ignore[index]
          f"accuracy over seeds {args.seeds}: {tests.mean():.1f} ± {tests.std():.1f} % "
          f"({', '.join(f'{t:.1f}' for t in tests)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
