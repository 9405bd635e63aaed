"""The float FFzero CNN (onward.rules.ffzero.paper_cnn): blocks, the estimator on a filter, shapes, learning."""

from __future__ import annotations

import numpy as np
import pytest

from onward.nn import conv
from onward.rules.ffzero.paper import FFzeroConfig, hinge_loss
from onward.rules.ffzero.paper_cnn import ConvBlock, ConvBlockConfig, FFzeroCNN, FFzeroCNNConfig
from onward.rules.ffzero.zeroth_order import dd_gradient, unit_directions


def model(shape: tuple[int, ...], blocks: tuple[ConvBlockConfig, ...], classes: int = 4, **kw: object) -> FFzeroCNN:
    dense = FFzeroConfig(hidden=(), epochs=1, batch_size=1, seed=2)
    return FFzeroCNN(FFzeroCNNConfig(conv=blocks, dense=dense, **kw), shape, classes)  # type: ignore[arg-type]


def channel_loss(block: ConvBlock, x: np.ndarray, y: np.ndarray, c: int) -> float:
    z = conv.project(block.maps, block.maps_of(x))[:, c]
    return float(hinge_loss(z, y, block.protos[c], 0.3))


@pytest.mark.parametrize(("shape", "blocks", "dims"), [
    ((40,), (ConvBlockConfig(8, 5, 2), ConvBlockConfig(4, 5, 2)), [(1, 36), (1, 14), 4 * 7]),
    ((8, 8), (ConvBlockConfig(6, 3, 2),), [(6, 6), 6 * 3 * 3]),
    ((12, 12), (ConvBlockConfig(4, 6, 2, padding=2),), [(11, 11), 4 * 5 * 5]),  # the public code's kernel/padding
])
def test_shapes(shape, blocks, dims):
    m = model(shape, blocks)
    assert [b.out_hw for b in m.blocks] == dims[:-1]
    assert m.tail.input_dim == dims[-1]
    x = np.random.default_rng(0).standard_normal((3, int(np.prod(shape))))
    h = m.as_maps(x)
    for b in m.blocks:
        assert b.maps.shape == (b.w.shape[0], 4, b.out_hw[0] * b.out_hw[1])  # proj_dim = classes
        assert b.protos.shape == (b.w.shape[0], 4, 4)
        assert b.scores(h).shape == (3, 4)
        h = b.output(h)
    assert m.block_predictions(x).shape == (len(blocks) + 1, 3)


def test_kernel_too_large_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        model((8, 8), (ConvBlockConfig(4, 9, 2),))
    with pytest.raises(ValueError, match="no positions"):
        model((8, 8), (ConvBlockConfig(4, 3, 2), ConvBlockConfig(4, 3, 2)))


def test_channel_loss_depends_on_its_own_filter_only():
    m = model((8, 8), (ConvBlockConfig(3, 3, 2),))
    b, rng = m.blocks[0], np.random.default_rng(1)
    x, y = m.as_maps(rng.standard_normal((5, 64))), rng.integers(0, 4, 5)
    before = [channel_loss(b, x, y, c) for c in range(3)]
    b.w[1] *= -2.0
    after = [channel_loss(b, x, y, c) for c in range(3)]
    assert after[0] == before[0] and after[2] == before[2] and after[1] != before[1]


def test_normalisation_is_scale_invariant_and_sample_equals_batch_at_batch_one():
    m = model((40,), (ConvBlockConfig(2, 5, 2),))
    b, x = m.blocks[0], m.as_maps(np.random.default_rng(2).standard_normal((1, 40)))
    y1 = b.maps_of(x)
    b.w *= 7.0
    np.testing.assert_allclose(b.maps_of(x), y1, atol=1e-3)  # a filter's scale is invisible (BN, up to its eps)
    y7 = b.maps_of(x)
    b.norm = "batch"
    np.testing.assert_array_equal(b.maps_of(x), y7)
    assert abs(y1.mean(axis=-1) - 1.0).max() < 1e-9 and abs(y1.std(axis=-1) - 1.0).max() < 1e-3  # beta = 1


def test_estimator_on_a_filter_follows_the_gradient_of_its_channel_loss():
    """The linear shortcut inside train_step (a ± ε·cols·u, then BN) against black-box losses, and the DD
    estimate with many directions against the finite-difference gradient of channel c's loss."""
    m = model((8, 8), (ConvBlockConfig(2, 3, 2),))
    b, rng = m.blocks[0], np.random.default_rng(3)
    x, y = m.as_maps(rng.uniform(0, 1, (4, 64))), rng.integers(0, 4, 4)
    c, eps, fan = 1, 1e-3, 9
    w0 = b.w.copy()

    def loss_at(wc: np.ndarray) -> float:
        b.w[c] = wc.reshape(b.w[c].shape)
        out = channel_loss(b, x, y, c)
        b.w[:] = w0
        return out

    numeric = np.array([(loss_at(w0[c].reshape(-1) + h) - loss_at(w0[c].reshape(-1) - h)) / 2e-6
                        for h in np.eye(fan) * 1e-6])
    dirs = unit_directions(np.random.default_rng(4), 1500, fan, "gaussian")
    black_box = dd_gradient(lambda u: (np.array([loss_at(w0[c].reshape(-1) + eps * v) for v in u]),
                                       np.array([loss_at(w0[c].reshape(-1) - eps * v) for v in u])), dirs, eps)
    cos = black_box @ numeric / np.linalg.norm(black_box) / np.linalg.norm(numeric)
    assert cos > 0.95
    # train_step's shortcut moves filter c by exactly -lr * the black-box estimate (same directions)
    cfg = FFzeroConfig(lr=0.5, eps=eps, directions=1500)
    other = b.w[0].copy()
    b.train_step(x, y, cfg, _Replay([unit_directions(np.random.default_rng(9), 1500, fan, "gaussian"), dirs]))
    np.testing.assert_allclose(b.w[c].reshape(-1), w0[c].reshape(-1) - 0.5 * black_box, rtol=1e-6, atol=1e-9)
    assert not np.allclose(b.w[0], other)  # every filter takes its own step


