"""FFzero in fixed point (onward.rules.ffzero.fixed): the integer pieces against their float meaning, the fixed
reference against the float one, and firmware/src/rule_ffzero.c against the fixed reference, bit for bit."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import make_spec
from onward import fixed
from onward.codegen.c import static_ram
from onward.data import Dataset, load_dataset
from onward.nn import conv
from onward.reference import apply_step, predict, training_stream
from onward.rules.ffzero import fixed as fz
from onward.rules.ffzero.paper import FFzero, hinge_loss, vote
from onward.rules.ffzero.zeroth_order import dd_gradient
from onward.session import run_on_target
from onward.size import size_report
from onward.spec import Spec, SpecError
from onward.targets.build import build_firmware


def ffzero_spec(task: str = "classification", weight_frac: int = 12, **rule: Any) -> Spec:
    data = ({"set": "synthetic", "features": 10, "classes": 4, "samples": 120} if task == "classification"
            else {"set": "f1", "samples": 120})
    return make_spec(model={"hidden": [12, 8]}, data=data,
                     rule={"name": "ffzero", "learning_rate": 1e-3, "epochs": 1, **rule},
                     format={"activation_frac": 11, "weight_frac": weight_frac})


# --- the integer pieces ----------------------------------------------------------------------------------

def test_rademacher_signs_are_bits_of_the_counter_prng() -> None:
    key = fixed.derive(7, 3)
    r = fz.rademacher(key, 70)
    words = [int(w) for w in fixed.rand(key, np.arange(3))]
    assert [1 if (words[j // 32] >> (j % 32)) & 1 else -1 for j in range(70)] == r.tolist()
    assert abs(fz.rademacher(key, 100_000).mean()) < 0.01
    assert fz.direction_key(1, 5, 0, 0) != fz.direction_key(1, 5, 0, 1) != fz.direction_key(1, 5, 1, 0)


@pytest.mark.parametrize(("fan_in", "fan_out"), [(7, 5), (64, 3), (65, 40), (100, 2)])
def test_dense_directions_start_every_row_at_a_word(fan_in: int, fan_out: int) -> None:
    """Row o's input signs are bits of rand(key, o·wpr + i // 32), the biases' follow all rows, the padding is 0."""
    key = fixed.derive(9, 1)
    r = fz.dense_directions(key, fan_in, fan_out)
    wpr = -(-fan_in // 32)
    assert r.shape == (fan_out, fz.row_stride(fan_in)) and fz.row_stride(fan_in) % 2 == 0
    for o in range(fan_out):
        words = [int(w) for w in fixed.rand(key, o * wpr + np.arange(wpr))]
        assert [1 if (words[i // 32] >> (i % 32)) & 1 else -1 for i in range(fan_in)] == r[o, :fan_in].tolist()
        bias = int(fixed.rand(key, fan_out * wpr + o // 32)[()])
        assert r[o, fan_in] == (1 if (bias >> (o % 32)) & 1 else -1)
    assert not r[:, fan_in + 1:].any()


@pytest.mark.parametrize("perturbation", [0, 3])
def test_pairs_are_the_losses_of_the_perturbed_block(perturbation: int) -> None:
    """A ± (P << p) is exactly the accumulator of W ± 2^p r: the perturbed weights are never formed."""
    rng = np.random.default_rng(0)
    block = fz.DenseBlock(7, 5, act_frac=11)
    w = rng.integers(-3000, 3000, size=(5, 8))
    h = rng.integers(-2048, 2048, size=7)
    r = fz.dense_directions(99, 7, 5)
    ((zp, zm),) = block.pairs(block.accumulate(w, h), [block.respond(r, h)], perturbation)
    np.testing.assert_array_equal(zp, block.accumulate(w + (r << perturbation), h))
    np.testing.assert_array_equal(zm, block.accumulate(w - (r << perturbation), h))
    # the bias is the last column, on the input 1.0 = 2^af
    np.testing.assert_array_equal(block.accumulate(w, h), w[:, :7] @ h + (w[:, 7] << 11))


@pytest.mark.parametrize("scale", [0, 1, 2**-20, 2**10, 2**30])
def test_normalise_keeps_24_bits_with_one_common_shift(scale: float) -> None:
    rng = np.random.default_rng(1)
    a = np.round(rng.normal(size=9) * 2**20 * scale).astype(np.int64)
    b = a // 3
    na, nb = fz.rescale([a, b])
    if scale == 0:
        assert not na.any() and not nb.any()
        return
    assert int(np.abs(na).max()).bit_length() == fz.Z_BITS
    np.testing.assert_allclose(nb / np.abs(na).max(), b / np.abs(a).max(), atol=2**-22)


def test_cosines_and_losses_match_the_float_loss() -> None:
    rng = np.random.default_rng(2)
    protos = np.linalg.qr(rng.normal(size=(6, 6)))[0][:4]  # 4 unit rows
    protos_q = fixed.to_q(protos, fz.PROTO_FRAC)[0]
    for _ in range(20):
        z = rng.normal(size=6) * 10.0 ** rng.uniform(-3, 3)
        (zq,) = fz.rescale([np.round(z * 2**20).astype(np.int64)])
        z = zq.astype(np.float64)  # what the integer z holds (a small z had few bits before the shift)
        s = fz.cosines(zq, protos_q)
        np.testing.assert_allclose(s / 2**fz.LOSS_FRAC, protos @ z / np.linalg.norm(z), atol=1e-4)
        label = int(rng.integers(4))
        want = hinge_loss(z[None], np.array([label]), protos, 0.3)
        assert fz.hinge_q(s, label, round(0.3 * 2**24)) / 2**24 == pytest.approx(want, abs=4e-4)
        target = float(rng.uniform(-1, 1))
        target_q = int(fixed.to_q([target], 11)[0][0])
        err = fz.squared_error_q(s, target_q, 11) / 2**24
        assert err == pytest.approx((target_q / 2**11 - protos[0] @ z / np.linalg.norm(z)) ** 2, abs=4e-4)
    assert not fz.cosines(np.zeros(6, dtype=np.int64), protos_q).any()  # z = 0: no division


@pytest.mark.parametrize(("perturbation", "directions"), [(0, 1), (2, 4)])
def test_update_is_the_float_estimator_step_on_average(perturbation: int, directions: int) -> None:
    """E[ΔW] in LSB = lr·ĝ·2^wf with ĝ = (d/K) Σ_k ΔL_k/(2ε) u_k, u_k = r_k/√d, ε = 2^(p−wf)·√d."""
    spec = ffzero_spec(perturbation=perturbation, directions=directions)
    wf, d = spec.format.weight_frac, 200 * 100
    dirs = [fz.dense_directions(fixed.derive(5, k), 99, 200) for k in range(directions)]
    dl = [3000 * (k + 1) * (-1) ** k for k in range(directions)]  # ΔL_k, Q24
    lr_q = spec.lr_q(spec.rule.learning_rate)
    eps = 2.0 ** (perturbation - wf) * np.sqrt(d)
    u = np.stack([r.ravel() for r in dirs]) / np.sqrt(d)
    g = dd_gradient(lambda _: (np.array(dl) / 2**24, np.zeros(directions)), u, eps)
    want = (-lr_q / 2**spec.format.lr_frac * g * 2**wf).reshape(200, 100)  # in weight LSB
    w0 = np.zeros((200, 100), dtype=np.int64)
    got = np.mean([fz.update_block(w0, dirs, dl, lr_q, fz.update_shift(spec), key)[0] for key in range(40)], axis=0)
    assert np.abs(want).max() > 0.2  # a sub-LSB step: only stochastic rounding moves the weights
    # every weight sees the same |step|, so pool them: mean of ΔW·sign(want) over 40 draws x 20 000 weights
    assert np.mean(got * np.sign(want)) == pytest.approx(np.mean(np.abs(want)), rel=0.02)
    assert fz.update_block(w0, dirs, [0] * directions, lr_q, fz.update_shift(spec), 1)[0].any() == 0


@pytest.mark.parametrize(("fan_in", "dl", "shift"), [
    (8, [3000], 25),  # a sub-LSB step, one direction (the device's pair path), a padding column
    (9, [-700_000], 25),  # several LSB and a fraction, no padding
    (8, [5000, -12_000], 30),  # two directions
    (6, [1], 16),  # S = 16: G is lr_q ΔL itself, only the dither rounds
])
def test_update_is_unbiased_within_its_standard_error(fan_in: int, dl: list[int], shift: int) -> None:
    """Both roundings (the block's G_k, then the per-weight LCG dither) are unbiased: over many rounding keys the
    mean step of every weight is lr_q Σ_k ΔL_k r_k / 2^S within 4.5 standard errors; the padding never moves."""
    fan_out, lr_q, draws = 6, 16777, 3000
    dirs = [fz.dense_directions(fixed.derive(11, k), fan_in, fan_out) for k in range(len(dl))]
    w0 = np.zeros((fan_out, fz.row_stride(fan_in)), dtype=np.int64)
    steps = np.stack([-fz.update_block(w0, dirs, dl, lr_q, shift, key)[0] for key in range(draws)])
    exact = sum(lr_q * d * r for d, r in zip(dl, dirs, strict=True)) / 2**shift
    mean, se = steps.mean(axis=0), steps.std(axis=0) / np.sqrt(draws)
    live = np.zeros(w0.shape, dtype=bool)
    live[:, :fan_in + 1] = True
    assert not steps[:, ~live].any()
    assert (np.abs(mean - exact)[live] <= 4.5 * se[live] + 1e-12).all(), np.abs(mean - exact)[live].max()
    assert (se[live] > 0).all() or shift == 16  # the rounding is random (it is not a fixed offset)


def test_renormalise_halves_a_block_and_keeps_its_vote() -> None:
    rng = np.random.default_rng(3)
    w = rng.integers(-9000, 9000, size=(4, 6))
    assert fz.renormalise(w)[1] is False
    w[1, 1] = -fz.RENORM_LIMIT  # the range is [-2^14, 2^14): the device tests a weight's top two bits
    assert fz.renormalise(w)[1] is False
    w[1, 1] = -fz.RENORM_LIMIT - 1
    assert fz.renormalise(w)[1] is True
    w[1, 1] = 0
    w[2, 3] = fz.RENORM_LIMIT
    half, halved = fz.renormalise(w)
    assert halved and half[2, 3] == fz.RENORM_LIMIT // 2
    block, h = fz.DenseBlock(5, 4, 11), rng.integers(-2000, 2000, size=5)
    protos = fixed.to_q(np.linalg.qr(rng.normal(size=(4, 4)))[0][:3], 15)[0]
    assert np.argmax(protos @ block.accumulate(w, h)) == np.argmax(protos @ block.accumulate(half, h))


def test_vote_outputs_argmax_is_the_majority_with_ties_to_the_deepest() -> None:
    rng = np.random.default_rng(4)
    for _ in range(300):
        layers = int(rng.integers(1, 6))
        preds = rng.integers(0, 4, size=layers)
        out = fz.vote_outputs(preds.tolist(), 4)
        assert int(np.argmax(out)) == int(vote(preds[:, None])[0])
    # [a, b, b, a] -> a: 2 votes each, a's deepest voter is layer 3; unvoted classes are 0
    assert fz.vote_outputs([0, 2, 2, 0], 3).tolist() == [2 * 5 + 4, 0, 2 * 5 + 3]


# --- the model and the spec ------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["classification", "regression"])
def test_init_model_is_the_float_reference_quantised(task: str) -> None:
    spec = ffzero_spec(task)
    data = load_dataset(spec)
    model = fz.init_model(spec, data)
    net = FFzero(fz.float_config(spec, task), data.input_dim, data.classes)
    last = 4 if task == "classification" else 10
    assert model.dims == (data.input_dim, 12, 8, last) and model.stages == 3
    assert model.outputs == (4 if task == "classification" else 1)
    for layer, w, wq, pq in zip(net.layers, model.weights, model.weights_q, fz.prototypes(model), strict=True):
        np.testing.assert_array_equal(w, np.hstack([layer.w, layer.b[:, None]]))
        np.testing.assert_array_equal(wq, fz.pad_rows(fixed.to_q(w, 12)[0]))  # rows padded to even
        assert wq.shape[1] % 2 == 0 and not wq[:, w.shape[1]:].any()
        np.testing.assert_allclose(pq / 2**15, layer.protos, atol=2**-15)
    assert model.macros["FFZERO_UPDATE_SHIFT"].startswith("25 ")  # 24 + 24 + 1 - 2*12
    device, paper = fz.float_config(spec, task), fz.float_config(spec, task, "gaussian")
    assert device.block_eps(100) == pytest.approx(2**-12 * 10) and device.distribution == "rademacher"
    assert paper.block_eps(100) == 1e-3 and paper.distribution == "gaussian" and paper.batch_size == 1


@pytest.mark.parametrize(("section", "override", "key"), [
    ("rule", {"directions": 3}, "rule.directions"),
    ("rule", {"batch_size": 4}, "rule.batch_size"),
    ("model", {"hidden": [12, 3]}, "model.hidden[1]"),
    ("format", {"weight_frac": 0, "lr_frac": 30}, "format"),
    ("data", {"scale": 40.0}, "format.activation_frac"),  # inputs reach ~30; Q4.11 holds +-16
])
def test_bad_specs_name_the_key(section: str, override: dict[str, Any], key: str) -> None:
    raw = {"rule": {"name": "ffzero", "learning_rate": 1e-3, "epochs": 1, "perturbation": 8},
           "data": {"set": "synthetic", "features": 10, "classes": 4, "samples": 120},
           "format": {"activation_frac": 11, "weight_frac": 12}, "model": {"hidden": [12, 8]}}
    raw[section] = {**raw[section], **override}
    with pytest.raises(SpecError, match=re.escape(f"`{key}")):  # from the spec's checks or FFzero's own
        spec = make_spec(**raw)
        fz.init_model(spec, load_dataset(spec))


# --- fixed against float -----------------------------------------------------------------------------------

def train_fixed(spec: Spec) -> tuple[fz.Fixed, float]:
    data = load_dataset(spec)
    ref = fz.Fixed(fz.init_model(spec, data))
    for step in training_stream(ref.model, data, spec.rule.epochs):
        apply_step(ref, step)
    return ref, ref.score(fixed.to_q(data.x_test, spec.format.activation_frac)[0], data.y_test)


@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_fixed_tracks_float_on_clusters(activation: str) -> None:
    spec = make_spec(model={"hidden": [16, 16]}, data={"features": 16, "classes": 4, "samples": 400},
                     rule={"name": "ffzero", "learning_rate": 3e-3, "epochs": 2, "activation": activation},
                     format={"activation_frac": 11, "weight_frac": 12})
    data = load_dataset(spec)
    model = fz.init_model(spec, data)
    flt = fz.Float(model)
    before = flt.score(data.x_test, data.y_test)
    history = flt.fit(data)
    assert len(history) == 3 * 2  # 2 epochs for each of 3 layers
    ref, acc = train_fixed(spec)
    assert history[-1] > before + 0.4 and history[-1] > 0.8, (before, history)  # chance is 0.25
    assert abs(acc - history[-1]) <= 0.1, (acc, history[-1])  # 100 test samples
    assert ref.saturations == 0 and ref.stage == 2


def test_fixed_tracks_float_on_f1_regression() -> None:
    spec = make_spec(model={"hidden": [16]}, data={"set": "f1", "samples": 1200},
                     rule={"name": "ffzero", "learning_rate": 1e-3, "epochs": 1, "activation": "relu"},
                     format={"activation_frac": 12, "weight_frac": 12})
    data = load_dataset(spec)
    flt = fz.Float(fz.init_model(spec, data))
    r2_float = flt.fit(data)[-1]
    _, r2_fixed = train_fixed(spec)
    assert r2_float > 0.6 and abs(r2_fixed - r2_float) < 0.08, (r2_float, r2_fixed)


# --- the firmware, bit for bit -----------------------------------------------------------------------------

@pytest.mark.parametrize(("task", "rule"), [
    ("classification", {"directions": 1, "activation": "linear"}),
    # update shift 24 + 25 + 2 + 1 - 2*9 = 34 > 32: the rounding offset is r shifted left
    ("classification", {"directions": 2, "activation": "relu", "perturbation": 2, "weight_frac": 9}),
    ("regression", {"directions": 1, "activation": "relu"}),
    ("regression", {"directions": 2, "activation": "linear"}),
])
def test_firmware_is_bit_exact_through_every_stage(task: str, rule: dict[str, Any], tmp_path: Path) -> None:
    """The whole stream (3 stages of one epoch, SET_STAGE between them) on the native build."""
    spec = ffzero_spec(task, **rule)
    data = load_dataset(spec)
    model = fz.init_model(spec, data)
    run = run_on_target(model, data, "native", tmp_path)
    assert run.train_steps == 3 * len(data.y_train)


@pytest.mark.qemu
def test_firmware_is_bit_exact_on_qemu_m4(tmp_path: Path) -> None:
    spec = ffzero_spec(directions=2, activation="relu")
    data = subset(load_dataset(spec), 40)  # every stage, few steps: QEMU is slow
    run = run_on_target(fz.init_model(spec, data), data, "qemu-m4", tmp_path)
    assert run.train_steps == 3 * 40


def test_firmware_is_bit_exact_when_blocks_are_halved_and_values_saturate(tmp_path: Path) -> None:
    """A learning rate far too large in Q1.14 weights: blocks reach RENORM_LIMIT, values saturate."""
    spec = make_spec(model={"hidden": [12, 8]}, data={"set": "synthetic", "features": 10, "classes": 4,
                                                      "samples": 120},
                     rule={"name": "ffzero", "learning_rate": 0.2, "epochs": 1},
                     format={"activation_frac": 13, "weight_frac": 14})
    ref, _ = train_fixed(spec)
    assert ref.renormalisations > 10 and ref.saturations > 10
    data = load_dataset(spec)
    run = run_on_target(ref.model, data, "native", tmp_path)  # checks the device's saturation count too
    assert run.saturations > 10


@pytest.mark.qemu
@pytest.mark.parametrize("target", ["qemu-m4", "qemu-m7"])
def test_pair_update_is_bit_exact_on_dsp_cores(target: str, tmp_path: Path) -> None:
    """K = 1 on the DSP cores: the hand-scheduled group update (onw_ffzero_update_groups) and its C edges. Inputs
    13 (1 group, then 2 pairs in the same sign word, an odd input), 42 (4 groups, then 1 group and a pair sharing
    the next word), 130 (16 groups, then a pair in a fresh word); a learning rate so large in Q1.14 that weights
    leave [-2^14, 2^14) (flagged rows redone exactly, blocks halved, saturations) and some steps exceed the pair
    table (the whole block exactly)."""
    spec = make_spec(model={"hidden": [42, 130]}, data={"set": "synthetic", "features": 13, "classes": 4,
                                                        "samples": 120},
                     rule={"name": "ffzero", "learning_rate": 0.2, "epochs": 1, "directions": 1},
                     format={"activation_frac": 13, "weight_frac": 14})
    data = subset(load_dataset(spec), 40)
    run = run_on_target(fz.init_model(spec, data), data, target, tmp_path)
    assert run.train_steps == 3 * 40 and run.saturations > 100


def test_normalise_shifts_of_the_device_tests() -> None:
    """The firmware forms normalised z in 32-bit arithmetic, one way for shift <= 0 (the low words are exact) and
    another for shift > 0 (the low word of the rounded shift); the default spec's bit-exact runs take only the
    first, the halving spec's only the second, for single vectors (the vote) and pairs (the loss) alike."""
    def shifts(spec: Spec) -> set[tuple[int, bool]]:
        seen: set[tuple[int, bool]] = set()
        original = fz.rescale

        def recording(zs: list[np.ndarray]) -> list[np.ndarray]:
            top = max(int(np.abs(z).max(initial=0)) for z in zs)
            seen.add((len(zs), top.bit_length() > fz.Z_BITS))
            return original(zs)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(fz, "rescale", recording)
            train_fixed(spec)
        return seen

    assert shifts(ffzero_spec()) == {(1, False), (2, False)}
    halving = make_spec(model={"hidden": [12, 8]}, data={"set": "synthetic", "features": 10, "classes": 4,
                                                         "samples": 120},
                        rule={"name": "ffzero", "learning_rate": 0.2, "epochs": 1},
                        format={"activation_frac": 13, "weight_frac": 14})
    assert shifts(halving) == {(1, True), (2, True)}


def test_static_ram_is_what_the_linker_placed(tmp_path: Path) -> None:
    """init_model's `ram` names rule_ffzero.c's buffers with their sizes (K = 4, widths 12 and 8, 4 classes)."""
    spec = ffzero_spec(directions=4)
    model = fz.init_model(spec, load_dataset(spec))
    report = size_report(build_firmware(model, "qemu-m4", tmp_path))
    estimate = static_ram(model)
    assert {k: report.symbols[k] for k in model.ram} == model.ram
    assert 0 <= report.ram - sum(estimate.values()) <= 64


# --- conv blocks (conv1d on MNIST-1D, conv2d on digits) ----------------------------------------------------

def cnn_spec(data_set: str, beta: float = 0.0, two_conv: bool = False, **rule: Any) -> Spec:
    """conv 3x3 (3 channels, pool 2) -> dense 12 -> 10; or conv 4x3 (pool 1) -> conv 3x3 (pool 2) -> 10."""
    convs = ([{"channels": 4, "kernel": 3, "pool": 1, "beta": beta}, {"channels": 3, "kernel": 3, "pool": 2}]
             if two_conv else [{"channels": 3, "kernel": 3, "pool": 2, "beta": beta}])
    return make_spec(model={"conv": convs, "hidden": [] if two_conv else [12]},
                     data={"set": data_set}, format={"activation_frac": 11, "weight_frac": 12},
                     rule={"name": "ffzero", "learning_rate": 1e-2, "epochs": 1, **rule})


def subset(data: Dataset, n: int) -> Dataset:
    return dataclasses.replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n])


