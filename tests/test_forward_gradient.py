"""Forward gradients (onward.rules.fgrad): the float estimates against backpropagation, the
multi-tangent projection, learning, the fixed-point reference against the float one, and bad specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import make_spec
from onward import fixed
from onward.data import epoch_order, load_dataset
from onward.learn.baselines import baseline
from onward.rules import fgrad as fg
from onward.session import run_on_target
from onward.size import size_report
from onward.spec import SpecError
from onward.targets.build import build_firmware


def small(**rule: Any) -> tuple[Any, Any]:
    """A 5-4-3 network on synthetic data: 32 weights, 7 units."""
    spec = make_spec(model={"hidden": [4]}, data={"set": "synthetic", "features": 5, "classes": 3, "samples": 120},
                     rule={"name": "fgrad", "learning_rate": 0.05, "epochs": 1, **rule})
    data = load_dataset(spec)
    return fg.init_model(spec, data), data


def backprop_gradient(model: Any, x: np.ndarray, onehot: np.ndarray) -> list[np.ndarray]:
    """d(mean CE)/dW from the backpropagation baseline: one step with lr 1 moves W by -grad."""
    bp = baseline(model.weights, 1.0)
    bp.step(x, onehot)
    return [w0 - w1 for w0, w1 in zip(model.weights, bp.weights, strict=True)]


def relative_error(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    diff = np.concatenate([(g - w).ravel() for g, w in zip(got, want, strict=True)])
    return float(np.linalg.norm(diff) / np.linalg.norm(np.concatenate([w.ravel() for w in want])))


@pytest.mark.parametrize("mode, tangents", [("activity", 20000), ("weight", 40000)])
def test_the_forward_gradient_is_unbiased(mode: str, tangents: int) -> None:
    model, data = small(mode=mode)
    x, onehot = data.x_train[:3], np.eye(data.classes)[data.y_train[:3]]
    want = backprop_gradient(model, x, onehot)
    ref = fg.Float(model)
    ref.directions = tangents  # the mean over K tangents = the mean of K single-tangent estimates (spec: K <= 64)
    assert relative_error(ref.gradients(x, onehot), want) < 0.08
    one = fg.Float(model)
    assert relative_error(one.gradients(x, onehot), want) > 0.3  # a single tangent is far off: the test can fail


@pytest.mark.parametrize("mode, tangents", [("activity", 7), ("weight", 32), ("weight", 40)])
def test_the_projection_is_exact_once_the_tangents_span_the_space(mode: str, tangents: int) -> None:
    model, data = small(mode=mode, directions=tangents)
    x, onehot = data.x_train[:2], np.eye(data.classes)[data.y_train[:2]]
    got = fg.Float(model, combine="projection").gradients(x, onehot)
    assert relative_error(got, backprop_gradient(model, x, onehot)) < 1e-9


def test_the_projection_of_fewer_tangents_is_a_projection() -> None:
    """K < N: g = V (VᵀV)⁻¹ Vᵀ∇L is the orthogonal projection, so it keeps ∇L's component along V exactly."""
    rng = np.random.default_rng(0)
    v, grad = rng.standard_normal((3, 10)), rng.standard_normal(10)
    g = fg.combine_tangents(v, v @ grad, "projection")
    np.testing.assert_allclose(v @ g, v @ grad, atol=1e-12)
    np.testing.assert_allclose(fg.combine_tangents(v, v @ g, "projection"), g, atol=1e-12)  # idempotent
    assert np.linalg.norm(g) < np.linalg.norm(grad)


def digits(**rule: Any) -> tuple[Any, Any]:
    spec = make_spec(model={"hidden": [32]}, data={"set": "digits"},
                     rule={"name": "fgrad", "learning_rate": 0.003, "epochs": 2, **rule},
                     format={"activation_frac": 10, "weight_frac": 12})
    data = load_dataset(spec)
    return fg.init_model(spec, data), data


def test_float_learns_in_both_modes() -> None:
    model, data = digits()
    assert fg.Float(model).fit(data)[-1] > 0.5  # digits; chance is 0.1
    model, data = small(mode="weight", learning_rate=0.05, directions=4)
    flt = fg.Float(model)
    before = flt.score(data.x_test, data.y_test)
    assert flt.fit(data, epochs=10)[-1] > max(0.8, before + 0.3)  # 3 classes


