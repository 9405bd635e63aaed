"""MZI meshes: Clements (rectangular, depth N, N(N−1)/2 MZIs) and Reck (triangular, depth 2N − 3), with an output
phase screen: U = D · T_K ⋯ T_1, light meeting T_1 first. A mesh is its layout (which mode pair each MZI couples,
in column order) and its phases; `unitary` and `propagate` apply it one column at a time, every column's MZIs at
once (they couple disjoint pairs), vectorised over the batch. `decompose` finds the phases of a given unitary
(Clements et al., Optica 3, 1460 (2016): nulling from both sides, then the left MZIs moved through the diagonal;
Reck et al. 1994: nulling from one side).

Convention: onward.photonic.mzi (T(θ, φ) = B diag(e^{iθ}, 1) B diag(e^{iφ}, 1)). Modes are rows of the field
E, shape (N, batch)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from onward.errors import OnwardError
from onward.photonic.mzi import C128, F64, mzi, solve

I64 = NDArray[np.int64]
LAYOUTS = ("clements", "reck")


class MeshError(OnwardError, ValueError):
    pass


@dataclass(frozen=True)
class Layout:
    """Where the MZIs sit: `modes[k]` is the upper mode of MZI k (it couples modes m and m + 1), `columns[k]` the
    column it sits in; MZIs are listed in the order light meets them, column by column."""

    n: int
    kind: str
    modes: I64
    columns: I64

    @property
    def size(self) -> int:
        return int(self.modes.size)

    @property
    def depth(self) -> int:
        return int(self.columns.max()) + 1 if self.size else 0

    def column_slices(self) -> list[slice]:
        """The MZIs of each column, as slices of the MZI list (it is sorted by column)."""
        edges = np.searchsorted(self.columns, np.arange(self.depth + 1))
        return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]

    def column_modes(self) -> list[slice | I64]:
        """Each column's upper modes: a strided slice where they are evenly spaced by 2 (every Clements column:
        views, no gather), else the index array."""
        out: list[slice | I64] = []
        for cols in self.column_slices():
            m = self.modes[cols]
            if m.size and np.all(np.diff(m) == 2):
                out.append(slice(int(m[0]), int(m[-1]) + 1, 2))
            else:
                out.append(m)
        return out


    def light_cone(self, detectors: int) -> np.ndarray:
        """Which MZIs can change what the first `detectors` outputs see (a bool per MZI): walking back from the
        output, an MZI is inside when it touches a mode already inside, and then both its modes are. The rest
        (in a Clements mesh read on 10 of 65 detectors, a third of the MZIs) only steer light to unread outputs."""
        inside = np.zeros(self.n + 1, dtype=bool)
        inside[:detectors] = True
        keep = np.zeros(self.size, dtype=bool)
        for cols in reversed(self.column_slices()):
            m = self.modes[cols]
            hit = inside[m] | inside[m + 1]
            keep[cols] = hit
            inside[m[hit]] = inside[m[hit] + 1] = True
        return keep

def layout(n: int, kind: str = "clements") -> Layout:
    """Clements: column c holds the MZIs on pairs (m, m + 1) with m ≡ c (mod 2), N columns (1 for N = 2). Reck: N − 1
    diagonals of N − 1, N − 2, ..., 1 MZIs, each from mode 0 down, layered greedily into 2N − 3 columns."""
    if n < 2:
        raise MeshError(f"a mesh needs at least 2 modes, got {n}")
    if kind == "clements":
        modes, columns = [], []
        for c in range(n):
            for m in range(c % 2, n - 1, 2):
                modes.append(m)
                columns.append(c)
        return Layout(n, kind, np.array(modes, dtype=np.int64), np.array(columns, dtype=np.int64))
    if kind == "reck":
        order = [m for i in range(n - 1) for m in range(n - 1 - i)]  # diagonals, as decompose's nulling meets them
        return _layered(n, kind, order)
    raise MeshError(f"unknown mesh layout {kind!r}; expected one of: {', '.join(LAYOUTS)}")


def _layered_columns(n: int, order: list[int]) -> list[int]:
    """Columns by greedy layering: an MZI goes one column after the last one that used either of its modes."""
    free = np.zeros(n, dtype=np.int64)  # the first column each mode is free in
    columns = []
    for m in order:
        c = int(max(free[m], free[m + 1]))
        columns.append(c)
        free[m] = free[m + 1] = c + 1
    return columns


def _layered(n: int, kind: str, order: list[int]) -> Layout:
    columns = _layered_columns(n, order)
    idx = np.argsort(columns, kind="stable")
    return Layout(n, kind, np.array(order, dtype=np.int64)[idx], np.array(columns, dtype=np.int64)[idx])


@dataclass
class Mesh:
    """A layout with its phases: θ, φ per MZI, the output screen's phases (N), and optional per-MZI coupler errors
    and amplitude transmissions (the flaws of onward.photonic.device fill them; ideal: 0 and 1)."""

    layout: Layout
    theta: F64
    phi: F64
    screen: F64
    eps1: F64 | None = None
    eps2: F64 | None = None
    transmission: F64 | None = None

    def blocks(self) -> C128:
        """Every MZI's 2x2 matrix (K, 2, 2), losses included."""
        t = mzi(self.theta, self.phi, 0.0 if self.eps1 is None else self.eps1,
                0.0 if self.eps2 is None else self.eps2)
        if self.transmission is not None:
            t = t * self.transmission[:, None, None]
        return t

    def propagate(self, field: C128) -> C128:
        """The output field of an input field (N, batch) or (N,), one column at a time. A batch wider than the mesh
        goes through the unitary instead (built by the same column-by-column propagation of the identity, then
        one matrix product): the same result, N² per column instead of N x batch."""
        e = np.array(field, dtype=np.complex128)
        vector = e.ndim == 1
        if vector:
            e = e[:, None]
        if e.shape[1] > self.layout.n:
            out = self.unitary() @ e
            return out[:, 0] if vector else out
        blocks = self.blocks()
        for cols, m in zip(self.layout.column_slices(), self.layout.column_modes(), strict=True):
            t = blocks[cols]
            below = slice(m.start + 1, m.stop + 1, 2) if isinstance(m, slice) else m + 1
            top, bottom = e[m], e[below]
            e[m], e[below] = (t[:, 0, 0, None] * top + t[:, 0, 1, None] * bottom,
                              t[:, 1, 0, None] * top + t[:, 1, 1, None] * bottom)
        e *= np.exp(1j * self.screen)[:, None]
        return e[:, 0] if vector else e

    def unitary(self) -> C128:
        """The mesh's transfer matrix U (N, N): the propagation of the identity (N columns: not wider than N)."""
        return self.propagate(np.eye(self.layout.n, dtype=np.complex128))