@pytest.mark.parametrize(("data_set", "shapes"), [
    # 40 - 3 + 1 = 38 positions, pooled to 19; dense rows padded to even (12 inputs + bias -> 14)
    ("mnist1d", [(3, 3), (12, 3 * 19 + 1), (10, 14)]),
    ("digits", [(3, 9), (12, 3 * 9 + 1), (10, 14)]),  # 6 x 6 positions, pooled to 3 x 3
])
def test_cnn_model_is_the_float_cnn_quantised(data_set: str, shapes: list[tuple[int, int]]) -> None:
    spec = cnn_spec(data_set)
    data = load_dataset(spec)
    model = fz.init_model(spec, data)
    assert [w.shape for w in model.weights_q] == shapes and model.stages == 3
    (layer,) = fz.conv_layers(model)
    assert layer.in_hw == conv.as_2d(data.sample_shape) and layer.out_ch == 3 and layer.beta_q == 0
    flt = fz.Float(model)
    assert flt.cnn is not None
    np.testing.assert_array_equal(flt.cnn.blocks[0].w.reshape(3, -1), model.weights[0])
    ((maps, protos),) = fz.conv_constants(model, [layer])
    np.testing.assert_allclose(maps / 2**15, flt.cnn.blocks[0].maps, atol=2**-15)
    np.testing.assert_allclose(protos / 2**15, flt.cnn.blocks[0].protos, atol=2**-15)
    # the conv layer's vote (stage 0) is the float block's, up to rounding
    ref = fz.Fixed(model)
    x_q = fixed.to_q(data.x_test[:100], 11)[0]
    fixed_votes = [predict(ref.model, ref.infer(x)) for x in x_q]
    agree = np.mean(np.array(fixed_votes) == flt.predict(data.x_test[:100]))
    assert agree >= 0.97, agree
    assert model.macros["FFZERO_CONV_PERTURBATION"].startswith("2 ")
    assert model.macros["FFZERO_CONV_UPDATE_SHIFT"].startswith("27 ")  # 24 + 24 + 1 + 2 - 2*12


