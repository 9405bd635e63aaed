"""FFzero (arXiv 2603.24790): layer-local learning with fixed prototypes and directional derivatives.

Float reference only (the fixed-point reference and the firmware come later; docs/ffzero.md sketches them).

Every layer l is a Linear map z = W h + b with C fixed unit prototypes p_c in its output space (the vertices of a
regular simplex, randomly rotated). Its local loss looks only at ẑ = z/||z|| and s_c = ẑ·p_c:
classification: the multi-class hinge Σ_c max(0, m + s_c - s_y), summed over the batch (the public code sums);
regression: the mean squared error between the target (rescaled to [-1, 1]) and ẑ·p for one random unit p.
The layer's parameters (W and b flattened, d of them) learn from the estimator of `zeroth_order`, with no
backward pass. Layer 1 trains all its epochs, is frozen, and the data is propagated (the linear output z as in
the public code, or ReLU(z)); then layer 2, and so on. Prediction: every layer votes argmax_c s_c, majority
wins, ties go to the deepest layer. Regression predicts with the last layer's ẑ·p.

`GlobalDD` is the paper's `bp_dd` ablation: the same estimator on all parameters of the MLP at once, with one
global cross-entropy (MSE for regression) on the last layer's output.

Cost accounting (`Cost`): one *layer evaluation* is one dense layer applied to one sample. A DD direction costs
two evaluations of the block it perturbs (θ ± εu): 2K layer evaluations per sample per epoch for an FFzero layer,
2K·L for bp_dd (the whole net is the block). FFzero also propagates the training set once through each frozen
layer but the last. The clean loss L(θ) is never needed (central differences), so it is not counted. MACs are
counted the same way, fan_in·fan_out per layer evaluation (bias additions are not counted).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from onward.data import rescale_targets, restore_targets
from onward.fixed import I64
from onward.metrics import r2_score
from onward.nn.dense import F64
from onward.rules.ffzero.zeroth_order import Distribution, black_box_pair_loss, dd_gradient, unit_directions

Task = Literal["classification", "regression"]
Activation = Literal["linear", "relu"]
REGRESSION_WIDTH = 10  # the public code's last FFzero layer for regression

# independent random streams of one seed
STREAM_INIT, STREAM_PROTOTYPES, STREAM_DIRECTIONS, STREAM_ORDER = 0, 1, 2, 3


@dataclass(frozen=True)
class FFzeroConfig:
    hidden: tuple[int, ...] = (100, 100)  # widths of the layers before the last
    out_width: int | None = None  # the last layer; None: the class count (classification) or 10 (regression)
    epochs: int = 100  # per layer for FFzero, in total for bp_dd
    lr: float = 1e-3
    eps: float = 1e-3  # norm of the perturbation ε·u of the whole block
    directions: int = 1  # K
    margin: float = 0.3
    batch_size: int = 256
    activation: Activation = "linear"  # what the next layer receives: z (the public code) or ReLU(z)
    seed: int = 0
    distribution: Distribution = "gaussian"  # the paper's; "rademacher" is what the device will use
    task: Task = "classification"
    eps_per_weight: bool = False  # True: eps is the perturbation of each parameter, ε = eps·sqrt(d) (the device)

    def block_eps(self, d: int) -> float:
        return self.eps * float(np.sqrt(d)) if self.eps_per_weight else self.eps


@dataclass
class Cost:
    """Work done while training, summed over samples; divide by the training set size for per-sample figures."""

    layer_evals: int = 0
    macs: int = 0
    presentations: int = 0  # samples fed to a DD step (of one layer for FFzero, of the whole net for bp_dd)
    seconds: float = 0.0

    def add(self, samples: int, evals: int, macs: int) -> None:
        """`samples` samples, each costing `evals` layer evaluations and `macs` multiply-accumulates."""
        self.layer_evals += samples * evals
        self.macs += samples * macs

    @property
    def samples_per_second(self) -> float:
        return self.presentations / self.seconds if self.seconds > 0 else float("nan")


# --- building blocks --------------------------------------------------------------------------------------

def init_linear(rng: np.random.Generator, fan_in: int, fan_out: int) -> F64:
    """torch.nn.Linear's default init, W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as one flat block [W, b]."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=fan_out * fan_in + fan_out)


def haar_orthogonal(rng: np.random.Generator, n: int) -> F64:
    """A Haar-random rotation: QR of a Gaussian matrix, columns sign-fixed by diag(R), redrawn until det > 0."""
    while True:
        q, r = np.linalg.qr(rng.standard_normal((n, n)))
        q = q * np.sign(np.diag(r))
        if np.linalg.det(q) > 0:
            return q


