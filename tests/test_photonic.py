"""onward.photonic: the MZI's closed forms, meshes that are unitary, decompositions that round-trip, propagation
that equals the matrix (shared/photonics.md, "Tests that mean something", 1-4)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import unitary_group

from onward.photonic.mesh import MeshError, decompose, layout, mesh_of
from onward.photonic.mzi import coupler, mzi, solve

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


def test_propagation_column_by_column_equals_the_matrix() -> None:
    n = 12
    mesh = decompose(unitary_group.rvs(n, random_state=3))
    x = RNG.normal(size=(n, 50)) + 1j * RNG.normal(size=(n, 50))
    y = mesh.propagate(x)
    assert np.allclose(y, mesh.unitary() @ x, atol=1e-12)
    assert np.allclose(np.linalg.norm(y, axis=0), np.linalg.norm(x, axis=0), atol=1e-12)  # lossless: norm kept
    assert np.allclose(mesh.unitary().conj().T @ y, x, atol=1e-12)  # the inverse recovers the input
    assert np.allclose(mesh.propagate(x[:, 0]), y[:, 0], atol=1e-14)


def test_bad_input_is_named() -> None:
    with pytest.raises(MeshError, match="unknown mesh layout 'butterfly'"):
        layout(4, "butterfly")
    with pytest.raises(MeshError, match="at least 2 modes"):
        layout(1)
    with pytest.raises(MeshError, match="unitary"):
        decompose(np.ones((3, 3)))