@pytest.mark.parametrize(("data_set", "beta", "two_conv", "rule"), [
    ("mnist1d", 0.0, False, {"directions": 1}),
    ("digits", 1.0, False, {"directions": 2, "perturbation": 3}),
    ("mnist1d", 1.0, True, {"directions": 4, "learning_rate": 3e-2}),  # conv -> conv: a conv layer's input is a map
])
def test_cnn_firmware_is_bit_exact_through_every_stage(data_set: str, beta: float, two_conv: bool,
                                                       rule: dict[str, Any], tmp_path: Path) -> None:
    """Three stages (conv, dense 12, dense 10; or conv, conv, dense 10) on 60 training samples, SET_STAGE
    between them, on the native build."""
    spec = cnn_spec(data_set, beta, two_conv, **rule)
    data = subset(load_dataset(spec), 60)
    run = run_on_target(fz.init_model(spec, data), data, "native", tmp_path)
    assert run.train_steps == 3 * 60


@pytest.mark.qemu
def test_cnn_firmware_is_bit_exact_on_qemu_m4(tmp_path: Path) -> None:
    spec = cnn_spec("digits", directions=2)
    data = subset(load_dataset(spec), 12)
    run = run_on_target(fz.init_model(spec, data), data, "qemu-m4", tmp_path)
    assert run.train_steps == 3 * 12


