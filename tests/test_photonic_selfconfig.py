"""onward.photonic.selfconfig: the fidelity's definition, the sinusoid law the sweeps and the Jacobian rest on, the
interference read-out of M = U U_t^†, and self-configuration on a chip with splitter errors through its codes and
detectors only (docs/photonic_selfconfig.md)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import unitary_group

from onward.photonic.device import Chip, Device, Flaws, Ledger, codes_for_phases
from onward.photonic.mesh import decompose
from onward.photonic.selfconfig import (
    fidelity,
    interference_probes,
    jacobian,
    measure_relative,
    model_jacobian,
    nearest_codes,
    probes,
    row_overlap,
    score,
    self_configure,
    shifter_order,
)
from onward.photonic.train import code_phases, nearest_code

FLAWS = Flaws(splitter_sigma=0.05, dac_bits=16, adc_bits=16)


def setup(n: int, seed: int = 0) -> tuple[Device, np.ndarray, np.ndarray]:
    """A chip with splitter errors σ = 0.05 rad, a Haar-random target and its nominal deployment's codes."""
    device = Device(n, FLAWS, seed=seed)
    target = unitary_group.rvs(n, random_state=seed + 100)
    m = decompose(target)
    return device, target, codes_for_phases(np.concatenate([m.theta, m.phi, m.screen]), FLAWS.dac_bits)


def true_unitary(device: Device, codes: np.ndarray) -> np.ndarray:
    return device.mesh(device.phases(codes)).unitary()


def test_fidelity_is_one_exactly_up_to_output_phases() -> None:
    rng = np.random.default_rng(1)
    target = unitary_group.rvs(6, random_state=3)
    screen = np.diag(np.exp(1j * rng.uniform(0, 2 * np.pi, 6)))
    assert fidelity(screen @ target, target) == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(row_overlap(screen @ target, target), 1.0, atol=1e-12)
    other = unitary_group.rvs(6, random_state=4)
    assert fidelity(other, target) < 0.5
    near = target @ np.diag(np.exp(1j * rng.normal(0, 0.05, 6)))  # input phases are not invisible: F < 1
    assert 0.99 < fidelity(near, target) < 1 - 1e-4
    assert fidelity(0.9 * target, target) == pytest.approx(0.81)  # loss counts against F


def test_score_is_a_sinusoid_in_any_one_shifter() -> None:
    device, target, codes = setup(6)
    chip = Chip(device)
    psi = code_phases(chip.dac_bits)
    batch = probes(target)
    for j in (0, 7, 20):  # a θ, a φ, another φ
        settings = [nearest_code(p, psi) for p in np.linspace(0, 2 * np.pi, 7, endpoint=False)]
        values = []
        for code in settings:
            trial = codes.copy()
            trial[j] = code
            values.append(score(chip, trial, batch))
        basis = np.stack([np.ones(7), np.cos(psi[settings]), np.sin(psi[settings])], axis=1)
        fit = np.linalg.lstsq(basis, np.array(values), rcond=None)[0]
        assert np.abs(basis @ fit - values).max() < 1e-4  # exact up to the 16-bit ADC
        assert np.hypot(fit[1], fit[2]) > 1e-3  # and not trivially flat


def test_interference_reads_the_matrix_up_to_row_phases() -> None:
    device, target, codes = setup(5)
    chip = Chip(device)
    assert interference_probes(target).shape == (25, 5)
    r = measure_relative(chip, codes, interference_probes(target))
    m = true_unitary(device, codes) @ target.conj().T
    want = m * np.conj(np.diag(m))[:, None]
    assert np.abs(r - want).max() < 1e-4
    assert np.abs(want - np.diag(np.diag(want))).max() > 1e-2  # the nominal deployment is visibly off


def test_model_jacobian_is_the_measured_one_on_a_flawless_chip() -> None:
    """The nominal mesh's Jacobian (0 queries) equals the one measured through the codes and detectors when the
    couplers are ideal, and differs from it by O(σ) when they are not: that error is what the measured rounds
    remove."""
    n = 5
    target = unitary_group.rvs(n, random_state=7)
    m = decompose(target)
    codes = codes_for_phases(np.concatenate([m.theta, m.phi, m.screen]), 16)
    codes[:3] += 4000  # away from the decomposition's point, where R is not diagonal
    psi = code_phases(16)
    batch, shifters = interference_probes(target), shifter_order(n)
    gaps = []
    for sigma in (0.0, 0.05):
        chip = Chip(Device(n, Flaws(splitter_sigma=sigma, dac_bits=16, adc_bits=16), seed=3))
        measured = jacobian(chip, codes, shifters, batch, measure_relative(chip, codes, batch), psi)
        model = model_jacobian(n, psi[codes], target)
        assert model.shape == measured.shape == (2 * n * (n - 1), n * (n - 1))
        gaps.append(np.abs(model - measured).max() / np.abs(measured).max())
    assert gaps[0] < 1e-3  # the 16-bit ADC and DAC only
    assert 1e-2 < gaps[1] < 0.5


