"""The drift experiment (onward.photonic.drift) and the chip's clock it rests on (Device.clock, Device.idle).

Fast: short runs with a large drift, never the 10^6-query run (bench/photonic_drift.py does that)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from onward.paths import EXAMPLES
from onward.photonic.device import Chip, Device, DeviceError, Flaws, Ledger, preset
from onward.photonic.drift import ARMS, DriftConfig, Learner, run_arm, run_seed, warm_up
from onward.photonic.experiment import load_photonic_spec, train_twin


def inputs(n: int, batch: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(batch, n))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_idle_then_measure_equals_measuring_all_along() -> None:
    """idle(k) draws the drift steps k measures would: the same drift vector after, the same readings of the next
    query (noise and drift come from the clock's stream), and no query in the ledger."""
    flaws = preset("typical", drift=0.02, shot_noise=0.01)
    a, b = Device(6, flaws, seed=5), Device(6, flaws, seed=5)
    codes = np.random.default_rng(1).integers(0, a.dac_max + 1, a.n_codes)
    a.set_codes(codes)
    b.set_codes(codes)
    x = inputs(6, 8)
    for _ in range(37):
        a.measure(x)
    b.idle(37)
    assert b.clock == a.clock == 37 and b.ledger == Ledger()
    assert np.array_equal(a.drift, b.drift) and np.abs(b.drift).max() > 0
    assert np.array_equal(a.measure(x), b.measure(x))
    assert b.ledger.queries == 1 and a.ledger.queries == 38


def test_clock_is_the_ledger_until_idle_and_idle_checks_its_argument() -> None:
    dev = Device(4, Flaws(phase_noise=0.05), seed=2)
    for _ in range(3):
        dev.measure(inputs(4, 2))
    assert dev.clock == dev.ledger.queries == 3
    dev.idle(5)  # no drift flaw: time passes, nothing is drawn
    assert dev.clock == 8 and dev.ledger.queries == 3 and not dev.drift.any()
    with pytest.raises(DeviceError, match="idle"):
        dev.idle(-1)


def test_idling_replays_the_same_drift_whatever_the_chunks() -> None:
    one, many = Device(4, Flaws(drift=0.01), seed=9), Device(4, Flaws(drift=0.01), seed=9)
    one.idle(100)
    for k in (1, 0, 33, 66):
        many.idle(k)
    assert np.array_equal(one.drift, many.drift)


@pytest.fixture(scope="module")
def iris():
    spec = replace(load_photonic_spec(EXAMPLES / "photonic" / "iris.toml"), twin_steps=200)
    return spec, train_twin(spec)


SHORT = DriftConfig(sigma=0.01, queries=4000, every=400, warmup=4000, period=2000, burst=800,
                    retrain=Learner(lr=2.0, delta=2.0), online=Learner(lr=2.0, delta=2.0))


def test_arms_share_one_drift_realisation_and_their_schedule(iris) -> None:
    spec, twin = iris
    config = replace(SHORT, queries=1200, warmup=400, period=800, burst=400)
    runs = {r.arm: r for r in run_seed(spec, twin, 1, config)}
    assert set(runs) == set(ARMS)
    drifts = [runs[a].drift_rms for a in ARMS]
    assert drifts[0] == drifts[1] == drifts[2] and drifts[0][-1] > 0.2  # bit-identical drift at every checkpoint
    assert runs["frozen"].curve.queries == runs["online"].curve.queries == [0, 400, 800, 1200]
    assert runs["frozen"].training_queries == 0
    assert 390 <= runs["periodic"].training_queries <= 400  # one burst: ticks 400-799 but a checkpoint's
    assert 1200 - 3 * 2 <= runs["online"].training_queries <= 1200 - 3  # every tick but the checkpoints'


def test_frozen_degrades_and_online_holds_under_large_drift(iris) -> None:
    """σ = 0.01 rad a tick: after 4000 ticks the phases have walked ~0.6 rad. The frozen model loses accuracy; the
    online controller, learning from the stream all along, holds clearly better."""
    spec, twin = iris
    codes = warm_up(spec, twin, 1, SHORT)
    frozen = run_arm("frozen", spec, twin, 1, codes, SHORT)
    online = run_arm("online", spec, twin, 1, codes, SHORT)
    assert frozen.start == online.start > 0.7
    late = slice(len(frozen.curve.accuracy) // 2, None)
    assert np.mean(frozen.curve.accuracy[late]) < frozen.start - 0.1
    assert np.mean(online.curve.accuracy[late]) > np.mean(frozen.curve.accuracy[late]) + 0.1


def test_a_schedule_that_does_not_line_up_is_refused() -> None:
    with pytest.raises(ValueError, match="line up"):
        DriftConfig(queries=1000, every=300).check()
    assert Chip  # the Chip facade is unchanged: time passing is the harness's doing (the Device's idle)