def simplex_prototypes(rng: np.random.Generator, width: int, classes: int) -> F64:
    """C unit vectors in R^width with pairwise cosine -1/(C-1): identity rows minus their centroid, normalised,
    then rotated at random so they are not aligned with the units."""
    if classes > width:
        raise ValueError(f"a layer of width {width} cannot hold {classes} simplex prototypes (needs width >= classes)")
    vertices = np.eye(classes, width)
    vertices -= vertices.mean(axis=0)
    vertices /= np.linalg.norm(vertices, axis=1, keepdims=True)
    return vertices @ haar_orthogonal(rng, width)


def random_prototype(rng: np.random.Generator, width: int) -> F64:
    """Regression: one Gaussian direction of unit length, shape (1, width)."""
    p = rng.standard_normal((1, width))
    return p / np.linalg.norm(p)


def similarities(z: F64, protos: F64) -> F64:
    """s_c = ẑ·p_c for z of shape (..., width); a zero z gives zero similarities instead of NaN."""
    norm = np.linalg.norm(z, axis=-1, keepdims=True)
    return (z / np.maximum(norm, 1e-300)) @ protos.T


def hinge_loss(z: F64, y: I64, protos: F64, margin: float) -> F64:
    """Σ over the batch and over c (c = y included, it adds m) of max(0, m + s_c - s_y); z is (..., B, width)."""
    s = similarities(z, protos)
    s_true = np.take_along_axis(s, np.broadcast_to(y[:, None], (*s.shape[:-1], 1)), axis=-1)
    return np.maximum(0.0, margin + s - s_true).sum(axis=(-2, -1))


def regression_loss(z: F64, y: F64, protos: F64) -> F64:
    """Mean over the batch of (y - ẑ·p)^2 (torch's MSELoss, as the public code); z is (..., B, width)."""
    s = similarities(z, protos)[..., 0]
    return ((s - y) ** 2).mean(axis=-1)


def vote(predictions: I64) -> I64:
    """Majority vote of per-layer predictions (L, N), layer 0 first; a tie goes to the deepest layer among the
    tied classes' voters (the public code breaks ties by the largest sum of voter indices instead)."""
    n = predictions.shape[1]
    counts = np.zeros((n, int(predictions.max()) + 1), dtype=np.int64)
    cols = np.arange(n)
    for p in predictions:
        np.add.at(counts, (cols, p), 1)
    best = counts.max(axis=1)
    out = np.full(n, -1, dtype=np.int64)
    for p in predictions[::-1]:  # deepest first: the first voter of a top-count class wins
        take = (out < 0) & (counts[cols, p] == best)
        out[take] = p[take]
    return out


def activate(z: F64, activation: Activation) -> F64:
    return np.maximum(z, 0.0) if activation == "relu" else z


def batches(rng: np.random.Generator, n: int, batch: int) -> list[I64]:
    order = rng.permutation(n)
    return [order[i:i + batch] for i in range(0, n, batch)]


@dataclass
class TargetScale:
    """Regression targets to [-1, 1] from the training range, and back."""

    lo: float = -1.0
    hi: float = 1.0

    @classmethod
    def fit(cls, y: F64) -> TargetScale:
        return cls(float(y.min()), float(y.max()))

    def forward(self, y: F64) -> F64:
        return rescale_targets(y, self.lo, self.hi)

    def inverse(self, s: F64) -> F64:
        return restore_targets(s, self.lo, self.hi)



def start_fit(cfg: FFzeroConfig, y: F64 | I64) -> tuple[TargetScale, F64 | I64, np.random.Generator,
                                                        np.random.Generator]:
    """What every fit starts from: the target scaling (regression; identity otherwise), then the direction
    and sample-order streams of the seed."""
    scale = TargetScale()
    if cfg.task == "regression":
        scale = TargetScale.fit(np.asarray(y, dtype=np.float64))
        y = scale.forward(np.asarray(y, dtype=np.float64))
    return (scale, y, np.random.default_rng([cfg.seed, STREAM_DIRECTIONS]),
            np.random.default_rng([cfg.seed, STREAM_ORDER]))

# --- FFzero -----------------------------------------------------------------------------------------------

