"""Networks of several meshes with the electro-optic activation between them, trained as FFzero trains them: every
layer has its own loss on the intensities detected at that layer (the activation's photodiode, or the output
detectors for the last layer), with fixed class prototypes; layers train one after the other; they vote.

FFzero's layer-local loss (arXiv 2603.24790; shared/algorithms.md) on a layer's readings I (N per sample):
ẑ = I / ‖I‖, s_c = ẑ · p_c for C fixed unit prototypes p_c (a regular simplex's vertices, rotated by a random
orthogonal matrix), the multi-class hinge Σ_{c≠y} max(0, m + s_c − s_y) with m = 0.3, averaged over the batch.
Prediction: every layer votes argmax_c s_c; the majority wins, ties go to the deeper layer.

The digital twin of such a network (`fit_twin`) trains each layer's ideal mesh on its local loss with the exact
gradient (train.mesh_gradient: the layer's input field is fixed by the layers before it, so no derivative crosses an
activation), then propagates the training set to the next layer."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import ortho_group

from onward.photonic.activation import Activation
from onward.photonic.mesh import layout, mesh_of
from onward.photonic.mzi import F64
from onward.photonic.train import Task, adam, mesh_gradient


@functools.lru_cache(maxsize=8)
def prototypes(classes: int, n: int, seed: int) -> F64:
    """C unit vectors in R^N with pairwise cosine −1/(C − 1) (a regular simplex), rotated by a random orthogonal
    matrix of the seed. Cached (read-only): every loss evaluation of a task reads them."""
    simplex = np.eye(classes) - 1.0 / classes
    simplex /= np.linalg.norm(simplex, axis=1, keepdims=True)
    embedded = np.zeros((classes, n))
    embedded[:, :classes] = simplex
    out = embedded @ ortho_group.rvs(n, random_state=seed).T
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class LocalTask(Task):
    """A classification task on a chip of `layers` meshes: the readings are every layer's (batch, layers, N)."""

    layers: int = 2
    margin: float = 0.3
    seed: int = 0
    activation: Activation = field(default_factory=Activation)
    taps = True  # the chip's readings of every layer, not only the output detectors

    @property
    def prototypes(self) -> F64:
        return prototypes(self.classes, self.n_modes, self.seed)

    def scores(self, intensity: F64) -> F64:
        """s_c (..., batch, C) of readings (..., batch, N)."""
        z = intensity / (np.linalg.norm(intensity, axis=-1, keepdims=True) + 1e-12)
        return z @ self.prototypes.T

    def reading(self, intensity: F64, layer: int) -> F64:
        """What `layer`'s loss reads of one query's readings (batch, layers, N): that layer's N."""
        return intensity[:, layer]

    def losses(self, intensity: F64, y: np.ndarray) -> F64:
        """The hinge of one layer's readings (..., batch, N): one loss per leading index."""
        s = self.scores(intensity)
        right = s[..., np.arange(len(y)), y][..., None]
        hinge = np.maximum(0.0, self.margin + s - right)
        return (hinge.sum(axis=-1) - self.margin).mean(axis=-1)  # the true class's own term is the margin

    def loss_and_slope(self, intensity: F64, y: np.ndarray) -> tuple[float, F64]:
        """The hinge of readings (batch, N) and its derivative in the readings."""
        norm = np.linalg.norm(intensity, axis=1, keepdims=True) + 1e-12
        z = intensity / norm
        s = z @ self.prototypes.T
        rows = np.arange(len(y))
        active = (self.margin + s - s[rows, y][:, None] > 0).astype(np.float64)
        active[rows, y] = 0.0
        d_s = active
        d_s[rows, y] = -active.sum(axis=1)
        d_z = d_s @ self.prototypes / len(y)
        d_i = (d_z - z * (d_z * z).sum(axis=1, keepdims=True)) / norm
        return float(self.losses(intensity, y)), d_i

    def predict(self, readings: F64) -> np.ndarray:
        """The vote of every layer's argmax s_c (readings (batch, layers, N)); ties to the deeper layer."""
        votes = self.scores(readings).argmax(axis=-1)  # (batch, layers)
        counts = np.stack([(votes == c).sum(axis=1) for c in range(self.classes)], axis=1)
        best = counts.max(axis=1)
        rows = np.arange(len(votes))
        winner = np.zeros(len(votes), dtype=np.int64)
        decided = np.zeros(len(votes), dtype=bool)
        for layer in range(self.layers - 1, -1, -1):  # the deepest layer whose class has the most votes
            v = votes[:, layer]
            take = ~decided & (counts[rows, v] == best)
            winner[take] = v[take]
            decided |= take
        return winner

    def accuracy(self, intensity: F64, y: np.ndarray) -> float:
        return float(np.mean(self.predict(intensity) == y))


def ideal_readings(task: LocalTask, phases: F64, x: F64) -> F64:
    """What the ideal chip's detectors read (batch, layers, N) for the layers' θ, φ phases."""
    n, k = task.n_modes, layout(task.n_modes).size
    e = task.encode(x).T.astype(np.complex128)
    readings = []
    for layer in range(task.layers):
        p = phases[2 * k * layer:2 * k * (layer + 1)]
        e = mesh_of(layout(n), p[:k], p[k:], np.zeros(n)).propagate(e)
        if layer < task.layers - 1:
            readings.append(task.activation.tap(e).T)
            e = task.activation(e)
    readings.append((e.real**2 + e.imag**2).T)
    return np.stack(readings, axis=1)


def fit_twin(task: LocalTask, x: F64, y: np.ndarray, steps: int = 400, lr: float = 0.05, seed: int = 0) -> F64:
    """The digital twin: layer after layer, the ideal mesh trained by Adam on its local loss with the exact
    gradient, then the training set propagated through it and the activation."""
    n, k = task.n_modes, layout(task.n_modes).size
    rng = np.random.default_rng(seed)
    e = task.encode(x).T.astype(np.complex128)
    out = []
    for layer in range(task.layers):
        scale = task.activation.alpha if layer < task.layers - 1 else 1.0  # a tap reads α|z|²

        def local(intensity: F64, scale: float = scale) -> tuple[float, F64]:
            value, slope = task.loss_and_slope(scale * intensity, y)
            return value, scale * slope

        p = adam(lambda q, e=e, local=local: mesh_gradient(n, q, e, local)[1],
                 rng.uniform(0, 2 * np.pi, 2 * k), steps, lr)
        out.append(p)
        e = mesh_of(layout(n), p[:k], p[k:], np.zeros(n)).propagate(e)
        if layer < task.layers - 1:
            e = task.activation(e)
    return np.concatenate(out)
