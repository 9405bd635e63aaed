"""Forward gradients: a gradient estimate from one forward-mode pass (a jvp), no backward pass.

A tangent v is pushed forward with the values; the output directional derivative d = ∇L · v (the softmax
error dotted with the output tangent) then gives the estimate g = d v, unbiased because E[v vᵀ] = I.

* weight-perturbed (Baydin et al. 2022, "Gradients without backpropagation"): v ~ N(0, I) over the weights;
  t_l = V_l h_{l-1} + W_l t_{l-1}, g_{W_l} = d V_l.
* activity-perturbed (Ren et al. 2022, "Scaling forward gradient with local losses"): tangents u_l on the
  pre-activations z_l; t_l = W_l t_{l-1} + u_l, g_{z_l} = d u_l and g_{W_l} = g_{z_l} h_{l-1}ᵀ. The variance
  grows with the number of units instead of the number of weights.
* K tangents: the mean (1/K) Σ_k d_k v_k (unbiased), or the orthogonal projection of Flügel et al. 2024,
  g = V (VᵀV)⁺ d with d = Vᵀ∇L: the gradient's projection onto span(V), exact once V spans it. For isotropic
  V its expectation is (K/N) ∇L (N = perturbed dimension), so it wants an N/K times larger learning rate.

Activity mode: ReLU units with z <= 0 have ∇_z L = 0 and pass no tangent on, so their tangent is dropped
(u ⊙ relu'(z)): the estimate stays unbiased, with less variance, and the device skips those rows of the
update. Weight mode stays as Baydin et al.: every weight is perturbed (its tangent is shared by a batch).

Network: PEPITA's (bias-free dense layers, ReLU hidden layers, softmax cross-entropy), from the same
He-uniform initial weights, so the rules compare on one network.

Fixed point (`Fixed`, twin of firmware/src/rule_fgrad.c): both modes, K tangents averaged (the projection
is float only: it needs a K x K solve). Tangents are Rademacher ±1 regenerated from the PRNG, never stored:
activity mode one sign per unit, the top bit of rand(derive(derive(derive(seed, STREAM_TANGENTS), steps),
layer), k * units + i); weight mode 32 signs per hash (`weight_signs`). Tangents live in Q(activation_frac)
int16, every saturation counted: activity t_l = sat16(requant(W_l t_{l-1}) + u_l), u = ±2**af (the dense
kernel); weight t_l = requant(W_l t_{l-1} + (V_l h_{l-1}) 2**wf), one rounding of the exact sum. The slope
d = requant(e · t_L) with e = softmax - onehot in Q(af) (PEPITA's output error), d in Q(af). Updates are
stochastically rounded: activity W_l -= lr (Σ_k d_k u_{k,l} / K) h_{l-1}ᵀ with PEPITA's update shift
(2 af + lr_frac - wf); weight W_l -= lr Σ_k d_k V_{k,l} / K, shifted by af + lr_frac - wf.
A weight tangent grows like sqrt(fan_in) |h|, so on wide layers it can saturate Q(af) (counted; 0.06 % of the
tangent values on digits 64-64-10 with K = 16 over 30 epochs); the activity tangent stays O(1) per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import numpy as np

from onward import fixed
from onward.data import Dataset
from onward.fixed import I64
from onward.model import STREAM_TANGENTS, InitialModel, he_uniform_weights, quantise_weights
from onward.nn.dense import F64, dense_fixed, dense_float
from onward.nn.mlp import fit_float, forward_fixed, output_error_fixed, softmax
from onward.reference import FixedReference
from onward.spec import RuleOptions, Spec, check_device_rule, check_weights_fit, require

MICROPYTHON = True  # firmware/micropython/onward_rt.py has its step
RULE_ID = 5
TASKS: tuple[str, ...] = ("classification",)
MODES = ("activity", "weight")  # perturb the pre-activations, or the weights


@dataclass(frozen=True)
class Options(RuleOptions):
    directions: int = 1  # K tangents per step
    mode: str = "activity"  # one of MODES

    def check(self, spec: Spec) -> None:
        require(1 <= self.directions <= 64, spec, f"`rule.directions` must be in [1, 64], got {self.directions}")
        require(self.mode in MODES, spec, f"`rule.mode` must be one of {MODES}, got {self.mode!r}")


def options(spec: Spec) -> Options:
    return cast(Options, spec.rule.options)
Combine = Literal["mean", "projection"]
Distribution = Literal["gaussian", "rademacher"]


# --- float reference ------------------------------------------------------------------------------

def draw_tangents(rng: np.random.Generator, shape: tuple[int, ...], distribution: Distribution) -> F64:
    """Tangents with E[v vᵀ] = I: N(0, 1) (the papers) or ±1 (the device)."""
    if distribution == "gaussian":
        return rng.standard_normal(shape)
    return rng.integers(0, 2, size=shape) * 2.0 - 1.0


def combine_tangents(v: F64, d: F64, combine: Combine) -> F64:
    """v (..., K, N) tangents, d (..., K) their directional derivatives -> the estimate (..., N)."""
    if combine == "mean":
        return np.einsum("...k,...kn->...n", d, v) / v.shape[-2]
    gram = v @ np.swapaxes(v, -1, -2)  # (..., K, K); pinv: K > N (or dead units) makes it singular
    return np.einsum("...k,...kn->...n", (np.linalg.pinv(gram) @ d[..., None])[..., 0], v)


class Float:
    """The float reference: `mode` from the spec (activity | weight), K = `rule.directions` tangents.

    combine: "mean" (what the device does) or "projection" (Flügel et al.); distribution: "gaussian"
    (the papers) or "rademacher" (the device's signs)."""

    def __init__(self, model: InitialModel, combine: Combine = "mean",
                 distribution: Distribution = "gaussian") -> None:
        self.model = model
        spec = model.spec
        self.spec = spec
        self.weights = [w.copy() for w in model.weights]
        self.velocity = [np.zeros_like(w) for w in self.weights]
        self.lr = spec.rule.learning_rate
        self.mode = options(spec).mode
        self.directions = options(spec).directions
        self.combine: Combine = combine
        self.distribution: Distribution = distribution
        self.rng = np.random.default_rng([spec.seed, STREAM_TANGENTS])

    # the network
    def forward(self, x: F64) -> list[F64]:
        """Every layer's output, input first."""
        last = len(self.weights) - 1
        h = [x]
        for layer, w in enumerate(self.weights):
            h.append(dense_float(w, h[-1], relu=layer < last))
        return h

    def score(self, x: F64, y: I64) -> float:
        return float(np.mean(self.forward(x)[-1].argmax(axis=1) == y))

    # the estimates
    def draw(self, shape: tuple[int, ...]) -> F64:
        """Fresh tangents: (batch, K, units) in activity mode, (K, weights) in weight mode."""
        return draw_tangents(self.rng, shape, self.distribution)

    def gradients(self, x: F64, onehot: F64) -> list[F64]:
        """The forward-gradient estimate of d(mean CE)/dW_l for a batch, every layer."""
        h = self.forward(x)
        e = softmax(h[-1]) - onehot  # ∇_{z_L} L per sample
        if self.mode == "activity":
            return self._activity(h, e)
        return self._weight(h, e)

    def _jvp(self, h: list[F64], u: list[F64] | None, vw: list[F64] | None) -> F64:
        """Push K tangents at once through the network at the point h (t: (K, batch, units)):
        t_l = V_l h_{l-1} + W_l t_{l-1} + u_l, masked by relu'(z_l) on hidden layers. Returns the output tangents."""
        last = len(self.weights) - 1
        t: F64 | float = 0.0  # the input carries no tangent
        for layer, w in enumerate(self.weights):
            t = t @ w.T if layer > 0 else 0.0
            if vw is not None:
                t = t + np.einsum("bi,koi->kbo", h[layer], vw[layer])
            if u is not None:
                t = t + u[layer]
            if layer < last:
                t = t * (h[layer + 1] > 0)
        return np.asarray(t)

    def _activity(self, h: list[F64], e: F64) -> list[F64]:
        batch, last = e.shape[0], len(self.weights) - 1
        widths = [hl.shape[1] for hl in h[1:]]
        bounds = np.cumsum([0, *widths])
        # u ⊙ relu'(z): a dead unit's tangent changes nothing, so it is dropped (see the module doc)
        live = np.concatenate([(h[i + 1] > 0) if i < last else np.ones_like(h[i + 1]) for i in range(len(widths))],
                              axis=1)
        v = self.draw((batch, self.directions, sum(widths))) * live[:, None, :]
        u = [np.swapaxes(v[:, :, bounds[i]:bounds[i + 1]], 0, 1) for i in range(len(widths))]  # (K, batch, n)
        d = np.sum(e * self._jvp(h, u, None), axis=2).T  # (batch, K)
        g_z = combine_tangents(v, d, self.combine)  # (batch, units)
        return [g_z[:, bounds[i]:bounds[i + 1]].T @ h[i] / batch for i in range(len(widths))]

    def _weight(self, h: list[F64], e: F64) -> list[F64]:
        shapes = [w.shape for w in self.weights]
        bounds = np.cumsum([0, *(w.size for w in self.weights)])
        v = self.draw((self.directions, int(bounds[-1])))
        vw = [v[:, bounds[i]:bounds[i + 1]].reshape(-1, *s) for i, s in enumerate(shapes)]
        d = np.mean(np.sum(e * self._jvp(h, None, vw), axis=2), axis=1)  # (K,): L is the batch mean
        g = combine_tangents(v, d, self.combine)
        return [g[bounds[i]:bounds[i + 1]].reshape(s) for i, s in enumerate(shapes)]

    # training
    def step(self, x: F64, onehot: F64) -> None:
        momentum = self.spec.rule.momentum
        for layer, g in enumerate(self.gradients(x, onehot)):
            self.velocity[layer] = momentum * self.velocity[layer] + g
            self.weights[layer] -= self.lr * self.velocity[layer]

    def fit(self, data: Dataset, epochs: int | None = None) -> list[float]:
        """Train epoch by epoch (the shared order, the spec's lr schedule); test accuracy after each epoch."""

        def step(x: F64, onehot: F64, lr: float) -> None:
            self.lr = lr
            self.step(x, onehot)

        return fit_float(self.spec, data, epochs, step, self.score)


# --- the model and the fixed-point reference ----------------------------------------------------

def weight_shift(spec: Spec) -> int:
    """Weight mode's update: slope (Q af) times lr (Q lr_frac) -> weight (Q wf); no input factor."""
    return spec.format.activation_frac + spec.format.lr_frac - spec.format.weight_frac


def init_model(spec: Spec, data: Dataset) -> InitialModel:
    """PEPITA's network and initial weights (He-uniform, no biases)."""
    check_device_rule(spec, data.max_abs)
    dims = (data.input_dim, *spec.hidden, data.classes)
    check_weights_fit(spec, float(np.sqrt(6.0 / min(dims[:-1]))), "sqrt(6/fan_in)")
    weight_mode = options(spec).mode == "weight"
    # weight mode's shift, activation_frac + lr_frac - weight_frac, is the spec's update shift (in [16, 62],
    # host/spec.py) less activation_frac (at most 14): always in [2, 62]
    weights = he_uniform_weights(spec, dims)
    k, widths = options(spec).directions, dims[1:]
    ram = {"activations": 2 * sum(widths), "tangent": 2 * 2 * max(widths), "error_q": 2 * data.classes,
           "slopes": 2 * k}
    macros = {"DIRECTIONS": f"{k} /* tangents per step */",
              "FGRAD_WEIGHT": f"{int(weight_mode)} /* 1: weight-perturbed, 0: activity-perturbed */"}
    if weight_mode:
        ram["sign_words"] = 4 * k
        macros["FGRAD_SHIFT"] = f"{weight_shift(spec)} /* ACT_FRAC + LR_FRAC - WEIGHT_FRAC */"
    return InitialModel(spec, dims, weights, quantise_weights(spec, weights), outputs=data.classes,
                        macros=macros, ram=ram)


def tangent_key(seed: int, steps: int, layer: int) -> int:
    return fixed.derive(fixed.derive(fixed.derive(seed, STREAM_TANGENTS), steps), layer)


def tangent_signs(seed: int, steps: int, layer: int, k: int, units: int) -> I64:
    """Activity mode: tangent k's signs on one layer's units (±1), the top bit of rand(key, k * units + i)."""
    r = fixed.rand(tangent_key(seed, steps, layer), k * units + np.arange(units))
    return 1 - 2 * (r >> 31)


def weight_signs(seed: int, steps: int, layer: int, k: int, size: int) -> I64:
    """Weight mode: tangent k's signs on one layer's parameters (±1), 32 per hash (one per weight would double
    the update's hashing): parameter p's is bit f % 32 of rand(key, f // 32), f = k * size + p."""
    f = k * size + np.arange(size)
    return 1 - 2 * ((fixed.rand(tangent_key(seed, steps, layer), f >> 5) >> (f & 31)) & 1)


class Fixed(FixedReference):
    """Forward gradients with K Rademacher tangents, activity- or weight-perturbed: firmware/src/rule_fgrad.c."""

    def infer(self, x: I64) -> I64:
        for layer in range(self.num_layers):
            x = forward_fixed(self, layer, x)  # type: ignore[arg-type]
        return x

    def _count(self, value_sats: tuple[I64, int]) -> I64:
        self.saturations += value_sats[1]
        return value_sats[0]

    def _slope(self, e: I64, t_out: I64) -> int:
        """d = e . t_L, Q(2af) -> Q(af)."""
        af = self.fmt.activation_frac
        return int(self._count(fixed.requant(np.dot(e, t_out), 2 * af, af))[()])

    def train_step(self, x: I64, target: int) -> I64:
        """One online step; returns the logits of the clean pass."""
        h = [x]
        for layer in range(self.num_layers):
            h.append(forward_fixed(self, layer, h[-1]))  # type: ignore[arg-type]
        e = output_error_fixed(self, h[-1], target)  # type: ignore[arg-type]
        if options(self.model.spec).mode == "weight":
            self._weight_step(h, e)
        else:
            self._activity_step(h, e)
        return h[-1]

    def _activity_step(self, h: list[I64], e: I64) -> None:
        af, last, directions = self.fmt.activation_frac, self.num_layers - 1, options(self.model.spec).directions
        widths = [len(hl) for hl in h[1:]]
        # relu'(z) = [h > 0]: a dead unit gets no tangent (module doc); the output layer has no ReLU
        live = [h[i + 1] > 0 if i < last else np.ones(widths[i], dtype=bool) for i in range(last + 1)]
        signs = [[np.where(live[i], tangent_signs(self.seed, self.steps, i, k, widths[i]), 0)
                  for k in range(directions)] for i in range(last + 1)]
        sums = [np.zeros(n, dtype=np.int64) for n in widths]
        for k in range(directions):
            t = np.zeros(0, dtype=np.int64)  # the input carries no tangent
            for layer in range(last + 1):
                wt = (self._count(dense_fixed(self.weights[layer], t, self.fmt.weight_frac, relu=False))
                      if layer > 0 else 0)
                t = np.where(live[layer], self._count(fixed.sat16(wt + (signs[layer][k] << af))), 0)
            d = self._slope(e, t)
            for layer in range(last + 1):
                sums[layer] += d * signs[layer][k]
        for layer in range(last + 1):
            delta = self._count(fixed.sat16(fixed.div_trunc(sums[layer], directions)))
            self.update(layer, delta, h[layer])

    def _weight_step(self, h: list[I64], e: I64) -> None:
        """t_l = requant(W_l t_{l-1} + (V_l h_{l-1}) 2**wf): one rounding of the exact sum; then
        W -= stochastic_round(lr (Σ_k d_k V_k / K)), as update_fixed does with delta x^T."""
        wf, last, directions = self.fmt.weight_frac, self.num_layers - 1, options(self.model.spec).directions
        sums = [np.zeros(w.shape, dtype=np.int64) for w in self.weights]
        for k in range(directions):
            t = np.zeros(0, dtype=np.int64)
            signs = []
            for layer, w in enumerate(self.weights):
                v = weight_signs(self.seed, self.steps, layer, k, w.size).reshape(w.shape)
                acc = (v @ h[layer]) << wf
                if layer > 0:
                    acc = acc + w @ t
                t = self._count(fixed.requant(acc, wf, 0))
                if layer < last:
                    t = np.where(h[layer + 1] > 0, t, 0)
                signs.append(v)
            d = self._slope(e, t)
            for layer, v in enumerate(signs):
                sums[layer] += d * v
        shift = weight_shift(self.model.spec)
        for layer, w in enumerate(self.weights):
            delta = fixed.div_trunc(sums[layer], directions)  # |delta| <= 2**15: no int16 needed
            r = fixed.rand(self.rounding_key(layer), np.arange(w.size)).reshape(w.shape)
            self.weights[layer] = self._count(fixed.sat16(w - fixed.stochastic_shift(delta * self.lr_q, shift, r)))


def forward_evals(model: InitialModel, stage: int) -> float:
    """Dense-layer evaluations of one training step: value and tangent through every layer, per tangent (a pass
    with its tangent counts two)."""
    return 2 * model.num_layers * model.spec.rule.options.directions
