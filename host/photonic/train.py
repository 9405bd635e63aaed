"""In-situ training through the chip's codes alone, and the digital-twin baseline it is measured against.

The network is one mesh: the input's features as amplitudes on the first modes, a constant bias mode after them
(|E|² detection would lose the features' sign without one), the vector scaled to unit power; the logits are the
first C detectors' intensities times a scale s; the loss is the softmax cross-entropy. The trainable parameters
are the MZIs' θ and φ codes as real numbers (rounded at set_codes); the output screen does not change intensities
and stays at code 0.

Estimators of the loss gradient from forward queries only, each query one set_codes + measure on a mini-batch:
- `spsa`: Rademacher direction d, (L(c + δd) − L(c − δd)) / 2δ · d: two queries a step (Spall 1992);
- `gaussian` (FLOPS-style, Gu et al. DAC 2020): Q Gaussian directions u_q, Σ_q (L(c + δu_q) − L(c)) / δ · u_q / Q:
  1 + Q queries a step;
- `directional` (FFzero's directional derivative, layer-local: with one mesh the layer's loss is the network's):
  K Rademacher directions, each a central difference: 2K queries a step;
- `coordinate`: one code at a time, its sinusoid fitted from 3 queries and the loss minimised on the fit
  (coordinate_step): 3 queries a step.
The baseline `fit_ideal` trains the same network on the ideal model of the chip (host only, exact gradients by
central differences of the ideal mesh) and `deploy` writes its phases with the nominal heater law."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from onward.photonic.device import Chip, codes_for_phases, nominal_phases
from onward.photonic.mesh import Mesh, layout
from onward.photonic.mzi import C128, F64, coupler, mzi

ESTIMATORS = ("spsa", "gaussian", "directional", "coordinate")
GRID = 64  # phases a coordinate step tries on its fitted sinusoids


@dataclass(frozen=True)
class Task:
    """A classification task on an N-mode mesh: features in [0, 1] (n_features <= N - 1), C classes <= N."""

    n_modes: int
    classes: int
    scale: float = 30.0  # logits = scale · intensity (intensities sum to at most 1)
    taps = False  # the loss reads the output detectors (onward.photonic.network.LocalTask reads every layer's)

    def encode(self, x: F64) -> F64:
        """Amplitudes (batch, N): the features, then the bias mode 1, the rest 0, scaled to unit power."""
        a = np.zeros((len(x), self.n_modes))
        a[:, :x.shape[1]] = x
        a[:, x.shape[1]] = 1.0
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    def loss(self, intensity: F64, y: np.ndarray) -> float:
        return float(self.losses(intensity, y))

    def reading(self, intensity: F64, layer: int) -> F64:
        """What `layer`'s loss reads of one query's intensities: here the C class detectors."""
        return intensity[:, :self.classes]

    def losses(self, intensity: F64, y: np.ndarray) -> F64:
        """The mean cross-entropy of intensities shaped (..., batch, N): one loss per leading index."""
        z = self.scale * intensity[..., :self.classes]
        z = z - z.max(axis=-1, keepdims=True)
        return np.mean(np.log(np.exp(z).sum(axis=-1)) - z[..., np.arange(len(y)), y], axis=-1)

    def accuracy(self, intensity: F64, y: np.ndarray) -> float:
        return float(np.mean(intensity[:, :self.classes].argmax(axis=1) == y))


def chip_intensity(chip: Chip, codes: F64, task: Task, x: F64) -> F64:
    """One query: the codes (rounded, clipped to the DAC's range; the screens at 0), the batch, intensities in
    units of the full scale: (batch, N), or every layer's (batch, layers, N) for a task that reads taps."""
    top = (1 << chip.dac_bits) - 1
    full = np.zeros(chip.n_codes, dtype=np.int64)
    full[:len(codes)] = np.clip(np.rint(codes), 0, top).astype(np.int64)
    chip.set_codes(full)
    return chip.measure(task.encode(x), taps=task.taps) / ((1 << chip.adc_bits) - 1)


def estimate(kind: str, loss: Callable[[F64], float], c: F64, delta: float, rng: np.random.Generator,
             directions: int = 1) -> F64:
    """The gradient estimate of `kind` at c from loss evaluations only (each one chip query)."""
    if kind == "spsa":
        d = rng.choice([-1.0, 1.0], size=c.size)
        return (loss(c + delta * d) - loss(c - delta * d)) / (2 * delta) * d
    if kind == "gaussian":
        base = loss(c)
        g = np.zeros_like(c)
        for _ in range(directions):
            u = rng.normal(size=c.size)
            g += (loss(c + delta * u) - base) / delta * u
        return g / directions
    if kind == "directional":
        g = np.zeros_like(c)
        for _ in range(directions):
            d = rng.choice([-1.0, 1.0], size=c.size)
            g += (loss(c + delta * d) - loss(c - delta * d)) / (2 * delta) * d
        return g / directions
    raise ValueError(f"unknown estimator {kind!r}; expected one of: {', '.join(ESTIMATORS)}")


def coordinate_order(chip: Chip, task: Task, layer: int = 0) -> np.ndarray:
    """The codes a coordinate sweep of `layer` visits, in the order light meets them: θ then φ of every MZI whose
    phases can change the readings the layer's loss uses (the output detectors' light cone for a one-mesh
    task read on C detectors; every MZI for a layer read on all N)."""
    lay = layout(chip.n_modes)
    cone = np.ones(lay.size, dtype=bool) if task.taps else lay.light_cone(task.classes)
    inside = np.flatnonzero(cone)
    return 2 * lay.size * layer + np.stack([inside, lay.size + inside], axis=1).reshape(-1)


@functools.lru_cache(maxsize=4)
def code_phases(dac_bits: int) -> F64:
    """The nominal phase of every code of a `dac_bits` DAC (read-only; coordinate steps search it every step)."""
    psi = nominal_phases(np.arange(1 << dac_bits), dac_bits)
    psi.flags.writeable = False
    return psi


def nearest_code(phase: float, psi: F64) -> int:
    """The code whose nominal phase `psi[code]` is nearest `phase` modulo 2π."""
    return int(np.argmin(np.abs(np.angle(np.exp(1j * (psi - phase))))))


def coordinate_step(chip: Chip, c: F64, j: int, read: Callable[[F64], F64], losses: Callable[[F64], F64],
                    damping: float) -> F64:
    """One code's update from 3 queries (sequential minimal optimisation: Nakanishi et al. 2020, Ostaszewski et
    al.'s Rotosolve 2021; MixedTrain-style coordinate descent on a chip). The field at any detector of the layer
    the code drives is linear in e^{iφ} of that shifter, so the intensity is a + b cos φ + c sin φ in its phase:
    three settings 2π/3 apart (through the nominal heater law; the unknown bias only shifts the sinusoid) fit it for
    every reading `read(codes) -> (batch, R)` gives, `losses` of the predicted readings (grid, batch, R) is
    minimised over a grid of phases, and the code moves `damping` of the way there (a full move overfits the
    mini-batch)."""
    psi = code_phases(chip.dac_bits)
    now = psi[int(np.rint(c[j]))]
    probes = [nearest_code(now + shift, psi) for shift in (0.0, 2 * np.pi / 3, 4 * np.pi / 3)]
    measured = []
    for code in probes:
        trial = c.copy()
        trial[j] = code
        measured.append(read(trial))
    shape = measured[0].shape
    basis = np.stack([np.ones(3), np.cos(psi[probes]), np.sin(psi[probes])], axis=1)
    fit = np.linalg.lstsq(basis, np.stack([m.reshape(-1) for m in measured]), rcond=None)[0]  # (3, batch · R)
    grid = now + np.linspace(-np.pi, np.pi, GRID, endpoint=False)
    predicted = np.stack([np.ones(GRID), np.cos(grid), np.sin(grid)], axis=1) @ fit
    best = grid[int(np.argmin(losses(predicted.reshape(GRID, *shape))))]
    out = c.copy()
    out[j] = nearest_code(now + damping * (best - now), psi)
    return out


@dataclass
class Curve:
    """Test accuracy after every `every` steps, with the chip's query count then."""

    queries: list[int]
    accuracy: list[float]


def fit_in_situ(chip: Chip, task: Task, codes: F64, x: F64, y: np.ndarray, x_test: F64, y_test: np.ndarray,
                kind: str = "spsa", steps: int = 2000, batch: int = 32, lr: float = 2.0, delta: float = 2.0,
                directions: int = 1, seed: int = 0, every: int = 100, damping: float = 0.5) -> tuple[F64, Curve]:
    """Train the codes on the chip from forward queries only; the test accuracy is measured on the chip too (its
    queries are counted in the ledger, not in the curve's x axis: that is the training's queries). A `coordinate`
    step updates one code (coordinate_step; lr, delta, directions unused), the others every code of the layer at
    once. On a chip of several layers each layer trains on its own loss for its share of the steps, first to last
    (FFzero's schedule): a step's queries perturb that layer's codes only."""
    rng = np.random.default_rng(seed)
    top = (1 << chip.dac_bits) - 1
    k = layout(chip.n_modes).size
    c = np.asarray(codes, dtype=np.float64).copy()
    orders = [coordinate_order(chip, task, layer) for layer in range(chip.layers)] if kind == "coordinate" else []
    curve = Curve([], [])
    spent = 0
    for step in range(steps + 1):
        if step % every == 0 or step == steps:  # evaluation queries are not counted in `spent`
            curve.queries.append(spent)
            curve.accuracy.append(task.accuracy(chip_intensity(chip, c, task, x_test), y_test))
        if step == steps:
            break
        layer = step * chip.layers // steps
        idx = rng.choice(len(y), size=min(batch, len(y)), replace=False)

        def read(cc: F64, idx: np.ndarray = idx, layer: int = layer) -> F64:
            return task.reading(chip_intensity(chip, cc, task, x[idx]), layer)

        if orders:
            order = orders[layer]
            first = -(-layer * steps // chip.layers)  # the layer's first step
            c = coordinate_step(chip, c, int(order[(step - first) % len(order)]), read,
                                lambda r, idx=idx: task.losses(r, y[idx]), damping)
            spent += 3
            continue
        block = slice(2 * k * layer, 2 * k * (layer + 1))

        def loss(cb: F64, idx: np.ndarray = idx, block: slice = block, base: F64 = c) -> float:
            cc = base.copy()
            cc[block] = cb
            return task.loss(read(cc), y[idx])

        before = chip.ledger.queries
        g = estimate(kind, loss, c[block], delta, rng, directions)
        spent += chip.ledger.queries - before
        c[block] = np.clip(c[block] - lr * g, 0, top)
    return c, curve


def ideal_intensity(n: int, phases: F64, task: Task, x: F64) -> F64:
    lay = layout(n)
    k = lay.size
    mesh = Mesh(lay, phases[:k], phases[k:2 * k], np.zeros(n))
    return np.abs(task.encode(x) @ mesh.unitary().T) ** 2


def loss_and_gradient(n: int, phases: F64, task: Task, x: F64, y: np.ndarray) -> tuple[float, F64]:
    """The ideal mesh's cross-entropy and its exact gradient in θ, φ (mesh_gradient)."""

    def cross_entropy(intensity: F64) -> tuple[float, F64]:
        z = task.scale * intensity[:, :task.classes]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1.0
        d_intensity = np.zeros_like(intensity)
        d_intensity[:, :task.classes] = task.scale * p / len(y)
        return task.loss(intensity, y), d_intensity

    return mesh_gradient(n, phases, task.encode(x).T.astype(np.complex128), cross_entropy)


def mesh_gradient(n: int, phases: F64, field: C128, loss: Callable[[F64], tuple[float, F64]]
                  ) -> tuple[float, F64]:
    """A loss of the ideal mesh's output intensities (`loss(intensity (batch, N)) -> (value, dL/dI)`) for an input
    field (N, batch), and its exact gradient in θ, φ by the adjoint method: one forward pass keeping each column's
    input field, one backward pass of the adjoint field b = (D T_K ⋯ T_{k+1})^H w with w = dL/dI ∘ y; then
    dL/dθ_k = 2 Re Σ b^H (∂T_k/∂θ) u, u the MZI's input field (and the same for φ)."""
    lay = layout(n)
    k = lay.size
    theta, phi = phases[:k], phases[k:2 * k]
    blocks = mzi(theta, phi)
    b2 = coupler()
    inner = np.zeros((k, 2, 2), dtype=np.complex128)
    inner[:, 0, 0] = 1j * np.exp(1j * theta)
    outer = np.zeros((k, 2, 2), dtype=np.complex128)
    outer[:, 0, 0] = np.exp(1j * phi)
    outer[:, 1, 1] = 1.0
    d_theta = b2 @ inner @ b2 @ outer  # ∂T/∂θ
    d_phi = blocks @ np.diag([1j, 0.0])  # ∂T/∂φ = T diag(i, 0)
    e = np.array(field, dtype=np.complex128)
    columns = lay.column_slices()
    saved = []
    for cols in columns:
        m = lay.modes[cols]
        saved.append(e[[*m, *(m + 1)]].copy())
        t = blocks[cols]
        top, bottom = e[m], e[m + 1]
        e[m], e[m + 1] = (t[:, 0, 0, None] * top + t[:, 0, 1, None] * bottom,
                          t[:, 1, 0, None] * top + t[:, 1, 1, None] * bottom)
    value, d_intensity = loss((e.real**2 + e.imag**2).T)
    b = d_intensity.T * e  # w = dL/dI ∘ y; the screen is 0 (the identity)
    grad = np.zeros(2 * k)
    for cols, fields in zip(reversed(columns), reversed(saved), strict=True):
        m = lay.modes[cols]
        half = len(m)
        u0, u1 = fields[:half], fields[half:]
        b0, b1 = b[m], b[m + 1]
        for deriv, at in ((d_theta[cols], 0), (d_phi[cols], k)):
            dy0 = deriv[:, 0, 0, None] * u0 + deriv[:, 0, 1, None] * u1
            dy1 = deriv[:, 1, 0, None] * u0 + deriv[:, 1, 1, None] * u1
            grad[at + cols.start:at + cols.stop] = 2 * np.real(np.conj(b0) * dy0 + np.conj(b1) * dy1).sum(axis=1)
        t = blocks[cols]
        b[m], b[m + 1] = (np.conj(t[:, 0, 0, None]) * b0 + np.conj(t[:, 1, 0, None]) * b1,
                          np.conj(t[:, 0, 1, None]) * b0 + np.conj(t[:, 1, 1, None]) * b1)
    return value, grad


def adam(gradient: Callable[[F64], F64], p: F64, steps: int, lr: float) -> F64:
    """Adam (β 0.9, 0.999) on p for `steps` steps of `gradient`."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, steps + 1):
        g = gradient(p)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p = p - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return p


def fit_ideal(task: Task, x: F64, y: np.ndarray, steps: int = 400, lr: float = 0.05, seed: int = 0) -> F64:
    """The digital-twin baseline: the θ, φ phases of the ideal mesh, trained by Adam on the exact gradient
    (loss_and_gradient: host only, no chip queries)."""
    n = task.n_modes
    p = np.random.default_rng(seed).uniform(0, 2 * np.pi, 2 * layout(n).size)
    return adam(lambda q: loss_and_gradient(n, q, task, x, y)[1], p, steps, lr)


def deploy(phases: F64, dac_bits: int) -> F64:
    """The codes a user writes for an ideal model's θ, φ phases: the nominal heater law (no bias, nominal γ)."""
    return codes_for_phases(phases, dac_bits).astype(np.float64)
