"""Self-configuration of a target unitary on a flawed chip through DAC codes and detector codes only.

A mesh with coupler (splitter) errors cannot hold the decomposition's phases as they are: each MZI's 2x2 block is
off, so the nominal deployment (`mesh.decompose` → `codes_for_phases`) lands near the target but not on it. Error
correction (Bandyopadhyay et al., Optica 8, 1247, 2021) and self-configuration (Hamerly et al., Phys. Rev. Applied
18, 044059, 2022) move the phases to compensate. Here the correction is measured on the chip, never computed from
its matrices: the algorithm gets a `Chip` (set_codes, measure, ledger) and nothing else.

The probes. With the target U_t, the N inputs v_k = U_t^† e_k (the conjugated rows of U_t) send, on the target,
all their light to detector k: one query of them gives the intensities |M_jk|² of M = U U_t^†. M = D (diagonal
phases, which detectors cannot see) iff U = D U_t.

The read-out. Pairs (v_j + v_k)/√2, (v_j + i v_k)/√2 added to the batch read M up to its rows' phases in one
query (interference_probes, relative_matrix): R_kj = M_kj M̄_kk. Its off-diagonal entries are the residual r,
zero iff U = D U_t on a lossless mesh, and Levenberg-Marquardt steps (levenberg) drive |r|², moving every shifter
at once, 1 query a step, each step kept only if the chip says |r|² fell. What differs is the Jacobian:

`model` (default). The nominal mesh's Jacobian (model_jacobian): the design's ideal couplers at the phases the
codes set under the nominal heater law. It costs no query, only host time, so it is recomputed after every few
steps. It is off by O(σ) per MZI, which the measured residual partly absorbs (a step the model mispredicts is
rejected or short); its fixed point is near the chip's best, not on it. When a round of it stops gaining, the
measured Jacobian below finishes.

`jacobian`. Every entry of R is exactly a + b cos p + c sin p in any one shifter's phase p (the field is linear
in e^{ip}), so two more settings per shifter give its Jacobian column with no step error (jacobian): exact for
this chip, 2N² queries each. Alone, from the nominal deployment, it needs several of them at N = 64: the first
steps from there are long and the model they rest on changes along them.

`sweep` (the coordinate baseline). The score S = (1/N) Σ_k |M_kk|² from the N probes, maximised one shifter at a
time: three settings 2π/3 apart fit its sinusoid (one of them is the current setting, whose S the previous fit
predicts: 2 queries a step), the best phase is atan2(c, b). Correct but slow: neighbouring shifters are coupled
(each MZI puts a common phase e^{iθ/2} on both its outputs), and a coordinate method zig-zags along them.

All go through the nominal heater law (train.code_phases: an unknown bias only shifts a sinusoid) and skip the
output screen, which intensities cannot see.

The fidelity (for the tests and the bench, which may read the Device's matrix): F = |Tr(U_t^† D* U)|² / N², D* the
output phases that maximise it, i.e. F = ((1/N) Σ_k |(U U_t^†)_kk|)². F = 1 iff U = D U_t."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import cho_factor, cho_solve

from onward.photonic.device import Chip
from onward.photonic.mesh import layout
from onward.photonic.mzi import C128, F64, mzi
from onward.photonic.train import code_phases

THIRDS = (2 * np.pi / 3, 4 * np.pi / 3)  # the two new settings of a step, relative to the current phase


def row_overlap(u: C128, target: C128) -> F64:
    """|(U U_t^†)_kk| per output k: how much of probe k's light reaches its own detector, as an amplitude."""
    return np.abs(np.einsum("kj,kj->k", np.asarray(u), np.conj(target)))


def fidelity(u: C128, target: C128) -> float:
    """F = max over output phase screens D of |Tr(U_t^† D U)|² / N² = (mean_k |(U U_t^†)_kk|)²: 1 iff U = D U_t
    (detectors cannot see D), below 1 otherwise; a lossy U scores below 1 too."""
    return float(np.mean(row_overlap(u, target)) ** 2)