class _Replay:
    """A stand-in generator whose standard_normal replays given unit directions (so they are reproduced)."""

    def __init__(self, dirs: list[np.ndarray]) -> None:
        self.dirs = dirs

    def standard_normal(self, shape: tuple[int, int]) -> np.ndarray:
        out = self.dirs.pop(0)
        assert out.shape == shape
        return out


def test_learns_digits_and_is_deterministic():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    tr, te = slice(0, 500), slice(1400, 1797)
    cfg = FFzeroCNNConfig(conv=(ConvBlockConfig(4, 3, 2),),
                          dense=FFzeroConfig(hidden=(), epochs=2, batch_size=1, seed=0), proj_dim=10)
    a = FFzeroCNN(cfg, (8, 8), 10).fit(x[tr], y[tr], x[te], y[te])
    preds = a.block_predictions(x[te])
    assert [row[0] for row in a.history] == [0, 0]  # the conv block's epochs were recorded
    assert np.mean(preds[0] == y[te]) > 0.2  # the conv block alone (chance 0.1)
    votes = a.predict(x[te])
    np.testing.assert_array_equal(votes, preds[1])  # two voters: a tie goes to the deepest
    b = FFzeroCNN(cfg, (8, 8), 10).fit(x[tr], y[tr])
    np.testing.assert_array_equal(b.predict(x[te]), a.predict(x[te]))


def test_integer_layer_tracks_the_float_block_and_the_rule_loss():
    """conv.ConvLayerQ on the quantised float block: z per channel, the output to the next block, and the ΔL of a
    ±2^p LSB perturbation of each filter through ffzero_fixed's integer loss, against the float block's."""
    from onward import fixed
    from onward.rules.ffzero.fixed import LOSS_FRAC, cosines, hinge_q, rademacher, rescale

    af, wf, p, key = 10, 12, 4, 2024
    m = model((40,), (ConvBlockConfig(3, 5, 2),), classes=4, beta=1.0)
    b = m.blocks[0]
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, 40)
    layer = conv.ConvLayerQ(1, (1, 40), 3, (1, 5), (1, 2), af, 1 << af)
    xq, wq = fixed.to_q(x, af)[0], fixed.to_q(b.w, wf)[0]
    maps_q, protos_q = fixed.to_q(b.maps, 15)[0], fixed.to_q(b.protos, 15)[0]
    b.w = wq / 2.0**wf  # the float block on the quantised weights and input
    xf = m.as_maps(xq[None] / 2.0**af)
    a = layer.accumulate(wq, xq)
    out, sats = layer.output(a)
    assert sats == 0 and out.shape == (layer.output_size,) == (3 * 18,)
    assert np.abs(out / 2.0**af - b.output(xf).reshape(-1)).max() < 2e-3
    z_float = conv.project(b.maps, b.maps_of(xf))[0]
    r = rademacher(key, layer.size).reshape(b.w.shape)
    for c in range(3):
        z = layer.z(maps_q, a[c], c)
        np.testing.assert_allclose(z / 2.0 ** (15 + conv.Z_MAP_FRAC), z_float[c], atol=2e-3 * np.abs(z_float[c]).max())
        (zp, zm), = layer.pairs(a[c], [layer.respond(key, xq, c)], p)
        zp, zm = layer.z(maps_q, zp, c), layer.z(maps_q, zm, c)
        zp, zm = rescale([zp, zm])
        margin_q = round(0.3 * 2**LOSS_FRAC)
        dl_q = hinge_q(cosines(zp, protos_q[c]), 2, margin_q) - hinge_q(cosines(zm, protos_q[c]), 2, margin_q)
        w0 = b.w.copy()
        losses = []
        for sign in (1, -1):
            b.w = w0.copy()
            b.w[c] += sign * r[c] * 2.0 ** (p - wf)
            losses.append(channel_loss_margin(b, xf, c, 2))
        b.w = w0
        dl = losses[0] - losses[1]
        # the map keeps 15 significant bits before its std (int64 variance): |ΔL error| ~ 1e-4, so p >= 2
        assert abs(dl_q / 2.0**LOSS_FRAC - dl) < 0.01 * abs(dl) + 3e-4 and abs(dl) > 3e-3


def channel_loss_margin(block: ConvBlock, x: np.ndarray, c: int, label: int) -> float:
    z = conv.project(block.maps, block.maps_of(x))[:, c]
    return float(hinge_loss(z, np.array([label]), block.protos[c], 0.3))


def test_pooled_loss_variant_projects_the_pooled_map_and_beta_is_per_block():
    """The float-only variant: M_c sees ReLU + max-pool of the normalised map (n' = pooled positions)."""
    m = model((40,), (ConvBlockConfig(3, 5, 2, beta=0.0, pooled_loss=True),), beta=1.0)
    b = m.blocks[0]
    assert b.beta == 0.0 and b.maps.shape == (3, 4, 18)  # 36 positions pooled by 2
    x = m.as_maps(np.random.default_rng(0).standard_normal((2, 40)))
    y = b.maps_of(x)
    np.testing.assert_array_equal(b.loss_maps(y), conv.relu_maxpool(y.reshape(2, 3, 1, 36), (1, 2)).reshape(2, 3, 18))
    assert b.scores(x).shape == (2, 4)