def test_nearest_codes_agrees_with_nearest_code() -> None:
    psi = code_phases(10)
    phases = np.random.default_rng(2).uniform(-7, 14, 200)
    got = nearest_codes(phases, 10)
    want = [nearest_code(p, psi) for p in phases]
    gap = lambda c: np.abs(np.angle(np.exp(1j * (psi[c] - phases))))  # noqa: E731
    assert np.allclose(gap(got), gap(np.array(want)), atol=1e-12)


def test_shifter_order_is_phi_then_theta_of_each_mzi() -> None:
    order = shifter_order(4)  # 6 MZIs: θ codes 0-5, φ codes 6-11
    assert order.tolist() == [6, 0, 7, 1, 8, 2, 9, 3, 10, 4, 11, 5]


@pytest.mark.parametrize("method", ["model", "jacobian", "sweep"])
def test_self_configuration_beats_deployment_within_budget(method: str) -> None:
    n = 8
    device, target, codes = setup(n)
    nominal = fidelity(true_unitary(device, codes), target)
    assert nominal < 0.98  # the splitter errors matter
    chip = Chip(device)  # the algorithm gets the Chip: no matrix, phase or flaw reachable through it
    budget = 10 * n * n
    seen: list[tuple[int, float]] = []
    out, record = self_configure(chip, target, codes, budget, method=method,
                                 callback=lambda c, q: seen.append((q, fidelity(true_unitary(device, c), target))),
                                 every=n * n)
    final = fidelity(true_unitary(device, out), target)
    assert final > nominal
    assert final >= 0.99
    assert chip.ledger.queries <= budget
    assert record.queries[-1] <= chip.ledger.queries
    assert seen[0] == (0, pytest.approx(nominal)) and seen[-1][0] == chip.ledger.queries
    # the chip's own estimate tracks the truth: measured F (jacobian); S = mean |M_kk|² >= F, close to it (sweep)
    assert record.score[-1] == pytest.approx(final, abs=1e-2 if method == "sweep" else 1e-3)
    assert np.all(np.diff(record.queries) >= 0)


@pytest.mark.parametrize(("method", "within"), [("model", 20), ("jacobian", 3 * 8 * 8)])
def test_jacobian_methods_are_far_inside_the_budget(method: str, within: int) -> None:
    n = 8
    device, target, codes = setup(n, seed=1)
    chip = Chip(device)
    out, record = self_configure(chip, target, codes, 10 * n * n, method=method)
    assert fidelity(true_unitary(device, out), target) > 0.9999
    reached = next(q for q, s in zip(record.queries, record.score, strict=True) if s >= 0.99)
    # model: a few steps with the nominal mesh's Jacobian; jacobian: one measured (2 queries a shifter), a few steps
    assert reached <= within


def test_only_the_chip_interface_is_used() -> None:
    """A stand-in exposing set_codes, measure, ledger and the sizes, and nothing else, is enough."""
    device, target, codes = setup(4)
    chip = Chip(device)

    class Spy:
        __slots__ = ()
        n_modes, n_codes, dac_bits, adc_bits, layers = (chip.n_modes, chip.n_codes, chip.dac_bits, chip.adc_bits,
                                                        chip.layers)

        def set_codes(self, c: np.ndarray) -> None:
            chip.set_codes(c)

        def measure(self, x: np.ndarray, taps: bool = False) -> np.ndarray:
            return chip.measure(x, taps)

        @property
        def ledger(self) -> Ledger:
            return chip.ledger

    for method in ("model", "jacobian", "sweep"):
        before = chip.ledger.queries
        self_configure(Spy(), target, codes, 60, method=method)  # type: ignore[arg-type]
        assert 0 < chip.ledger.queries - before <= 60


def test_a_budget_too_small_for_a_measured_jacobian_costs_one_query() -> None:
    device, target, codes = setup(6)
    chip = Chip(device)
    out, record = self_configure(chip, target, codes, 20, method="jacobian")
    assert chip.ledger.queries == 1 and np.array_equal(out, codes) and record.rounds == 0
    out, record = self_configure(chip, target, codes, 20)  # the model's Jacobian costs no query: steps fit
    assert 1 < chip.ledger.queries - 1 <= 20 and record.rounds >= 1
    assert fidelity(true_unitary(device, out), target) > fidelity(true_unitary(device, codes), target)
    with pytest.raises(ValueError, match="unknown self-configuration method"):
        self_configure(chip, target, codes, 20, method="magic")
