"""The references: MEMPEPITA learns PEPITA's weights exactly; fixed point tracks float; both learn."""

import numpy as np

from helpers import make_spec
from onward import fixed
from onward.codegen.c import generate_c
from onward.data import load_dataset
from onward.model import init_model
from onward.reference import FixedReference, apply_step, make_fixed, make_float, parse_state, training_stream


def trained_fixed(rule: str, epochs: int = 2) -> FixedReference:
    spec = make_spec(rule={"name": rule}, model={"hidden": [10, 7, 5]})
    data = load_dataset(spec)
    ref = make_fixed(init_model(spec, data))
    for step in training_stream(ref.model, data, epochs):
        apply_step(ref, step)
    return ref


def test_mempepita_learns_pepitas_weights_bit_for_bit() -> None:
    a, b = trained_fixed("pepita"), trained_fixed("mempepita")
    assert a.state_bytes() == b.state_bytes()
    assert a.steps == b.steps > 0


def test_mempepita_float_equals_pepita_float() -> None:
    accs, weights = [], []
    for rule in ("pepita", "mempepita"):
        spec = make_spec(rule={"name": rule}, model={"hidden": [10, 7]})
        data = load_dataset(spec)
        ref = make_float(init_model(spec, data))
        accs.append(ref.fit(data, epochs=2))
        weights.append(ref.weights)
    assert accs[0] == accs[1]
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_fixed_point_tracks_float_and_both_learn() -> None:
    spec = make_spec(rule={"epochs": 5})
    data = load_dataset(spec)
    model = init_model(spec, data)
    float_acc = make_float(model).fit(data)[-1]
    ref = make_fixed(model)
    for step in training_stream(model, data, spec.rule.epochs):
        apply_step(ref, step)
    x_q, _ = fixed.to_q(data.x_test, spec.format.activation_frac)
    fixed_acc = ref.score(x_q, data.y_test)
    assert float_acc > 0.8 and abs(fixed_acc - float_acc) <= 0.05


def test_state_image_round_trips() -> None:
    ref = trained_fixed("pepita", epochs=1)
    state = parse_state(ref.model, ref.state_bytes())
    assert state.steps == ref.steps and state.lr_q == ref.lr_q
    for a, b in zip(state.weights, ref.weights, strict=True):
        assert (a == b).all()


def test_codegen_is_deterministic_and_hash_follows_the_model() -> None:
    spec = make_spec()
    data = load_dataset(spec)
    a, b = generate_c(init_model(spec, data)), generate_c(init_model(spec, data))
    assert a.header == b.header and a.source == b.source
    other = generate_c(init_model(make_spec(seed=4), data))
    assert other.model_hash != a.model_hash
    assert "malloc" not in a.source + a.header