def mesh_of(lay: Layout, theta: F64, phi: F64, screen: F64) -> Mesh:
    return Mesh(lay, np.asarray(theta, dtype=np.float64), np.asarray(phi, dtype=np.float64),
                np.asarray(screen, dtype=np.float64))


def _null_right(u: C128, row: int, col: int) -> tuple[float, float]:
    """θ, φ of the MZI on columns (col, col + 1) whose inverse, multiplied on the right, zeroes u[row, col]:
    (U T†)[row, col] = u0 conj(T00) + u1 conj(T01) = 0 with tan(θ/2) e^{−iφ} = −u1 / u0."""
    u0, u1 = u[row, col], u[row, col + 1]
    theta = 2.0 * np.arctan2(abs(u1), abs(u0))
    phi = float(np.angle(u0) - np.angle(-u1)) if abs(u1) > 0 else 0.0
    return float(theta), phi


def _null_left(u: C128, row: int, col: int) -> tuple[float, float]:
    """θ, φ of the MZI on rows (row − 1, row) which, multiplied on the left, zeroes u[row, col]:
    (T U)[row, col] = c (e^{iφ} cos(θ/2) u0 − sin(θ/2) u1) = 0 with u0 = u[row − 1, col], u1 = u[row, col]."""
    u0, u1 = u[row - 1, col], u[row, col]
    theta = 2.0 * np.arctan2(abs(u0), abs(u1))
    phi = float(np.angle(u1) - np.angle(u0)) if abs(u0) > 0 else 0.0
    return float(theta), phi