@dataclass
class LocalLayer:
    fan_in: int
    fan_out: int
    theta: F64  # [W (out, in) row-major, b (out)]: the block the estimator perturbs
    protos: F64  # (C, out), unit rows; (1, out) for regression

    @property
    def w(self) -> F64:
        return self.theta[: self.fan_out * self.fan_in].reshape(self.fan_out, self.fan_in)

    @property
    def b(self) -> F64:
        return self.theta[self.fan_out * self.fan_in:]

    def forward(self, h: F64) -> F64:
        return h @ self.w.T + self.b

    def response(self, h: F64, dirs: F64) -> F64:
        """The layer's output change per unit step along each direction: U_k h + u_b, shape (K, B, out).
        Exact because the layer is linear in θ: z(θ ± εu) = z ± ε·response (one extra product per direction)."""
        k = dirs.shape[0]
        u_w = dirs[:, : self.fan_out * self.fan_in].reshape(k, self.fan_out, self.fan_in)
        u_b = dirs[:, self.fan_out * self.fan_in:]
        return h @ u_w.transpose(0, 2, 1) + u_b[:, None, :]


@dataclass
class FFzero:
    config: FFzeroConfig
    input_dim: int
    classes: int  # ignored for regression
    layers: list[LocalLayer] = field(init=False)
    cost: Cost = field(init=False, default_factory=Cost)
    history: list[tuple[int, int, float]] = field(init=False, default_factory=list)  # (layer, epoch, test metric)
    scale: TargetScale = field(init=False, default_factory=TargetScale)

    def __post_init__(self) -> None:
        cfg = self.config
        out = cfg.out_width or (self.classes if cfg.task == "classification" else REGRESSION_WIDTH)
        dims = (self.input_dim, *cfg.hidden, out)
        init = np.random.default_rng([cfg.seed, STREAM_INIT])
        protos = np.random.default_rng([cfg.seed, STREAM_PROTOTYPES])
        self.layers = []
        for fan_in, fan_out in itertools.pairwise(dims):
            p = (simplex_prototypes(protos, fan_out, self.classes) if cfg.task == "classification"
                 else random_prototype(protos, fan_out))
            self.layers.append(LocalLayer(fan_in, fan_out, init_linear(init, fan_in, fan_out), p))

    # --- the local loss and one DD step ---
    def local_loss(self, layer: LocalLayer, z: F64, y: F64 | I64) -> F64:
        if self.config.task == "classification":
            return hinge_loss(z, np.asarray(y, dtype=np.int64), layer.protos, self.config.margin)
        return regression_loss(z, np.asarray(y, dtype=np.float64), layer.protos)

    def train_step(self, layer: LocalLayer, h: F64, y: F64 | I64, rng: np.random.Generator) -> None:
        cfg = self.config
        d = layer.theta.size
        eps = cfg.block_eps(d)
        z = layer.forward(h)

        def pair(dirs: F64) -> tuple[F64, F64]:
            dz = eps * layer.response(h, dirs)
            return self.local_loss(layer, z + dz, y), self.local_loss(layer, z - dz, y)

        layer.theta -= cfg.lr * dd_gradient(pair, unit_directions(rng, cfg.directions, d, cfg.distribution), eps)
        self.cost.add(len(h), 2 * cfg.directions, 2 * cfg.directions * layer.fan_in * layer.fan_out)
        self.cost.presentations += len(h)

    # --- the schedule ---
    def fit(self, x: F64, y: F64 | I64, x_test: F64 | None = None, y_test: F64 | I64 | None = None) -> FFzero:
        """Train layer after layer; with a test set, record each layer's own test metric after every epoch."""
        cfg = self.config
        self.scale, y, dirs_rng, order_rng = start_fit(cfg, y)
        h, h_test = x, x_test
        for index, layer in enumerate(self.layers):
            for epoch in range(cfg.epochs):
                start = time.perf_counter()
                for idx in batches(order_rng, len(h), cfg.batch_size):
                    self.train_step(layer, h[idx], y[idx], dirs_rng)
                self.cost.seconds += time.perf_counter() - start
                if h_test is not None and y_test is not None:
                    self.history.append((index, epoch, self._layer_metric(layer, h_test, y_test)))
            if index < len(self.layers) - 1:  # freeze and propagate
                start = time.perf_counter()
                h = activate(layer.forward(h), cfg.activation)
                self.cost.seconds += time.perf_counter() - start
                self.cost.add(len(h), 1, layer.fan_in * layer.fan_out)
                if h_test is not None:
                    h_test = activate(layer.forward(h_test), cfg.activation)
        return self

    # --- prediction ---
    def layer_similarities(self, x: F64) -> list[F64]:
        """s_c of every layer for every sample: [(N, C)] input to output."""
        out, h = [], x
        for layer in self.layers:
            z = layer.forward(h)
            out.append(similarities(z, layer.protos))
            h = activate(z, self.config.activation)
        return out

    def layer_predictions(self, x: F64) -> I64:
        """Each layer's argmax_c s_c, shape (L, N)."""
        return np.stack([s.argmax(axis=1) for s in self.layer_similarities(x)])

    def predict(self, x: F64) -> F64 | I64:
        if self.config.task == "classification":
            return vote(self.layer_predictions(x))
        return self.scale.inverse(self.layer_similarities(x)[-1][:, 0])

    def score(self, x: F64, y: F64 | I64) -> float:
        """Test accuracy (classification) or R² (regression)."""
        if self.config.task == "classification":
            return float(np.mean(self.predict(x) == y))
        return r2_score(np.asarray(y, dtype=np.float64), np.asarray(self.predict(x), dtype=np.float64))

    def _layer_metric(self, layer: LocalLayer, h: F64, y: F64 | I64) -> float:
        s = similarities(layer.forward(h), layer.protos)
        if self.config.task == "classification":
            return float(np.mean(s.argmax(axis=1) == y))
        return r2_score(self.scale.forward(np.asarray(y, dtype=np.float64)), s[:, 0])