def probes(target: C128) -> C128:
    """The probe batch (N, N): row k is v_k = U_t^† e_k (= conj(U_t[k])), all light on detector k on the target."""
    return np.ascontiguousarray(np.conj(target))


def score(chip: Chip, codes: np.ndarray, batch: C128) -> float:
    """One query: S = (1/N) Σ_k I_k(v_k), the mean intensity each probe leaves on its own detector (full scale 1)."""
    chip.set_codes(codes)
    intensity = chip.measure(batch) / ((1 << chip.adc_bits) - 1)
    return float(np.mean(np.diag(intensity)))


def shifter_order(n: int) -> np.ndarray:
    """The codes a sweep visits, in the order light meets them (layer 0): each MZI's φ (on its input) then its θ."""
    k = layout(n).size
    return np.stack([k + np.arange(k), np.arange(k)], axis=1).reshape(-1)


def fit_sinusoid(phases: F64, values: F64) -> F64:
    """(a, b, c) with values = a + b cos(phase) + c sin(phase) through three points."""
    basis = np.stack([np.ones(3), np.cos(phases), np.sin(phases)], axis=1)
    return np.linalg.solve(basis, values)


def sinusoid(abc: F64, phase: float) -> float:
    a, b, c = abc
    return float(a + b * np.cos(phase) + c * np.sin(phase))


@functools.lru_cache(maxsize=4)
def code_ring(dac_bits: int) -> tuple[np.ndarray, F64]:
    """The codes sorted by their nominal phase modulo 2π, and those phases (for nearest_codes' bisection)."""
    wrapped = np.mod(code_phases(dac_bits), 2 * np.pi)
    order = np.argsort(wrapped, kind="stable")
    return order, wrapped[order]


def nearest_codes(phases: ArrayLike, dac_bits: int) -> np.ndarray:
    """train.nearest_code for many phases at once (a Levenberg-Marquardt step rewrites every shifter; a sweep step
    picks three codes): the code whose nominal phase is nearest each phase modulo 2π, by bisection instead of a
    scan of all 2^b codes."""
    order, ring = code_ring(dac_bits)
    x = np.mod(np.asarray(phases, dtype=np.float64), 2 * np.pi)
    hi = np.searchsorted(ring, x) % ring.size
    lo = (hi - 1) % ring.size
    gap_lo = np.abs(np.angle(np.exp(1j * (ring[lo] - x))))
    gap_hi = np.abs(np.angle(np.exp(1j * (ring[hi] - x))))
    return order[np.where(gap_lo <= gap_hi, lo, hi)].astype(np.int64)


@dataclass
class Record:
    """The chip's own estimate of the configuration (measured F for `jacobian`, the score S for `sweep`) against
    the queries spent: the x axis of a fidelity-vs-queries figure."""

    queries: list[int] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    rounds: int = 0  # Jacobians used, the model's and the measured (model, jacobian), or sweeps (sweep)


# --- the measured-Jacobian method: the complex matrix from interference, Gauss-Newton on it ---------------------


def interference_probes(target: C128) -> C128:
    """The probe batch (N², N) that reads M = U U_t^† up to its rows' phases in one query: the N probes v_k, then
    (v_j + v_k)/√2 for every pair j < k, then (v_j + i v_k)/√2. Detector k sees |M_kj + e^{iα} M_kk|²/2, whose
    cross term is Re(e^{-iα} M_kj M̄_kk): the two α give M_kj M̄_kk, and the same probe gives M_jk M̄_jj at j."""
    v = probes(target)
    j, k = np.triu_indices(len(v), 1)
    return np.concatenate([v, (v[j] + v[k]) / np.sqrt(2), (v[j] + 1j * v[k]) / np.sqrt(2)])