def _apply(u: C128, m: int, t: C128, side: str) -> None:
    if side == "left":
        u[[m, m + 1], :] = t @ u[[m, m + 1], :]
    else:
        u[:, [m, m + 1]] = u[:, [m, m + 1]] @ t.conj().T


def decompose(u: C128, kind: str = "clements") -> Mesh:
    """The mesh of `kind` whose unitary is u (N x N, unitary). Clements: alternate nulling of u's lower triangle
    by MZIs applied on the right (inverse) and on the left, leaving a diagonal D; the left MZIs are then moved
    through D (T† D = D' T', onward.photonic.mzi.solve). Reck: all nulling on the right."""
    u = np.array(u, dtype=np.complex128)
    n = u.shape[0]
    if u.shape != (n, n) or n < 2:
        raise MeshError(f"decompose needs a square matrix of at least 2 x 2, got shape {u.shape}")
    if np.abs(u @ u.conj().T - np.eye(n)).max() > 1e-8:
        raise MeshError("decompose needs a unitary matrix (|U U^H - I| > 1e-8)")
    right: list[tuple[int, float, float]] = []  # in the order applied (each on the right, as T†)
    left: list[tuple[int, float, float]] = []  # in the order applied (each on the left)
    if kind == "clements":
        for i in range(n - 1):
            if i % 2 == 0:
                for j in range(i + 1):
                    row, col = n - 1 - j, i - j
                    theta, phi = _null_right(u, row, col)
                    _apply(u, col, mzi(theta, phi), "right")
                    right.append((col, theta, phi))
            else:
                for j in range(1, i + 2):
                    row, col = n + j - i - 2, j - 1
                    theta, phi = _null_left(u, row, col)
                    _apply(u, row - 1, mzi(theta, phi), "left")
                    left.append((row - 1, theta, phi))
    elif kind == "reck":
        for row in range(n - 1, 0, -1):
            for col in range(row):
                theta, phi = _null_right(u, row, col)
                _apply(u, col, mzi(theta, phi), "right")
                right.append((col, theta, phi))
    else:
        raise MeshError(f"unknown mesh layout {kind!r}; expected one of: {', '.join(LAYOUTS)}")
    # now L_k ⋯ L_1 U R_1† ⋯ R_r† = D, so U = L_1† ⋯ L_k† D R_r ⋯ R_1: move each L† (innermost first) through D
    d = np.diag(u).copy()
    moved: list[tuple[int, float, float]] = []
    for m, theta, phi in reversed(left):
        block = mzi(theta, phi).conj().T @ np.diag(d[[m, m + 1]])
        t2, p2, d0, d1 = solve(block)
        d[m], d[m + 1] = d0, d1
        moved.append((m, t2, p2))
    # U = D · M_1' ⋯ M_k' · R_r ⋯ R_1 with moved = [M_k', ..., M_1']: light meets R_1 first, M_1' last
    sequence = [*right, *moved]
    return _as_mesh(n, kind, sequence, np.angle(d))


def _as_mesh(n: int, kind: str, sequence: list[tuple[int, float, float]], screen: F64) -> Mesh:
    """The MZIs in the order light meets them, layered into columns (stable within a column)."""
    lay = _layered(n, kind, [m for m, _, _ in sequence])
    order = np.argsort(_layered_columns(n, [m for m, _, _ in sequence]), kind="stable")
    theta = np.array([sequence[k][1] for k in order])
    phi = np.array([sequence[k][2] for k in order])
    return mesh_of(lay, theta, phi, screen)