@pytest.mark.parametrize("mode", ["activity", "weight"])
def test_fixed_step_follows_the_float_estimate_with_the_same_signs(mode: str) -> None:
    """One fixed-point step moves the weights by -lr g, g the float estimate from the device's own signs."""
    model, data = digits(mode=mode, learning_rate=0.5, directions=2)
    fmt, seed = model.spec.format, model.spec.seed
    ref = fg.Fixed(model)
    x_q, _ = fixed.to_q(data.x_train[0], fmt.activation_frac)
    ref.train(x_q, int(data.y_train[0]))
    moved = [fixed.from_q(w1 - w0, fmt.weight_frac) for w0, w1 in zip(model.weights_q, ref.weights, strict=True)]

    flt = fg.Float(model)
    flt.weights = [fixed.from_q(w, fmt.weight_frac) for w in model.weights_q]
    if mode == "activity":
        signs = [np.concatenate([fg.tangent_signs(seed, 0, i, k, n) for i, n in enumerate(model.dims[1:])])
                 for k in range(2)]
        flt.draw = lambda shape: np.array(signs, dtype=np.float64)[None]  # type: ignore[method-assign]
    else:
        signs = [np.concatenate([fg.weight_signs(seed, 0, i, k, w.size) for i, w in enumerate(model.weights_q)])
                 for k in range(2)]
        flt.draw = lambda shape: np.array(signs, dtype=np.float64)  # type: ignore[method-assign]
    x = fixed.from_q(x_q, fmt.activation_frac)[None]
    want = [-0.5 * g for g in flt.gradients(x, np.eye(data.classes)[data.y_train[:1]])]
    assert relative_error(moved, want) < 0.05
    assert ref.saturations == 0


def test_fixed_tracks_float_on_digits() -> None:
    model, data = digits(epochs=2)
    x_q = fixed.to_q(data.x_train, 10)[0]
    ref = fg.Fixed(model)
    for epoch in range(2):
        for i in epoch_order(model.spec.seed, epoch, len(data.y_train)):
            ref.train(x_q[i], int(data.y_train[i]))
    got = ref.score(fixed.to_q(data.x_test, 10)[0], data.y_test)
    want = fg.Float(model, distribution="rademacher").fit(data, epochs=2)[-1]
    assert got > 0.6 and abs(got - want) < 0.1


def test_tangents_are_regenerated_balanced_signs() -> None:
    s = fg.tangent_signs(7, 3, 1, 0, 4000)
    assert set(np.unique(s)) == {-1, 1} and abs(s.mean()) < 0.05
    np.testing.assert_array_equal(s, fg.tangent_signs(7, 3, 1, 0, 4000))
    for other in (fg.tangent_signs(7, 4, 1, 0, 4000), fg.tangent_signs(7, 3, 2, 0, 4000),
                  fg.tangent_signs(7, 3, 1, 1, 4000), fg.tangent_signs(8, 3, 1, 0, 4000)):
        assert abs(np.mean(s * other)) < 0.05  # step, layer, tangent and seed each give fresh signs


def test_bad_specs() -> None:
    with pytest.raises(SpecError, match="lr_frac"):  # the update shift 2 * 6 + 8 - 15 < 16
        make_spec(rule={"name": "fgrad", "mode": "weight", "learning_rate": 0.5},
                  format={"activation_frac": 6, "weight_frac": 15, "lr_frac": 8})
    with pytest.raises(SpecError, match="batch_size"):
        small(batch_size=4)
    with pytest.raises(SpecError, match="directions"):
        small(directions=0)
    with pytest.raises(SpecError, match=r"rule\.mode"):
        small(mode="activities")


def run_fgrad(mode: str, hidden: list[int], directions: int, fmt: dict[str, int], target: str, build: Path,
              steps: int) -> tuple[Any, int]:
    """Lockstep reference vs firmware (raises Mismatch at the first difference): the model, the saturations."""
    spec = make_spec(model={"hidden": hidden}, format=fmt, rule={
        "name": "fgrad", "mode": mode, "learning_rate": 0.2, "epochs": 1, "directions": directions})
    data = load_dataset(spec)
    model = fg.init_model(spec, data)
    run = run_on_target(model, data, target, build, steps=steps)
    assert run.train_steps == steps
    return model, run.saturations


SATURATING = {"activation_frac": 13, "weight_frac": 11}  # Q2.13 tangents and slopes: they saturate


@pytest.mark.parametrize("mode, hidden, directions, fmt", [
    ("activity", [9, 6], 3, SATURATING),
    ("activity", [], 2, {"activation_frac": 11, "weight_frac": 12}),  # no hidden layer
    ("weight", [9, 6], 3, SATURATING),
    ("weight", [7], 1, {"activation_frac": 11, "weight_frac": 12}),
])
def test_native_firmware_is_bit_exact(mode: str, hidden: list[int], directions: int, fmt: dict[str, int],
                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    _, saturations = run_fgrad(mode, hidden, directions, fmt, "native", tmp_path_factory.getbasetemp() / "fgrad",
                            150)
    assert fmt is not SATURATING or saturations > 0  # the saturating paths ran, and counted alike


@pytest.mark.qemu
def test_qemu_m4_firmware_is_bit_exact(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The Cortex-M4 DSP dense kernel in the tangent pass (even widths: the assembly core); the rule's buffers
    (model.ram, which sizes are checked against boards) are the ones the linker placed."""
    build = tmp_path_factory.getbasetemp() / "fgrad"
    for mode, steps in (("activity", 60), ("weight", 30)):
        model, saturations = run_fgrad(mode, [16, 8], 2, SATURATING, "qemu-m4", build, steps)
        assert saturations > 0
        symbols = size_report(build_firmware(model, "qemu-m4", build)).symbols  # cached: the same build
        assert {k: symbols[k] for k in model.ram} == model.ram