def relative_matrix(readings: F64) -> C128:
    """R_kj = M_kj M̄_kk from the readings (N², N) of interference_probes (intensities, full scale 1): M with each
    row's phase referred to its diagonal, the only phases detectors can see. R_kk = |M_kk|². R is a linear
    combination of intensities, so it is exactly a + b cos p + c sin p in any one shifter's phase p."""
    n = readings.shape[1]
    j, k = np.triu_indices(n, 1)
    p = j.size
    m2 = readings[:n].T  # |M_kj|²: probe j on detector k
    zero, quarter = readings[n:n + p], readings[n + p:]
    r = np.diag(np.diag(m2)).astype(np.complex128)
    at_k = (m2[k, j] + m2[k, k]) / 2
    r[k, j] = zero[np.arange(p), k] - at_k + 1j * (quarter[np.arange(p), k] - at_k)
    at_j = (m2[j, k] + m2[j, j]) / 2
    r[j, k] = zero[np.arange(p), j] - at_j - 1j * (quarter[np.arange(p), j] - at_j)
    return r


def measure_relative(chip: Chip, codes: np.ndarray, batch: C128) -> C128:
    """One query: R for these codes."""
    chip.set_codes(codes)
    return relative_matrix(chip.measure(batch) / ((1 << chip.adc_bits) - 1))


def measured_fidelity(r: C128) -> float:
    """F read from the chip: (mean_k |M_kk|)² with |M_kk|² = R_kk."""
    return float(np.mean(np.sqrt(np.clip(np.real(np.diag(r)), 0.0, None))) ** 2)


def residual(r: C128) -> F64:
    """What Gauss-Newton drives to zero: R's off-diagonal entries (real, imaginary). With a lossless mesh they
    vanish iff M is diagonal, i.e. U = D U_t; unlike off-diagonal intensities they are first order in the error,
    so their Jacobian does not vanish at the solution."""
    off = r[~np.eye(len(r), dtype=bool)]
    return np.concatenate([off.real, off.imag])


def derivative_weights(p: F64) -> F64:
    """w with w · (y(p_0), y(p_1), y(p_2)) = y'(p_0) for any y = a + b cos p + c sin p (exact, no step error)."""
    basis = np.stack([np.ones(3), np.cos(p), np.sin(p)], axis=1)
    return np.array([0.0, -np.sin(p[0]), np.cos(p[0])]) @ np.linalg.inv(basis)


def jacobian(chip: Chip, codes: np.ndarray, shifters: np.ndarray, batch: C128, base: C128, psi: F64,
             progress: Callable[[], None] | None = None) -> F64:
    """d residual / d phase of every shifter at `codes`, from 2 queries each: the shifter at 2π/3 and 4π/3 from its
    setting (through the nominal heater law), R's entries fitted as exact sinusoids with the base R."""
    here = psi[codes[shifters]]
    moved = [nearest_codes(here + shift, chip.dac_bits) for shift in THIRDS]
    r0 = residual(base)
    out = np.empty((r0.size, shifters.size))
    for i, j in enumerate(shifters):
        trial = codes.copy()
        values = [r0]
        for m in moved:
            trial[j] = m[i]
            values.append(residual(measure_relative(chip, trial, batch)))
        w = derivative_weights(np.array([here[i], psi[moved[0][i]], psi[moved[1][i]]]))
        out[:, i] = w[0] * values[0] + w[1] * values[1] + w[2] * values[2]
        if progress is not None:
            progress()
    return out


def column_apply(mat: C128, modes: np.ndarray, blocks: C128, right: bool) -> C128:
    """One mesh column L (its MZIs' 2x2 `blocks` on the pairs (m, m + 1)) applied to `mat`: L @ mat, or mat @ L
    with `right`. A column couples disjoint pairs, so this is two strided updates, not an N x N product."""
    out = mat.copy()
    t = blocks
    if right:
        top, bottom = mat[:, modes], mat[:, modes + 1]
        out[:, modes] = top * t[:, 0, 0] + bottom * t[:, 1, 0]
        out[:, modes + 1] = top * t[:, 0, 1] + bottom * t[:, 1, 1]
    else:
        top, bottom = mat[modes], mat[modes + 1]
        out[modes] = t[:, 0, 0, None] * top + t[:, 0, 1, None] * bottom
        out[modes + 1] = t[:, 1, 0, None] * top + t[:, 1, 1, None] * bottom
    return out


