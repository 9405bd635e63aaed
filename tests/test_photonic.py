"""onward.photonic: the MZI's closed forms, meshes that are unitary, decompositions that round-trip, propagation
that equals the matrix (shared/photonics.md, "Tests that mean something", 1-4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import unitary_group

from onward.cli import main
from onward.paths import EXAMPLES
from onward.photonic.activation import Activation
from onward.photonic.device import (
    V_MAX,
    V_PI,
    Chip,
    Device,
    DeviceError,
    Flaws,
    Ledger,
    codes_for_phases,
    nominal_phases,
    preset,
)
from onward.photonic.experiment import load_photonic_spec
from onward.photonic.mesh import MeshError, decompose, layout, mesh_of
from onward.photonic.mzi import coupler, mzi, solve
from onward.photonic.network import LocalTask, ideal_readings
from onward.photonic.train import (
    Task,
    chip_intensity,
    coordinate_order,
    coordinate_step,
    estimate,
    fit_in_situ,
    ideal_intensity,
    loss_and_gradient,
    mesh_gradient,
)

RNG = np.random.default_rng(7)


def test_coupler_is_50_50_and_unitary() -> None:
    b = coupler()
    assert np.allclose(np.abs(b) ** 2, 0.5, atol=1e-15)
    assert np.allclose(b @ b.conj().T, np.eye(2), atol=1e-15)
    assert np.allclose(b, np.array([[1, 1j], [1j, 1]]) / np.sqrt(2), atol=1e-15)


@pytest.mark.parametrize("theta", [0.0, 0.3, np.pi / 2, 2.0, np.pi, 5.5])
@pytest.mark.parametrize("phi", [0.0, 1.1, -2.9])
def test_mzi_closed_form(theta: float, phi: float) -> None:
    t = mzi(theta, phi)
    want = 1j * np.exp(0.5j * theta) * np.array([[np.exp(1j * phi) * np.sin(theta / 2), np.cos(theta / 2)],
                                                 [np.exp(1j * phi) * np.cos(theta / 2), -np.sin(theta / 2)]])
    assert np.allclose(t, want, atol=1e-14)
    assert abs(abs(t[1, 0]) ** 2 - np.cos(theta / 2) ** 2) < 1e-14
    assert np.allclose(t @ t.conj().T, np.eye(2), atol=1e-14)


def test_cross_and_bar_states() -> None:
    cross, bar = mzi(0.0, 0.0), mzi(np.pi, 0.0)
    assert np.allclose(np.abs(cross), [[0, 1], [1, 0]], atol=1e-15)  # [[0, i], [i, 0]] up to a global phase
    assert np.allclose(cross / cross[0, 1], [[0, 1], [1, 0]], atol=1e-15)
    assert np.allclose(np.abs(bar), np.eye(2), atol=1e-15)


def test_a_coupler_error_leaves_a_bar_port_floor() -> None:
    """With errors ε on both couplers the cross state leaks sin²(2ε) into the bar port, whatever θ and φ."""
    eps = 0.07
    thetas = np.linspace(0, 2 * np.pi, 2001)
    leak = np.abs(mzi(thetas, 0.0, eps, eps)[..., 0, 0]) ** 2
    assert abs(leak.min() - np.sin(2 * eps) ** 2) < 1e-6
    assert np.allclose(mzi(1.0, 0.5, eps, eps) @ mzi(1.0, 0.5, eps, eps).conj().T, np.eye(2), atol=1e-14)


def test_solve_moves_a_phase_screen_through_an_mzi() -> None:
    for _ in range(200):
        theta, phi = RNG.uniform(0, 2 * np.pi, 2)
        if RNG.random() < 0.2:
            theta = RNG.choice([0.0, np.pi])
        m = np.diag(np.exp(1j * RNG.uniform(0, 2 * np.pi, 2))) @ mzi(theta, phi)
        t2, p2, d0, d1 = solve(m)
        assert np.allclose(np.diag([d0, d1]) @ mzi(t2, p2), m, atol=1e-13)


@pytest.mark.parametrize("kind", ["clements", "reck"])
@pytest.mark.parametrize("n", [2, 3, 4, 7, 8, 16, 33])
def test_an_ideal_mesh_is_unitary(kind: str, n: int) -> None:
    lay = layout(n, kind)
    assert lay.size == n * (n - 1) // 2
    assert lay.depth == ((n if n > 2 else 1) if kind == "clements" else 2 * n - 3)
    mesh = mesh_of(lay, RNG.uniform(0, 2 * np.pi, lay.size), RNG.uniform(0, 2 * np.pi, lay.size),
                   RNG.uniform(0, 2 * np.pi, n))
    u = mesh.unitary()
    assert np.abs(u @ u.conj().T - np.eye(n)).max() < 1e-12


@pytest.mark.parametrize("kind", ["clements", "reck"])
@pytest.mark.parametrize("n", [2, 3, 5, 8, 16, 31, 64])
def test_decomposition_round_trip(kind: str, n: int) -> None:
    """Haar-random unitaries: decompose into phases, rebuild the mesh, compare (and the layout is the kind's)."""
    for seed in range(3 if n <= 16 else 1):
        u = unitary_group.rvs(n, random_state=seed + 100 * n)
        mesh = decompose(u, kind)
        assert mesh.layout.size == n * (n - 1) // 2
        assert mesh.layout.depth == ((n if n > 2 else 1) if kind == "clements" else 2 * n - 3)
        assert np.abs(mesh.unitary() - u).max() < 1e-10


@pytest.mark.parametrize("kind", ["clements", "reck"])
def test_propagation_column_by_column_equals_the_matrix(kind: str) -> None:
    """A batch up to N goes column by column; a wider one through the unitary: both equal U x, and U equals the
    product of the MZIs' 2x2 blocks embedded one by one."""
    n = 12
    mesh = decompose(unitary_group.rvs(n, random_state=3), kind)
    product = np.eye(n, dtype=complex)
    for m, block in zip(mesh.layout.modes, mesh.blocks(), strict=True):
        embedded = np.eye(n, dtype=complex)
        embedded[m:m + 2, m:m + 2] = block
        product = embedded @ product
    assert np.allclose(np.diag(np.exp(1j * mesh.screen)) @ product, mesh.unitary(), atol=1e-12)
    narrow = RNG.normal(size=(n, 5)) + 1j * RNG.normal(size=(n, 5))
    assert np.allclose(mesh.propagate(narrow), product_with_screen(mesh, product) @ narrow, atol=1e-12)
    x = RNG.normal(size=(n, 50)) + 1j * RNG.normal(size=(n, 50))
    y = mesh.propagate(x)
    assert np.allclose(y, mesh.unitary() @ x, atol=1e-12)
    assert np.allclose(np.linalg.norm(y, axis=0), np.linalg.norm(x, axis=0), atol=1e-12)  # lossless: norm kept
    assert np.allclose(mesh.unitary().conj().T @ y, x, atol=1e-12)  # the inverse recovers the input
    assert np.allclose(mesh.propagate(x[:, 0]), y[:, 0], atol=1e-14)


def product_with_screen(mesh, product: np.ndarray) -> np.ndarray:
    return np.diag(np.exp(1j * mesh.screen)) @ product


def test_bad_input_is_named() -> None:
    with pytest.raises(MeshError, match="unknown mesh layout 'butterfly'"):
        layout(4, "butterfly")
    with pytest.raises(MeshError, match="at least 2 modes"):
        layout(1)
    with pytest.raises(MeshError, match="unitary"):
        decompose(np.ones((3, 3)))


# --- the flawed chip (shared/photonics.md, tests 5 and 6) ----------------------------------------------------------

def unit_inputs(n: int, batch: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(batch, n))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_all_flaws_off_is_the_ideal_chip() -> None:
    """With every flaw at 0 the detector codes are the quantised |U x|² of the mesh the codes set."""
    dev = Device(8, preset("ideal"), seed=1)
    dev.set_codes(np.random.default_rng(2).integers(0, dev.dac_max + 1, dev.n_codes))
    x = unit_inputs(8, 20)
    want = np.abs(x @ dev.ideal_unitary().T) ** 2
    assert np.abs(dev.measure(x) / dev.adc_max - want).max() <= 0.5 / dev.adc_max + 1e-12


def test_splitter_error_keeps_the_mesh_unitary_and_loss_bounds_it() -> None:
    lossless = Device(10, Flaws(splitter_sigma=0.08), seed=3)
    lossless.set_codes(np.random.default_rng(4).integers(0, lossless.dac_max + 1, lossless.n_codes))
    u = lossless.mesh(lossless.phases()).unitary()
    assert np.abs(u @ u.conj().T - np.eye(10)).max() < 1e-12
    lossy = Device(10, Flaws(splitter_sigma=0.08, loss_db=0.3), seed=3)
    lossy.set_codes(lossless.codes)
    s = np.linalg.svd(lossy.mesh(lossy.phases()).unitary(), compute_uv=False)
    depth = lossy.layout.depth
    assert s.max() <= 1.0 + 1e-12 and s.max() <= 10 ** (-0.3 * (depth // 2) / 20) + 1e-12
    assert s.min() >= 10 ** (-0.3 * depth / 20) - 1e-12
    x = unit_inputs(10, 100)
    out = lossy.measure(x) / lossy.adc_max
    assert (out.sum(axis=1) <= 1.0 + 10 / lossy.adc_max).all()  # output power never exceeds input power


def test_a_dac_step_is_within_half_an_lsb() -> None:
    phases = np.random.default_rng(5).uniform(0, 2 * np.pi, 1000)
    for bits in (6, 8, 12):
        codes = codes_for_phases(phases, bits)
        volts = V_MAX * codes / ((1 << bits) - 1)
        want = np.sqrt(phases / (np.pi / V_PI**2))
        assert np.abs(volts - want).max() <= V_MAX / ((1 << bits) - 1) / 2 + 1e-12


def test_static_flaws_repeat_and_dynamic_noise_changes_per_query() -> None:
    flaws = preset("typical", phase_noise=0.05)
    a, b, c = Device(6, flaws, seed=9), Device(6, flaws, seed=9), Device(6, flaws, seed=10)
    assert np.array_equal(a.eps1, b.eps1) and np.array_equal(a.transmission, b.transmission)
    assert not np.array_equal(a.eps1, c.eps1)
    codes = np.random.default_rng(1).integers(0, a.dac_max + 1, a.n_codes)
    for d in (a, b):
        d.set_codes(codes)
    x = unit_inputs(6, 64)
    first_a, first_b = a.measure(x), b.measure(x)
    assert np.array_equal(first_a, first_b)  # the same chip and query index: the same noise
    assert not np.array_equal(a.measure(x), first_a)  # the next query draws new noise
    assert a.ledger == Ledger(queries=2, samples=128, chip_time=128 * a.sample_time)


def test_shot_noise_variance_is_linear_in_intensity() -> None:
    dev = Device(2, Flaws(shot_noise=0.05, adc_bits=20), seed=2)
    dev.set_codes(codes_for_phases(np.array([np.pi, 0.0, 0.0, 0.0]), 16))  # bar: each input stays on its port
    ratios = []
    for power in (0.1, 0.3, 0.9):
        x = np.tile([np.sqrt(power), 0.0], (20000, 1))
        out = dev.measure(x)[:, 0] / dev.adc_max
        ratios.append(out.var() / out.mean())
    assert max(ratios) / min(ratios) < 1.1 and abs(np.mean(ratios) - 0.05**2) < 0.1 * 0.05**2


def test_drift_is_a_random_walk_of_the_phases() -> None:
    dev = Device(4, Flaws(drift=0.01), seed=3)
    for _ in range(400):
        dev.measure(unit_inputs(4, 1))
    assert 0.5 * 0.01 * np.sqrt(400) < dev.drift.std() < 1.5 * 0.01 * np.sqrt(400)


def test_the_chip_shows_codes_and_detectors_only() -> None:
    """Training code gets a Chip: set_codes, measure, the ledger and sizes; no attribute holds the mesh, a phase, a
    flaw or the device, and it cannot be given one."""
    dev = Device(6, preset("l2ight"), seed=1)
    chip = Chip(dev)
    public = {name for name in dir(chip) if not name.startswith("_")}
    assert public == {"set_codes", "measure", "ledger", "n_modes", "n_codes", "dac_bits", "adc_bits", "layers"}
    assert not hasattr(chip, "__dict__")
    for name in public:
        value = getattr(chip, name)
        assert not isinstance(value, Device | np.ndarray | Flaws)
    with pytest.raises(AttributeError):
        chip.device = dev  # type: ignore[attr-defined]
    chip.set_codes(np.zeros(chip.n_codes, dtype=np.int64))
    assert chip.measure(unit_inputs(6, 3)).shape == (3, 6) and chip.ledger.queries == 1


@pytest.mark.parametrize(("call", "named"), [
    (lambda: preset("flawless"), "unknown flaw preset 'flawless'; expected one of: ideal, l2ight, pai2023"),
    (lambda: Device(4, Flaws(phase_noise=-0.1)), "`phase_noise` must be a finite number >= 0, got -0.1"),
    (lambda: Device(4, Flaws(dac_bits=40)), "`dac_bits` must be an integer in [1, 24], got 40"),
    (lambda: Device(4, Flaws(dac_bits=8)).set_codes(np.full(16, 256)), "code 0 is 256, outside [0, 255]"),
    (lambda: Device(4).set_codes(np.zeros(5, dtype=np.int64)), "expected 16 DAC codes"),
    (lambda: Device(4).measure(np.zeros((2, 5))), "expected input amplitudes of shape (batch, 4)"),
])
def test_bad_chip_input_is_named(call, named: str) -> None:
    with pytest.raises(DeviceError) as exc:
        call()
    assert named in str(exc.value)


# --- in-situ estimators (shared/photonics.md, test 7) --------------------------------------------------------------

@pytest.mark.parametrize(("kind", "directions"), [("spsa", 1), ("gaussian", 4), ("directional", 4)])
def test_estimators_point_along_the_gradient(kind: str, directions: int) -> None:
    """Averaged over many directions, each estimator points along the finite-difference gradient of a mesh's loss
    (cosine > 0.9)."""
    task = Task(n_modes=4, classes=2)
    rng = np.random.default_rng(11)
    x, y = rng.uniform(0, 1, (30, 2)), rng.integers(0, 2, 30)
    k = layout(4).size
    p = rng.uniform(0, 2 * np.pi, 2 * k)

    def loss(q: np.ndarray) -> float:
        return task.loss(ideal_intensity(4, q, task, x), y)

    h = 1e-6
    exact = np.array([(loss(p + h * e) - loss(p - h * e)) / (2 * h) for e in np.eye(p.size)])
    mean = np.mean([estimate(kind, loss, p, 1e-3, rng, directions) for _ in range(600)], axis=0)
    cosine = mean @ exact / (np.linalg.norm(mean) * np.linalg.norm(exact))
    assert cosine > 0.9, cosine


def test_the_light_cone_holds_every_mzi_that_can_change_the_read_detectors() -> None:
    """Outside the cone of the first 3 of 9 outputs, no MZI's phases change those outputs' intensities; with every
    output read, every MZI is inside."""
    n, read = 9, 3
    lay = layout(n)
    cone = lay.light_cone(read)
    assert 0 < cone.sum() < lay.size
    assert layout(n).light_cone(n).all()
    rng = np.random.default_rng(5)
    theta, phi = rng.uniform(0, 2 * np.pi, (2, lay.size))
    x = rng.normal(size=(n, 16)) + 1j * rng.normal(size=(n, 16))
    base = np.abs(mesh_of(lay, theta, phi, np.zeros(n)).propagate(x)[:read]) ** 2
    for k in range(lay.size):
        t2, p2 = theta.copy(), phi.copy()
        t2[k] += 1.0
        p2[k] += 1.0
        moved = np.abs(mesh_of(lay, t2, p2, np.zeros(n)).propagate(x)[:read]) ** 2
        assert np.allclose(moved, base, atol=1e-12) != bool(cone[k]), k


def test_a_coordinate_step_minimises_the_batch_loss_along_its_code() -> None:
    """On a chip with unknown biases and heater gains (no crosstalk or noise: the intensities are then exact
    sinusoids in one shifter's phase), a coordinate step with damping 1 changes only its code, and the batch loss
    it reaches is the lowest over every code of that shifter, to within the 64-phase grid (3 queries a step)."""
    task = Task(n_modes=5, classes=3)
    rng = np.random.default_rng(8)
    x, y = rng.uniform(0, 1, (40, 4)), rng.integers(0, 3, 40)
    chip = Chip(Device(5, Flaws(phase_bias=1.0, gamma_sigma=0.01, dac_bits=10), seed=4))
    codes = rng.integers(0, 1024, 2 * layout(5).size).astype(float)
    order = coordinate_order(chip, task)
    assert len(order) == 2 * layout(5).light_cone(3).sum()
    for j in order[:6]:
        queries = chip.ledger.queries
        stepped = coordinate_step(chip, codes, int(j), lambda cc: task.reading(chip_intensity(chip, cc, task, x), 0),
                                  lambda r: task.losses(r, y), damping=1.0)
        assert chip.ledger.queries == queries + 3
        assert np.flatnonzero(stepped != codes).tolist() in ([], [j])
        sweep = []
        for code in range(0, 1024, 4):
            trial = codes.copy()
            trial[j] = code
            sweep.append(task.loss(chip_intensity(chip, trial, task, x), y))
        reached = task.loss(chip_intensity(chip, stepped, task, x), y)
        assert reached <= min(sweep) + 0.01 * (max(sweep) - min(sweep)), (j, reached, min(sweep))
        codes = stepped


def test_in_situ_training_uses_codes_only_and_counts_queries() -> None:
    """A short SPSA run on a flawed chip: it learns (the loss falls on the training data) and every training query
    is on the ledger (two a step)."""
    task = Task(n_modes=4, classes=2)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (64, 2))
    y = (x[:, 0] > x[:, 1]).astype(np.int64)
    chip = Chip(Device(4, preset("typical"), seed=2))
    codes = rng.uniform(0, 255, 2 * layout(4).size)
    before = task.loss(chip_intensity(chip, codes, task, x), y)
    trained, curve = fit_in_situ(chip, task, codes, x, y, x, y, kind="spsa", steps=300, every=100)
    assert task.loss(chip_intensity(chip, trained, task, x), y) < before
    assert curve.queries == [0, 200, 400, 600]
    assert len(curve.accuracy) == 4


@pytest.mark.parametrize("n", [3, 6, 9])
def test_the_twins_gradient_is_exact(n: int) -> None:
    """The adjoint gradient of the ideal mesh's loss equals central differences."""
    task = Task(n_modes=n, classes=2)
    rng = np.random.default_rng(n)
    x, y = rng.uniform(0, 1, (20, n - 1)), rng.integers(0, 2, 20)
    p = rng.uniform(0, 2 * np.pi, 2 * layout(n).size)
    loss, grad = loss_and_gradient(n, p, task, x, y)
    assert abs(loss - task.loss(ideal_intensity(n, p, task, x), y)) < 1e-12
    h = 1e-6
    numeric = np.array([(task.loss(ideal_intensity(n, p + h * e, task, x), y)
                         - task.loss(ideal_intensity(n, p - h * e, task, x), y)) / (2 * h) for e in np.eye(p.size)])
    assert np.abs(grad - numeric).max() < 1e-6 * max(1.0, np.abs(numeric).max())


# --- networks of several meshes (onward.photonic.activation, network) --------------------------------------------

def test_the_activation_is_williamsons() -> None:
    """|f(z)| = √(1 − α) |sin(gP|z|²/2)| |z| at φ_b = π; what is tapped and what passes never exceed what came in."""
    act = Activation()
    z = np.random.default_rng(1).normal(size=200) * 0.4 + 1j * np.random.default_rng(2).normal(size=200) * 0.4
    out = act(z)
    power = np.abs(z) ** 2
    assert np.allclose(np.abs(out), np.sqrt(1 - act.alpha) * np.abs(np.sin(act.gain * act.power * power / 2))
                       * np.abs(z), atol=1e-15)
    assert np.all(act.tap(z) + np.abs(out) ** 2 <= power + 1e-15)
    assert np.allclose(act.tap(z), 0.1 * power)


def test_a_chip_of_two_layers_reads_what_the_ideal_network_computes() -> None:
    """Flaws off: every layer's readings (the activation's taps, then the output detectors) are the quantised
    readings of the ideal network for the nominal phases of the codes; one layer's taps are its outputs."""
    task = LocalTask(n_modes=6, classes=3, layers=2)
    dev = Device(6, Flaws(dac_bits=12, adc_bits=20), layers=2)
    k = layout(6).size
    rng = np.random.default_rng(4)
    dev.set_codes(np.concatenate([rng.integers(0, 4096, 4 * k), np.zeros(12, dtype=np.int64)]))
    x = rng.uniform(0, 1, (9, 5))
    got = dev.measure(task.encode(x), taps=True)
    assert got.shape == (9, 2, 6) and np.array_equal(dev.measure(task.encode(x)), got[:, -1])
    want = ideal_readings(task, nominal_phases(dev.codes[:4 * k], 12), x)
    assert np.abs(got / ((1 << 20) - 1) - want).max() <= 0.5 / ((1 << 20) - 1) + 1e-12
    single = Device(6, Flaws(), seed=3)
    assert np.array_equal(single.measure(task.encode(x), taps=True)[:, 0], single.measure(task.encode(x)))


def test_the_local_loss_slope_and_the_twins_gradient_are_exact() -> None:
    """The hinge's derivative in the readings, and a layer's exact gradient for a complex input field (what the
    twin trains the second layer on), equal central differences."""
    task = LocalTask(n_modes=5, classes=3, layers=2)
    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, 12)
    intensity = rng.uniform(0.01, 1, (12, 5))
    value, slope = task.loss_and_slope(intensity, y)
    assert abs(value - task.loss(intensity, y)) < 1e-12
    h = 1e-7
    numeric = np.zeros_like(intensity)
    for i in np.ndindex(intensity.shape):
        e = np.zeros_like(intensity)
        e[i] = h
        numeric[i] = (task.loss(intensity + e, y) - task.loss(intensity - e, y)) / (2 * h)
    assert np.abs(slope - numeric).max() < 1e-6
    field = rng.normal(size=(5, 12)) + 1j * rng.normal(size=(5, 12))
    p = rng.uniform(0, 2 * np.pi, 2 * layout(5).size)

    def loss_of(q: np.ndarray) -> float:
        out = mesh_of(layout(5), q[:10], q[10:], np.zeros(5)).propagate(field)
        return task.loss((np.abs(out) ** 2).T, y)

    value, grad = mesh_gradient(5, p, field, lambda i: task.loss_and_slope(i, y))
    assert abs(value - loss_of(p)) < 1e-12
    numeric = np.array([(loss_of(p + 1e-6 * e) - loss_of(p - 1e-6 * e)) / 2e-6 for e in np.eye(p.size)])
    assert np.abs(grad - numeric).max() < 1e-5 * max(1.0, np.abs(numeric).max())


class ScoresAreReadings(LocalTask):
    """Readings that are the scores themselves: the vote alone under test."""

    def scores(self, intensity: np.ndarray) -> np.ndarray:
        return intensity[..., :self.classes]


def test_the_vote_goes_to_the_majority_and_ties_to_the_deeper_layer() -> None:
    one_hot = np.eye(4)  # a layer voting c reads e_c
    votes = np.array([[0, 0, 1], [1, 2, 2], [2, 1, 0], [0, 1, 2]])  # per sample, layers 0, 1, 2
    readings = one_hot[votes]
    assert ScoresAreReadings(n_modes=4, classes=3, layers=3).predict(readings).tolist() == [0, 2, 0, 2]
    assert ScoresAreReadings(n_modes=4, classes=3, layers=2).predict(readings[:, :2]).tolist() == [0, 2, 1, 1]


def test_layers_train_one_after_the_other_on_their_own_loss() -> None:
    """FFzero's schedule on a chip of two meshes: the first half of the steps moves only the first layer's codes,
    the second half the second's; a coordinate sweep of each layer makes each layer's local loss fall."""
    task = LocalTask(n_modes=5, classes=2, layers=2)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (64, 4))
    y = (x[:, 0] > x[:, 1]).astype(np.int64)
    chip = Chip(Device(5, preset("l2ight"), seed=1, layers=2))
    k = layout(5).size
    codes = rng.uniform(0, 255, 4 * k)
    for steps in (1, 3):  # of 3 steps, the first two are layer 0's (step · layers // steps)
        early, _ = fit_in_situ(chip, task, codes, x, y, x, y, kind="directional", steps=steps, lr=8.0)
        assert np.array_equal(early[2 * k:], codes[2 * k:]) == (steps == 1) and not np.array_equal(early, codes)
    full, curve = fit_in_situ(chip, task, codes, x, y, x, y, kind="coordinate", steps=2 * len(
        coordinate_order(chip, task)), every=50, batch=64)
    first, second = (full != codes)[:2 * k], (full != codes)[2 * k:]
    assert first.any() and second.any()
    for layer, trained in ((0, full), (1, full)):
        before = task.loss(task.reading(chip_intensity(chip, codes, task, x), layer), y)
        after = task.loss(task.reading(chip_intensity(chip, trained, task, x), layer), y)
        assert after < before, (layer, before, after)
    assert curve.queries[-1] == 3 * 2 * len(coordinate_order(chip, task))