def test_cnn_learns_in_fixed_point() -> None:
    """Two epochs of the conv stage alone on 300 digits: the conv block's own vote beats chance clearly, and
    its weights changed."""
    spec = cnn_spec("digits")
    data = subset(load_dataset(spec), 300)
    model = fz.init_model(spec, data)
    ref = fz.Fixed(model)
    for step in training_stream(model, data, 2):
        if step.stage > 0:
            break
        apply_step(ref, step)
    acc = ref.score(fixed.to_q(data.x_test, 11)[0], data.y_test)
    assert acc > 0.3 and not np.array_equal(ref.weights[0], model.weights_q[0]), acc


@pytest.mark.parametrize(("data", "conv", "key"), [
    ({"set": "f1"}, {"channels": 2, "kernel": 3}, "model.conv"),  # regression
    ({"set": "mnist1d"}, {"channels": 2, "kernel": 30, "pool": 8}, "model.conv[0]"),  # 11 positions / 8 ...
    ({"set": "digits"}, {"channels": 2, "kernel": 7, "pool": 4}, "model.conv[0]"),  # 2 x 2 positions / 4
    ({"set": "digits"}, {"channels": 2, "kernel": 3, "beta": 0.5}, "model.conv[0].beta"),
    ({"set": "mnist1d"}, [{"channels": 2, "kernel": 5}, {"channels": 2, "kernel": 16, "pool": 4}], "model.conv[1]"),
])
def test_bad_conv_specs_name_the_key(data: dict[str, Any], conv: dict[str, Any] | list[Any], key: str) -> None:
    with pytest.raises(SpecError, match=re.escape(f"`{key}")):
        spec = make_spec(model={"conv": conv if isinstance(conv, list) else [conv], "hidden": []}, data=data,
                         rule={"name": "ffzero", "learning_rate": 1e-3, "epochs": 1},
                         format={"activation_frac": 11, "weight_frac": 12})
        fz.init_model(spec, load_dataset(spec))


def test_cnn_static_ram_is_what_the_linker_placed(tmp_path: Path) -> None:
    """The conv buffers too (K = 2, 3 channels of 36 positions on digits)."""
    spec = cnn_spec("digits", directions=2)
    model = fz.init_model(spec, load_dataset(spec))
    report = size_report(build_firmware(model, "qemu-m4", tmp_path))
    assert {k: report.symbols[k] for k in model.ram} == model.ram
    assert model.ram["conv_acc"] == 8 * 3 * 36 and model.ram["conv_dloss"] == 8 * 2 * 3
    assert 0 <= report.ram - sum(static_ram(model).values()) <= 64