def model_jacobian(n: int, phases: F64, target: C128) -> F64:
    """d residual / d phase of every shifter (shifter_order) on the *nominal* mesh, ideal couplers, at `phases`
    (every code's phase under the nominal heater law): 0 queries, the design a user has, no flaw. On a chip with
    splitter errors it is off by O(σ) per MZI, so its Gauss-Newton steps converge to near, not onto, the best
    setting; the residual they reduce is the measured one, so every step is still checked on the chip.

    Each shifter's dM is rank one: with U = A_c L_c B_c (L_c its column), dM = (A_c dL B_c) U_t^† and dL is
    an outer product on the MZI's two modes (dT/dθ = i e^{iθ} B[:, 0] (B diag(e^{iφ}, 1))[0, :],
    dT/dφ = i T[:, 0] e_0ᵀ). Then dR_kj = dM_kj M̄_kk + M_kj conj(dM_kk)."""
    lay = layout(n)
    k = lay.size
    theta, phi = phases[:k], phases[k:2 * k]
    blocks = mzi(theta, phi)
    coupler = np.array([1.0, 1j]) / np.sqrt(2)  # the ideal B's first column; B is symmetric: its first row
    slices, modes = lay.column_slices(), lay.modes
    after = [np.eye(n, dtype=np.complex128)]  # L_{N-1} ⋯ L_{c+1}, built from the output back
    for cols in reversed(slices[1:]):
        after.append(column_apply(after[-1], modes[cols], blocks[cols], right=True))
    after.reverse()
    before = np.conj(target).T.astype(np.complex128)  # L_{c-1} ⋯ L_0 U_t^†
    alpha = np.empty((2 * k, n), dtype=np.complex128)  # dM_j = alpha_j ⊗ beta_j, in code order (θ, then φ)
    beta = np.empty((2 * k, n), dtype=np.complex128)
    for c, cols in enumerate(slices):
        m = modes[cols]
        a = after[c][:, m].T, after[c][:, m + 1].T  # (MZIs, N): the columns of A_c on the two modes
        b = before[m], before[m + 1]  # (MZIs, N): the rows of B_c U_t^† on the two modes
        t = blocks[cols]
        e = 1j * np.exp(1j * theta[cols])[:, None]
        alpha[cols] = e * (coupler[0] * a[0] + coupler[1] * a[1])  # A_c B[:, 0] (B symmetric)
        beta[cols] = coupler[0] * np.exp(1j * phi[cols])[:, None] * b[0] + coupler[1] * b[1]
        alpha[k + cols.start:k + cols.stop] = 1j * (t[:, 0, 0, None] * a[0] + t[:, 1, 0, None] * a[1])
        beta[k + cols.start:k + cols.stop] = b[0]
        before = column_apply(before, m, t, right=False)
    m_model = before  # U U_t^† of the nominal mesh (no screen: R ignores row phases)
    order = shifter_order(n)
    alpha, beta = alpha[order], beta[order]
    diag = np.diag(m_model)
    d_diag = alpha * beta  # dM_kk
    dr = (alpha[:, :, None] * beta[:, None, :] * np.conj(diag)[None, :, None]
          + m_model[None] * np.conj(d_diag)[:, :, None])
    off = dr[:, ~np.eye(n, dtype=bool)]
    return np.concatenate([off.real, off.imag], axis=1).T