# --- `onward photonic SPEC` --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("edit", "named"), [
    (("chip", "modes = 8", "modes = 40"), "`chip.modes` must be in [5, 10] for iris (4 features + the bias mode"),
    (("chip", "modes = 8", "modes = 4"), "`chip.modes` must be in [5, 10]"),
    (("chip", 'preset = "l2ight"', 'preset = "perfect"'), "unknown flaw preset 'perfect'"),
    (("chip", "seeds = [1, 2, 3]", "seeds = [1]\nphase_noise = -0.5"), "`phase_noise` must be a finite number >= 0"),
    (("chip", "seeds = [1, 2, 3]", "seeds = [1]\ndac_bits = 0"), "`dac_bits` must be an integer in [1, 24], got 0"),
    (("chip", "seeds = [1, 2, 3]", "seeds = [1]\nwobble = 1.0"), "unknown key `chip.wobble`"),
    (("chip", "seeds = [1, 2, 3]", "seeds = [1]\nlayers = 0"), "`chip.layers` must be an integer in [1, 16], got 0"),
    (("chip", "seeds = [1, 2, 3]", "seeds = [1]\npower = -1"), "`chip.power` must be a number > 0, got -1"),
    (("train", 'methods = ["spsa", "gaussian", "directional", "coordinate"]', 'methods = ["adam"]'),
     "`train.methods` must list"),
    (("train", "coordinate_damping = 0.5", "coordinate_damping = 1.5"), "`train.coordinate_damping` must be in (0, 1]"),
    (("train", "queries = 48000", "queries = 0"), "`train.queries` must be an integer >= 1, got 0"),
    (("train", "queries = 48000", 'queries = "many"'), "`train.queries` must be an integer, got 'many'"),
])
def test_a_bad_photonic_spec_is_one_line_naming_the_key(edit: tuple[str, str, str], named: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _, old, new = edit
    text = (EXAMPLES / "photonic" / "iris.toml").read_text()
    assert old in text
    spec = tmp_path / "p.toml"
    spec.write_text(text.replace(old, new, 1))
    assert main(["photonic", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err, err


def test_photonic_methods_flag_picks_methods_and_names_a_bad_one(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(EXAMPLES / "photonic" / "iris.toml")
    assert main(["photonic", spec, "--methods", "spsa,adam"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--methods: unknown method 'adam'" in err
    assert main(["photonic", spec, "--queries", "30", "--methods", "coordinate", "--json", "--validation",
                 "--plot", str(tmp_path / "p.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["methods"]) == {"deployed", "coordinate"} and out["methods"]["coordinate"]["queries"] == 30


def test_photonic_runs_a_two_mesh_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The two-mesh Iris example end to end, briefly: the layer-local twin, every layer's taps, the plot."""
    plot = tmp_path / "two.png"
    assert main(["photonic", str(EXAMPLES / "photonic" / "iris_2layers.toml"), "--queries", "24", "--json",
                 "--methods", "directional,coordinate", "--plot", str(plot)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ideal"] > 0.8 and out["methods"]["coordinate"]["queries"] == 24
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_photonic_runs_the_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A short run of the Iris example: the twin, the deployed phases and every method, as JSON, and the plot."""
    plot = tmp_path / "iris.png"
    assert main(["photonic", str(EXAMPLES / "photonic" / "iris.toml"), "--queries", "40", "--json",
                 "--plot", str(plot)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["spec"] == "photonic_iris" and out["ideal"] > 0.8
    assert set(out["methods"]) == {"deployed", "spsa", "gaussian", "directional", "coordinate"}
    assert len(out["methods"]["deployed"]["per_chip"]) == 3
    assert out["methods"]["spsa"]["queries"] == 40 and out["methods"]["gaussian"]["queries"] == 40
    assert out["methods"]["coordinate"]["queries"] == 39  # 3 a step
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = tmp_path / "again.png"
    assert main(["photonic", str(EXAMPLES / "photonic" / "iris.toml"), "--queries", "40", "--json", "--workers", "2",
                 "--plot", str(again)]) == 0
    assert json.loads(capsys.readouterr().out) == out  # every job is seeded: the pool changes nothing
    for example in ("digits.toml", "digits_pooled.toml", "iris_2layers.toml", "digits_pooled_2layers.toml"):
        load_photonic_spec(EXAMPLES / "photonic" / example)  # the other examples are valid
