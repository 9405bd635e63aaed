"""The calibration's baselines, features and scores (onward.calibration): each one checked against a case whose
answer is known."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from onward.calibration import baselines, metrics
from onward.calibration.features import NAMES, features
from onward.calibration.sensor import Trace, scenario, simulate, without_flaws


def short_trace(seed: int = 0) -> Trace:
    return simulate(scenario("outdoor", days=20.0), seed)


def test_features_come_from_the_registers_alone() -> None:
    tr = short_trace()
    f = features(tr)
    assert f.shape == (tr.t_s.size, len(NAMES)) and np.isfinite(f).all()
    blind = replace(tr, p_true_pa=np.zeros_like(tr.p_true_pa), temp_true_c=np.zeros_like(tr.temp_true_c),
                    p_analog_pa=np.zeros_like(tr.p_analog_pa), ref_pa=np.zeros_like(tr.ref_pa))
    assert np.array_equal(features(blind), f)  # no truth, no reference leaks into them
    assert np.abs(f[:, 0]).max() < 1.0 and np.abs(f[:, 1]).max() < 2.0  # scaled to about unit range


def test_one_point_cancels_a_constant_offset_from_the_first_reading_on_and_never_looks_ahead() -> None:
    tr = simulate(without_flaws(scenario("outdoor", days=10.0), keep=("solder_shift_pa",)), 2)
    tr = replace(tr, ref_pa=tr.p_true_pa[tr.ref_index])  # exact references
    corrected = baselines.one_point(tr)
    first = tr.ref_index[0]
    assert np.array_equal(corrected[:first], tr.p_reported_pa[:first])
    assert np.abs(corrected[first:] - tr.p_true_pa[first:]).max() < 0.2  # quantisation and noise only


def test_rls_learns_an_exact_linear_error_model() -> None:
    tr = short_trace(1)
    f = features(tr)
    true_w = np.array([120.0, -35.0, 18.0])  # Pa: offset, and per unit of each feature
    error = np.concatenate([np.ones((f.shape[0], 1)), f], axis=1) @ true_w
    tr = replace(tr, p_reported_pa=tr.p_true_pa - error, ref_pa=tr.p_true_pa[tr.ref_index])
    corrected = baselines.rls(tr, f, forgetting=1.0, delta=1e6)
    late = tr.ref_index[10]
    assert np.abs(corrected[late:] - tr.p_true_pa[late:]).max() < 1e-3


def test_scores_and_recovery_on_a_known_error() -> None:
    tr = short_trace(3)
    j = 30
    event = float(tr.t_s[tr.ref_index[j]] - 1.0)  # just before reading j
    err = np.zeros(tr.t_s.size)
    err[tr.ref_index[j] - 1:tr.ref_index[j + 3]] = 80.0  # out of the band until reading j + 3
    corrected = tr.p_true_pa + err
    assert metrics.recovery(tr, corrected, event) == 4  # readings j, j+1, j+2 still out; j+3 back
    assert metrics.recovery(tr, tr.p_true_pa + 80.0, event) is None
    s = metrics.scores(tr, corrected, warmup=0)  # counted from the first reference reading on
    span, n = tr.ref_index[j + 3] - tr.ref_index[j] + 1, tr.t_s.size - tr.ref_index[0]
    assert abs(s["within"] - (1 - span / n)) < 1e-12 and s["worst"] == 80.0
    assert abs(s["rms"] - 80.0 * np.sqrt(span / n)) < 1e-9
