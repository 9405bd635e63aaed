"""FFzero float reference: prototypes, the directional-derivative estimator, the local loss, the vote, learning."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import make_spec
from onward.data import load_dataset
from onward.rules.ffzero.paper import (
    Activation,
    FFzero,
    FFzeroConfig,
    GlobalDD,
    haar_orthogonal,
    hinge_loss,
    random_prototype,
    simplex_prototypes,
    vote,
)
from onward.rules.ffzero.zeroth_order import Distribution, black_box_pair_loss, dd_gradient, unit_directions


@pytest.mark.parametrize(("width", "classes"), [(100, 10), (4, 4), (16, 3)])
def test_simplex_prototypes_are_unit_with_equal_angles(width: int, classes: int) -> None:
    p = simplex_prototypes(np.random.default_rng(0), width, classes)
    assert p.shape == (classes, width)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-12)
    gram = p @ p.T
    off = gram[~np.eye(classes, dtype=bool)]
    np.testing.assert_allclose(off, -1.0 / (classes - 1), atol=1e-12)


def test_simplex_needs_width_at_least_classes_and_rotation_is_proper() -> None:
    with pytest.raises(ValueError, match="width 5 cannot hold 10"):
        simplex_prototypes(np.random.default_rng(0), 5, 10)
    q = haar_orthogonal(np.random.default_rng(1), 7)
    np.testing.assert_allclose(q.T @ q, np.eye(7), atol=1e-12)
    assert np.linalg.det(q) > 0
    np.testing.assert_allclose(np.linalg.norm(random_prototype(np.random.default_rng(2), 9)), 1.0)


@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_directions_have_unit_norm(distribution: Distribution) -> None:
    u = unit_directions(np.random.default_rng(0), 5, 33, distribution)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0)
    if distribution == "rademacher":
        np.testing.assert_allclose(np.abs(u), 1.0 / np.sqrt(33))


@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_dd_estimate_is_unbiased_on_a_quadratic(distribution: Distribution) -> None:
    rng = np.random.default_rng(0)
    d = 8
    a = rng.normal(size=(d, d))
    a = a @ a.T + np.eye(d)
    b = rng.normal(size=d)
    theta = rng.normal(size=d)
    true = a @ theta + b

    def pair(dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # L(θ ± εu_k) for a batch of directions
        def loss(t: np.ndarray) -> np.ndarray:
            return 0.5 * np.einsum("ki,ij,kj->k", t, a, t) + t @ b
        return loss(theta + 1e-3 * dirs), loss(theta - 1e-3 * dirs)

    # (d/K) Σ δ_k u_k with K = 40000 is the mean of 40000 single-direction estimates
    mean = dd_gradient(pair, unit_directions(rng, 40_000, d, distribution), 1e-3)
    assert np.linalg.norm(mean - true) < 0.05 * np.linalg.norm(true)
    # a single estimate is the projection on u scaled by d: unbiased, not accurate
    one = dd_gradient(black_box_pair_loss(lambda t: float(0.5 * t @ a @ t + t @ b), theta, 1e-3),
                      unit_directions(rng, 1, d, distribution), 1e-3)
    assert one.shape == (d,)


def test_hinge_loss_on_hand_made_cases() -> None:
    protos = np.eye(3)  # s_c = ẑ_c
    # s = (1, 0, 0), y = 0: only the c = y term, m
    assert hinge_loss(np.array([[2.0, 0, 0]]), np.array([0]), protos, 0.3) == pytest.approx(0.3)
    # s = (0, 1, 0), y = 0: 0.3 + (0.3 + 1) + 0.3
    assert hinge_loss(np.array([[0.0, 5, 0]]), np.array([0]), protos, 0.3) == pytest.approx(1.9)
    # s = (0.6, 0.8, 0), y = 1: max(0, 0.3 + 0.6 - 0.8) + 0.3 + max(0, 0.3 - 0.8)
    assert hinge_loss(np.array([[3.0, 4, 0]]), np.array([1]), protos, 0.3) == pytest.approx(0.4)
    # summed over the batch, and over leading axes independently
    z = np.array([[2.0, 0, 0], [0, 5, 0], [3, 4, 0]])
    y = np.array([0, 0, 1])
    assert hinge_loss(z, y, protos, 0.3) == pytest.approx(2.6)
    np.testing.assert_allclose(hinge_loss(np.stack([z, z]), y, protos, 0.3), [2.6, 2.6])


def test_vote_majority_with_ties_to_the_deepest_layer() -> None:
    #            sample:  0  1  2  3
    preds = np.array([[0, 1, 2, 5],   # layer 0
                      [1, 1, 0, 5],   # layer 1
                      [2, 0, 0, 4]])  # layer 2 (deepest)
    np.testing.assert_array_equal(vote(preds), [2, 1, 0, 5])
    # [a, b, b, a]: a tie, the deepest layer voted a; [0, 0, 1, 1, 2]: the deepest voter (2) is not tied, so 1
    np.testing.assert_array_equal(vote(np.array([[3], [7], [7], [3]])), [3])
    np.testing.assert_array_equal(vote(np.array([[0], [0], [1], [1], [2]])), [1])


def test_layer_step_perturbation_is_exact_for_a_linear_layer() -> None:
    """z(θ ± εu) = z ± ε(U h + u_b): FFzero's fast pair loss equals the black-box one."""
    model = FFzero(FFzeroConfig(hidden=(6,), out_width=5), input_dim=4, classes=3)
    layer = model.layers[0]
    rng = np.random.default_rng(0)
    h, y = rng.normal(size=(7, 4)), rng.integers(0, 3, size=7)
    dirs = unit_directions(rng, 3, layer.theta.size, "rademacher")
    eps = 1e-3
    theta = layer.theta.copy()

    def loss_at(t: np.ndarray) -> float:
        layer.theta[:] = t
        return float(model.local_loss(layer, layer.forward(h), y))

    ref = dd_gradient(black_box_pair_loss(loss_at, theta, eps), dirs, eps)
    layer.theta[:] = theta
    z, dz = layer.forward(h), eps * layer.response(h, dirs)
    fast = dd_gradient(lambda _: (model.local_loss(layer, z + dz, y), model.local_loss(layer, z - dz, y)), dirs, eps)
    np.testing.assert_allclose(fast, ref, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_ffzero_learns_the_synthetic_set(activation: Activation) -> None:
    data = load_dataset(make_spec(data={"features": 16, "classes": 4, "samples": 400}))
    cfg = FFzeroConfig(hidden=(16,), epochs=6, batch_size=4, activation=activation, distribution="rademacher")
    model = FFzero(cfg, data.input_dim, data.classes)
    before = model.score(data.x_test, data.y_test)
    model.fit(data.x_train, data.y_train)
    after = model.score(data.x_test, data.y_test)
    assert after > 0.75 and after > before + 0.3, (before, after)  # chance is 0.25


def test_ffzero_regression_improves_r2() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(1200, 2))
    y = np.sin(x[:, 0]) + np.cos(x[:, 1])
    model = FFzero(FFzeroConfig(hidden=(16,), epochs=3, batch_size=4, task="regression"), 2, 1)
    before = model.score(x[1000:], y[1000:])
    model.fit(x[:1000], y[:1000])
    after = model.score(x[1000:], y[1000:])
    assert after > 0.6 and after > before + 0.5, (before, after)


def test_forward_evaluation_accounting_matches_bp_dd_at_equal_epochs() -> None:
    """FFzero: 2K·E per layer and sample plus one propagation per frozen layer; bp_dd: 2K·E·L."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 5)), rng.integers(0, 3, size=20)
    cfg = FFzeroConfig(hidden=(4, 4), epochs=2, directions=3, batch_size=8)
    ff = FFzero(cfg, 5, 3).fit(x, y)
    bp = GlobalDD(cfg, 5, 3).fit(x, y)
    layers, k, e = 3, 3, 2
    assert ff.cost.layer_evals == 20 * (2 * k * e * layers + layers - 1)
    assert bp.cost.layer_evals == 20 * 2 * k * e * layers
    macs = 5 * 4 + 4 * 4 + 4 * 3
    assert bp.cost.macs == 20 * 2 * k * e * macs
    assert ff.cost.macs == 20 * (2 * k * e * macs + 5 * 4 + 4 * 4)
    assert ff.cost.presentations == 20 * e * layers and bp.cost.presentations == 20 * e