def levenberg(chip: Chip, codes: np.ndarray, shifters: np.ndarray, batch: C128, jac: F64, base: C128, psi: F64,
              budget: int, damping: float = 1e-3, patience: int = 6, cut: float = 0.01,
              ) -> tuple[np.ndarray, C128, list[tuple[int, float]], float]:
    """Levenberg-Marquardt steps with one Jacobian (measured or the model's: the chord method, 1 query a step).
    The step solves (JᵀJ + λ·mean diag(JᵀJ)) δ = −Jᵀr; it is written to the nearest codes and measured, and kept
    iff it lowers |r|² (the quantity Gauss-Newton models; the measured F follows it). A rejected step costs its
    query and multiplies λ by 4 (a shorter step nearer the gradient, where the linear model holds); a kept one
    keeps λ, so the factorisation is reused. The Jacobian is stale, and the loop ends, after `patience` steps in
    a row that did not cut |r|² by `cut` (rejected, or kept but meagre: the caller then refreshes it), or when
    `budget` queries are spent. Returns the codes, their R, (queries, measured F) after every query, the last λ."""
    normal = jac.T @ jac
    scale = float(np.mean(np.diag(normal)))
    eye = np.diag_indices_from(normal)
    lam, factor = damping, None
    phase = psi[codes[shifters]].astype(np.float64)
    res = residual(base)
    cost, r = float(res @ res), base
    trace: list[tuple[int, float]] = []
    spent = fails = 0
    while spent < budget and fails < patience:
        if factor is None:
            damped = normal.copy()
            damped[eye] += lam * scale
            factor = cho_factor(damped, overwrite_a=True)
        delta = -cho_solve(factor, jac.T @ res)
        trial = codes.copy()
        trial[shifters] = nearest_codes(phase + delta, chip.dac_bits)
        r_new = measure_relative(chip, trial, batch)
        spent += 1
        res_new = residual(r_new)
        cost_new = float(res_new @ res_new)
        if cost_new < cost:
            fails = 0 if cost_new < (1 - cut) * cost else fails + 1
            codes, r, res, cost, phase = trial, r_new, res_new, cost_new, phase + delta
        else:
            lam, factor, fails = 4 * lam, None, fails + 1
        trace.append((spent, measured_fidelity(r)))
    return codes, r, trace, lam


def configure_jacobian(chip: Chip, target: C128, codes: np.ndarray, budget: int, record: Record,
                       callback: Callable[[np.ndarray, int], None] | None,
                       progress: Callable[[], None] | None, model: bool, tol: float = 1e-5,
                       goal: float = 1 - 1e-5, rounds: int = 0) -> np.ndarray:
    """Measure R, then rounds of (a Jacobian at the current codes, Levenberg-Marquardt steps with it) while the
    budget allows and the measured F is below `goal`. `model`: first the nominal mesh's Jacobian
    (model_jacobian: 0 queries, host time only, so a round costs only its steps) until a round raises the
    measured F by less than `tol`, where the model's O(σ) error leaves the steps short of the chip's best; then,
    as without `model`, the measured Jacobian (jacobian: 2 queries a shifter, exact) until a round gains less
    than `tol`. `rounds` > 0 caps the measured Jacobians."""
    batch = interference_probes(target)
    psi = code_phases(chip.dac_bits)
    shifters = shifter_order(chip.n_modes)
    start = chip.ledger.queries
    r = measure_relative(chip, codes, batch)
    record.queries.append(1)
    record.score.append(measured_fidelity(r))
    damping, measured = 1e-3, 0
    while record.score[-1] < goal:
        spent = chip.ledger.queries - start
        if budget - spent < (0 if model else 2 * shifters.size) + 1 or (not model and measured == rounds > 0):
            break
        before = record.score[-1]
        if model:
            jac = model_jacobian(chip.n_modes, psi[codes], target)
        else:
            jac = jacobian(chip, codes, shifters, batch, r, psi, progress)
            measured += 1
            spent = chip.ledger.queries - start
            record.queries.append(spent)
            record.score.append(record.score[-1])
        codes, r, trace, lam = levenberg(chip, codes, shifters, batch, jac, r, psi, budget - spent, damping)
        damping = max(lam / 64, 1e-4)  # where the last round's steps were trusted, a little bolder
        del jac
        for q, f in trace:
            record.queries.append(spent + q)
            record.score.append(f)
        record.rounds += 1
        if callback is not None:
            callback(codes, chip.ledger.queries - start)
        if record.score[-1] - before < tol:
            if not model:
                break
            model, damping = False, 1e-3
    return codes


# --- the coordinate sweep: the score S, one shifter at a time ---------------------------------------------


