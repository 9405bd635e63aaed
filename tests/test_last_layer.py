"""Last-layer-only SGD (onward.rules.last_layer, firmware/src/rule_last_layer.c): only the output layer learns,
fixed point tracks float, and the device is bit-exact with and without hidden layers. (The matrix and the property
tests run it on every target with every other rule.)"""

from pathlib import Path

import numpy as np

from helpers import make_spec
from onward import fixed
from onward.data import load_dataset
from onward.model import init_model
from onward.reference import apply_step, make_fixed, make_float, training_stream
from onward.session import run_on_target


def trained(hidden: list[int], epochs: int = 4) -> tuple:
    spec = make_spec(rule={"name": "last_layer", "learning_rate": 0.05, "epochs": epochs}, model={"hidden": hidden})
    data = load_dataset(spec)
    model = init_model(spec, data)
    ref = make_fixed(model)
    for step in training_stream(model, data, epochs):
        apply_step(ref, step)
    return spec, data, model, ref


def test_only_the_output_layer_learns() -> None:
    _, _, model, ref = trained([16, 12])
    assert ref.steps > 0
    for layer in range(model.num_layers - 1):
        assert np.array_equal(ref.weights[layer], model.weights_q[layer]), f"hidden layer {layer} moved"
    assert not np.array_equal(ref.weights[-1], model.weights_q[-1])


def test_fixed_point_tracks_float_and_both_learn() -> None:
    spec, data, model, ref = trained([16], epochs=6)
    x_q, _ = fixed.to_q(data.x_test, spec.format.activation_frac)
    fixed_score = ref.score(x_q, data.y_test)
    float_score = make_float(model).fit(data, epochs=6)[-1]
    chance = 1 / data.classes
    assert float_score > chance + 0.3 and fixed_score > chance + 0.3
    assert abs(fixed_score - float_score) <= 0.06


def test_device_bit_exact_with_and_without_hidden_layers(tmp_path: Path) -> None:
    for hidden in ([], [9, 7]):
        spec = make_spec(name=f"ll_{len(hidden)}", rule={"name": "last_layer", "learning_rate": 0.5},
                         model={"hidden": hidden})
        data = load_dataset(spec)
        run = run_on_target(init_model(spec, data), data, "native", tmp_path, steps=150)
        assert run.train_steps == 150


def test_random_shapes_and_formats_bit_exact(tmp_path: Path) -> None:
    """Random depths (0-3 hidden layers), widths, data shapes, formats and learning rates, on the native target."""
    rng = np.random.default_rng(11)
    for n in range(8):
        hidden = [int(v) for v in rng.integers(1, 40, size=int(rng.integers(0, 4)))]
        spec = make_spec(name=f"llr{n}", seed=int(rng.integers(0, 2**32)), model={"hidden": hidden},
                         data={"features": int(rng.integers(1, 30)), "classes": int(rng.integers(2, 9)),
                               "samples": 120},
                         rule={"name": "last_layer", "learning_rate": float(rng.choice([0.01, 0.1, 1.0]))},
                         format={"activation_frac": int(rng.integers(9, 13)), "weight_frac": int(rng.integers(10, 13))})
        data = load_dataset(spec)
        assert run_on_target(init_model(spec, data), data, "native", tmp_path, steps=90).train_steps == 90