# --- the bp_dd ablation -----------------------------------------------------------------------------------

@dataclass
class GlobalDD:
    """The same estimator on every parameter of the MLP at once, with one global loss on the last layer's output:
    cross-entropy (mean over the batch, torch's default) for classification, MSE for regression (1 output)."""

    config: FFzeroConfig
    input_dim: int
    classes: int
    theta: F64 = field(init=False)
    dims: tuple[int, ...] = field(init=False)
    cost: Cost = field(init=False, default_factory=Cost)
    history: list[tuple[int, float]] = field(init=False, default_factory=list)  # (epoch, test metric)
    scale: TargetScale = field(init=False, default_factory=TargetScale)

    def __post_init__(self) -> None:
        cfg = self.config
        out = self.classes if cfg.task == "classification" else 1
        self.dims = (self.input_dim, *cfg.hidden, out)
        init = np.random.default_rng([cfg.seed, STREAM_INIT])
        self.theta = np.concatenate([init_linear(init, a, b) for a, b in itertools.pairwise(self.dims)])

    @property
    def macs_per_sample(self) -> int:
        return sum(a * b for a, b in itertools.pairwise(self.dims))

    def forward(self, theta: F64, x: F64) -> F64:
        h, at = x, 0
        last = len(self.dims) - 2
        for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(self.dims)):
            w = theta[at:at + fan_out * fan_in].reshape(fan_out, fan_in)
            b = theta[at + fan_out * fan_in:at + fan_out * fan_in + fan_out]
            at += fan_out * fan_in + fan_out
            h = h @ w.T + b
            if layer < last:
                h = activate(h, self.config.activation)
        return h

    def loss(self, theta: F64, x: F64, y: F64 | I64) -> float:
        out = self.forward(theta, x)
        if self.config.task == "regression":
            return float(np.mean((out[:, 0] - y) ** 2))
        top = out.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(out - top).sum(axis=1)) + top[:, 0]
        return float(np.mean(log_z - out[np.arange(len(out)), np.asarray(y, dtype=np.int64)]))

    def train_step(self, x: F64, y: F64 | I64, rng: np.random.Generator) -> None:
        cfg = self.config
        d = self.theta.size
        eps = cfg.block_eps(d)
        pair = black_box_pair_loss(lambda th: self.loss(th, x, y), self.theta, eps)
        self.theta -= cfg.lr * dd_gradient(pair, unit_directions(rng, cfg.directions, d, cfg.distribution), eps)
        self.cost.add(len(x), 2 * cfg.directions * (len(self.dims) - 1), 2 * cfg.directions * self.macs_per_sample)
        self.cost.presentations += len(x)

    def fit(self, x: F64, y: F64 | I64, x_test: F64 | None = None, y_test: F64 | I64 | None = None) -> GlobalDD:
        cfg = self.config
        self.scale, y, dirs_rng, order_rng = start_fit(cfg, y)
        for epoch in range(cfg.epochs):
            start = time.perf_counter()
            for idx in batches(order_rng, len(x), cfg.batch_size):
                self.train_step(x[idx], y[idx], dirs_rng)
            self.cost.seconds += time.perf_counter() - start
            if x_test is not None and y_test is not None:
                self.history.append((epoch, self.score(x_test, y_test)))
        return self

    def predict(self, x: F64) -> F64 | I64:
        out = self.forward(self.theta, x)
        if self.config.task == "classification":
            return out.argmax(axis=1)
        return self.scale.inverse(out[:, 0])

    def score(self, x: F64, y: F64 | I64) -> float:
        if self.config.task == "classification":
            return float(np.mean(self.predict(x) == y))
        return r2_score(np.asarray(y, dtype=np.float64), np.asarray(self.predict(x), dtype=np.float64))
