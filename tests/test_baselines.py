"""The host baselines: backpropagation is a correct gradient, and both baselines learn."""

import numpy as np

from helpers import make_spec
from onward.data import Dataset, load_dataset
from onward.learn.baselines import baseline
from onward.model import init_model


def loss(b, x, target) -> float:
    out = b.forward(x)[-1]
    if b.regression:
        return float(np.mean(np.sum((out - target) ** 2, axis=1)))
    p = np.exp(out - out.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.sum(target * np.log(p), axis=1)))


def test_backprop_step_is_the_gradient() -> None:
    rng = np.random.default_rng(0)
    for regression in (False, True):
        outputs = 1 if regression else 3
        weights = [rng.normal(0, 0.5, (5, 4)), rng.normal(0, 0.5, (6, 5)), rng.normal(0, 0.5, (outputs, 6))]
        x = rng.normal(size=(7, 4))
        target = rng.normal(size=(7, 1)) if regression else np.eye(3)[rng.integers(0, 3, 7)]
        b = baseline(weights, learning_rate=1.0, regression=regression)
        b.step(x, target)
        for layer, w in enumerate(weights):
            analytic = w - b.weights[layer]  # lr = 1: the step is the gradient
            numeric = np.zeros_like(w)
            for idx in np.ndindex(w.shape):
                for sign in (1, -1):
                    probe = [v.copy() for v in weights]
                    probe[layer][idx] += sign * 1e-6
                    numeric[idx] += sign * loss(baseline(probe, 0.0, regression=regression), x, target) / 2e-6
            np.testing.assert_allclose(analytic, numeric, atol=1e-6)


def test_last_layer_only_leaves_the_hidden_layers_alone() -> None:
    spec = make_spec(model={"hidden": [16, 8]})
    data = load_dataset(spec)
    model = init_model(spec, data)
    b = baseline(model.weights, 0.05, last_layer_only=True)
    b.fit(data, epochs=2, batch_size=8, seed=1)
    assert all((a == w).all() for a, w in zip(b.weights[:-1], model.weights[:-1], strict=True))
    assert not (b.weights[-1] == model.weights[-1]).all()


def test_both_learn_digits_and_backprop_wins() -> None:
    spec = make_spec(data={"set": "digits"}, model={"hidden": [32]})
    data = load_dataset(spec)
    model = init_model(spec, data)
    bp = baseline(model.weights, 0.1).fit(data, epochs=5, batch_size=16, seed=1)[-1]
    last = baseline(model.weights, 0.1, last_layer_only=True).fit(data, epochs=5, batch_size=16, seed=1)[-1]
    assert bp > 0.93 and 0.5 < last < bp


def test_backprop_fits_a_regression_function() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(1200, 2))
    y = (np.sin(x[:, 0]) + np.cos(x[:, 1]) - 1.38) / 0.8  # f1, roughly onto [-1, 1]
    data = Dataset(x[:1000], y[:1000], x[1000:], y[1000:], classes=1, task="regression")
    weights = [rng.uniform(-1, 1, (32, 2)) * np.sqrt(3), rng.uniform(-1, 1, (1, 32)) * np.sqrt(6 / 32)]
    r2 = baseline(weights, 0.05, regression=True).fit(data, epochs=20, batch_size=16, seed=1)
    assert r2[0] < r2[-1] and r2[-1] > 0.9