def step(chip: Chip, codes: np.ndarray, j: int, now: float, batch: C128, psi: F64) -> float:
    """Move code j to the maximum of S's sinusoid in its phase (2 queries: the settings 2π/3 and 4π/3 away; `now`
    is S at the current setting). Updates `codes` in place and returns the fit's S at the written code."""
    here = psi[codes[j]]
    trial = codes.copy()
    settings = [int(codes[j]), *nearest_codes(here + np.array(THIRDS), chip.dac_bits).tolist()]
    values = [now]
    for code in settings[1:]:
        trial[j] = code
        values.append(score(chip, trial, batch))
    abc = fit_sinusoid(psi[settings], np.array(values))
    best = int(nearest_codes(np.arctan2(abc[2], abc[1]), chip.dac_bits))
    predicted = sinusoid(abc, psi[best])
    if predicted < max(values):  # never below a setting already measured (a fit off by rounding or noise)
        pick = int(np.argmax(values))
        best, predicted = settings[pick], values[pick]
    codes[j] = best
    return predicted


def configure_sweep(chip: Chip, target: C128, codes: np.ndarray, budget: int, record: Record,
                    callback: Callable[[np.ndarray, int], None] | None, every: int, refresh: int = 64,
                    progress: Callable[[], None] | None = None, rounds: int = 0) -> np.ndarray:
    """Coordinate sweeps maximising S, in light order then against it, until `budget` queries are spent;
    S is re-measured every `refresh` steps and at each sweep's start."""
    batch = probes(target)
    psi = code_phases(chip.dac_bits)
    order = shifter_order(chip.n_modes)
    start = chip.ledger.queries
    now = score(chip, codes, batch)
    spent = chip.ledger.queries - start
    due = every
    while spent + 2 <= budget and (not rounds or record.rounds < rounds):
        sweep = order[::-1] if record.rounds % 2 else order
        for i, j in enumerate(sweep):
            if spent + 2 > budget:
                break
            if i and i % refresh == 0 and spent + 3 <= budget:
                now = score(chip, codes, batch)
            now = step(chip, codes, int(j), now, batch, psi)
            spent = chip.ledger.queries - start
            record.queries.append(spent)
            record.score.append(now)
            if progress is not None:
                progress()
            if callback is not None and every and spent >= due:
                callback(codes, spent)
                due += every
        record.rounds += 1
        if spent + 3 <= budget:
            now = score(chip, codes, batch)
            spent = chip.ledger.queries - start
    return codes


METHODS = ("model", "jacobian", "sweep")


def self_configure(chip: Chip, target: C128, codes: np.ndarray, budget: int, method: str = "model",
                   callback: Callable[[np.ndarray, int], None] | None = None, every: int = 0,
                   progress: Callable[[], None] | None = None, rounds: int = 0) -> tuple[np.ndarray, Record]:
    """Configure `target` on the chip's first mesh from `codes` (the nominal deployment: codes_for_phases of
    mesh.decompose(target)) in at most `budget` queries, counted by the chip's ledger; only the Chip is used.
    `model`: the complex matrix by interference, Levenberg-Marquardt steps with the nominal mesh's Jacobian (no
    query), then with measured ones once those stall. `jacobian`: measured Jacobians only (2 queries a shifter).
    `sweep`: coordinate sweeps of the score S, 2 queries a shifter. `callback(codes, queries)` runs at the start,
    after each Jacobian's steps (model, jacobian) or every `every` queries (sweep), and at the end: the bench
    reads the Device's fidelity there, the algorithm never does. `progress()` ticks once per shifter measured or
    swept. `rounds` > 0 caps the measured Jacobians (model, jacobian) or sweeps (sweep). Returns the codes and the
    record of the chip's own estimate against queries."""
    if method not in METHODS:
        raise ValueError(f"unknown self-configuration method {method!r}; expected one of: {', '.join(METHODS)}")
    codes = np.asarray(codes, dtype=np.int64).copy()
    start = chip.ledger.queries
    record = Record()
    if callback is not None:
        callback(codes, 0)
    if method in ("model", "jacobian"):
        codes = configure_jacobian(chip, target, codes, budget, record, callback, progress, model=method == "model",
                                   rounds=rounds)
    else:
        codes = configure_sweep(chip, target, codes, budget, record, callback, every, progress=progress,
                                rounds=rounds)
    if callback is not None:
        callback(codes, chip.ledger.queries - start)
    return codes, record
