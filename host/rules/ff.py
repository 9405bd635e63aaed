"""Forward-Forward (Hinton 2022): every layer learns on its own to tell positive from negative samples.

A sample is the input with its label embedded: the C one-hot entries (value LABEL_VALUE) are appended after the
D features, so no feature is overwritten (the digits' first pixels are not always 0) and the first layer's fan-in
is D + C. The positive sample carries the true label, the negative one a wrong label drawn from the counter-based
PRNG (stream STREAM_NEGATIVES, keyed by the step): (y + 1 + rand % (C - 1)) % C, the same in float and on the device.

Every layer length-normalises its input, x^ = x / (|x| + eps), and computes h = ReLU(W x^ + b). Its goodness is
G = sum(h^2) (the paper's; the public code's mean, with theta = 2, asks every unit for h ~ 1.4 from a unit input:
the weights grow 20 times larger and SGD needs lr ~ 10) and its loss softplus(theta - G+) + softplus(G- - theta).
The gradient stays inside the layer: dL/dW = -2 sigmoid(theta - G+) h+ x^+^T + 2 sigmoid(G- - theta) h- x^-^T,
both at the same weights.
The bias is the weight of a constant input 1.0, the column after the inputs, so the shared dense kernels and the
delta x^T update serve unchanged. Blocks are (out, row_width(in)): in + 1 rounded up to even, so that every row
and every input buffer stays word-aligned for the Cortex-M4/M7 SMLALD kernel's fast path (digits_ff: 159k
instructions per inference instead of 330k). A padding column meets an input that is always 0: it starts at 0,
its gradient is 0 and it never moves (update_fixed's rounding adds u < 2^shift to 0).

Layers train simultaneously, online (batch 1); a layer's input is the previous layer's output before that
layer's update.

Inference runs the network once per label and sums the goodness of the layers (all but the first when there are
two or more, as Hinton); the prediction is the label with the largest sum. Layer 0 is not run once per label:
every label's one-hot has the one entry LABEL_VALUE, so |v|, and with it x^ of every feature and of the label
entry, is the same for every label, and W x^ differs between labels only by one column of W times that entry.
The label-independent sums (features and bias) are computed once (first_layer_sums); each label adds its column
before the requantisation (first_layer_label). The sums are exact int64, so the result is the same integers as
the full product. On digits_ff (docs/forward_forward.md) an inference on the Cortex-M4 takes 59,927 instructions
instead of 158,799; the firmware also reuses each layer's goodness Σh² for the next layer's normalisation.

Fixed point (the bit-exact specification of firmware/src/rule_ff.c):
* x^ is Q14 (NORM_FRAC) whatever activation_frac: a unit vector's entries lie in [-1, 1]. The norm is an exact
  integer square root with NORM_GUARD extra bits, |v| = isqrt(sum v^2 << 2 NORM_GUARD); then one C division
  gives a reciprocal, inv = 2^(14 + NORM_GUARD + RECIP_SHIFT) / (|v| + 1), and x^_i = round(v_i inv / 2^RECIP_SHIFT).
  eps is one LSB of the guarded norm. The bias input is 1.0 = 2^14.
* h = requant(W x^) from Q(wf + 14) to Q(af), saturated and counted, then ReLU (onward.nn.dense.dense_fixed).
* G = sum h^2 rounded to Q(af) (int64); theta in Q(af); sigmoid by onward.fixed.sigmoid_q15 (Q15).
* The sigmoid goes into the learning rate, lr_s = round(lr_q s / 2^15), and delta is h itself: the update is the
  shared stochastically rounded W -= lr_s h x^T (onward.nn.dense.update_fixed) shifted by
  lr_frac + af + 14 - wf - 1 (the - 1 is the gradient's 2), with x^ negated for the positive pass (whose
  update raises G). So no delta buffer, and rows with h = 0 cost nothing. The positive update draws its
  rounding bits from rounding_key(layer), the negative one from derive(rounding_key(layer), 1).
* Outputs: the goodness sums in Q(af) minus their maximum, floored at -32768: the winner is 0, the argmax is the
  argmax of the exact int64 sums (ties only where the sums tie), and the floor only touches labels far behind
  the winner, so it is not counted as a saturation. TRAIN returns the scores of the two labels it evaluated
  (true and negative, before the update); the other classes are -32768.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np

from onward import fixed
from onward.data import Dataset
from onward.fixed import I64
from onward.model import STREAM_NEGATIVES, InitialModel, quantise_weights
from onward.nn.dense import F64, dense_fixed, update_fixed
from onward.reference import FixedReference
from onward.schedule import schedule
from onward.spec import RuleOptions, Spec, SpecError, check_device_rule, check_weights_fit, require

MICROPYTHON = True  # firmware/micropython/onward_rt.py has its step
RULE_ID = 4
TASKS = ("classification",)


@dataclass(frozen=True)
class Options(RuleOptions):
    threshold: float = 2.0  # the goodness threshold theta

    def check(self, spec: Spec) -> None:
        require(0 < self.threshold <= 64, spec, f"`rule.threshold` must be in (0, 64], got {self.threshold}")


def options(spec: Spec) -> Options:
    return cast(Options, spec.rule.options)

LABEL_VALUE = 1.0  # the embedded one-hot's value (the digits' pixels are in [0, 1])
EPS = 1e-4  # of the float normalisation (the public PyTorch code's)
NORM_FRAC = 14  # x^ is Q14: entries of a unit vector are in [-1, 1]
NORM_GUARD = 8  # extra bits of the integer norm (sum v^2 < 2^43, so sum v^2 << 16 < 2^59)
RECIP_SHIFT = 30  # the reciprocal's extra bits (inv < 2^44 when v != 0, so v inv < 2^59)
INIT_TAG = 0xFF  # the initial weights' random stream: default_rng([seed, INIT_TAG])
FLOOR = fixed.I16_MIN


def negative_label(seed: int, steps: int, label: int, classes: int) -> int:
    """A wrong label, uniform over the C - 1 others, regenerated from (seed, steps) on the device."""
    key = fixed.derive(fixed.derive(seed, STREAM_NEGATIVES), steps)
    return (label + 1 + int(fixed.rand(key, 0)) % (classes - 1)) % classes


def scored_layers(num_layers: int) -> range:
    """The layers whose goodness counts at inference: all but the first when there are two or more."""
    return range(1 if num_layers >= 2 else 0, num_layers)


def init_model(spec: Spec, data: Dataset) -> InitialModel:
    """PyTorch nn.Linear's initialisation (the public FF code's): W and b uniform in +-1/sqrt(fan_in)."""
    if not spec.hidden:
        raise SpecError(f"{spec.source}: `model.hidden` must list at least one layer: Forward-Forward has no "
                        "output layer, every layer is a hidden FF layer")
    # FF's update shift is not the spec's generic one (x^ is Q14, and the gradient's 2): check it here. The shared
    # dense update keeps 16 fractional bits per row for its per-weight dither (onward.nn.dense.update_fixed).
    shift, f = update_shift(spec), spec.format
    if shift < fixed.DITHER_BITS:
        raise SpecError(f"{spec.source}: `format.lr_frac` = {f.lr_frac} is too small for Forward-Forward: its "
                        f"update shift lr_frac + activation_frac + {NORM_FRAC - 1} - weight_frac is {shift}, and "
                        f"the dense update needs at least {fixed.DITHER_BITS}; use `format.lr_frac` >= "
                        f"{f.lr_frac + fixed.DITHER_BITS - shift}")
    if shift > fixed.DITHER_BITS + 32:
        raise SpecError(f"{spec.source}: `format.lr_frac` = {f.lr_frac} is too large for Forward-Forward: its "
                        f"update shift is {shift}, at most {fixed.DITHER_BITS + 32}; use `format.lr_frac` <= "
                        f"{f.lr_frac + fixed.DITHER_BITS + 32 - shift}")
    check_device_rule(spec, data.max_abs)
    classes = data.classes
    fan_ins = [data.input_dim + classes, *spec.hidden[:-1]]
    check_weights_fit(spec, 1.0 / math.sqrt(min(fan_ins)), "1/sqrt(fan_in), nn.Linear's initialisation")
    rng = np.random.default_rng([spec.seed, INIT_TAG])
    weights = []
    for k, n in zip(fan_ins, spec.hidden, strict=True):
        w = np.zeros((n, row_width(k)))
        w[:, :k + 1] = rng.uniform(-1.0, 1.0, size=(n, k + 1)) / math.sqrt(k)
        weights.append(w)
    weights_q = quantise_weights(spec, weights)
    fmt = spec.format
    # one buffer holds a layer's input and bias, or its output (which becomes the next input)
    max_in = row_width(max(data.input_dim + classes, *spec.hidden))  # even: each buffer starts word-aligned
    macros = {
        "FF_MAX_IN": str(max_in),
        "FF_LABEL_Q": str(fixed.to_q([LABEL_VALUE], fmt.activation_frac)[0][0]),
        "FF_THETA_Q": str(theta_q(spec)),
        "FF_NORM_FRAC": str(NORM_FRAC), "FF_NORM_GUARD": str(NORM_GUARD), "FF_RECIP_SHIFT": str(RECIP_SHIFT),
        "FF_DENSE_SHIFT": str(dense_shift(spec)), "FF_UPDATE_SHIFT": str(update_shift(spec)),
        "FF_FIRST_SCORED": str(scored_layers(len(spec.hidden)).start), "FF_UNITS_0": str(spec.hidden[0]),
    }
    # training: two passes of two ping-pong buffers; inference: one pass and layer 0's int64 sums in their place
    ram = {"ff_buf": max(2 * 2 * 2 * max_in, 2 * 2 * max_in + 8 * spec.hidden[0])}
    return InitialModel(spec, (data.input_dim, *spec.hidden), weights, weights_q, outputs=classes,
                        macros=macros, ram=ram)


def row_width(fan_in: int) -> int:
    """A block's row: the inputs, the bias, and one padding column if that makes it even."""
    return (fan_in + 2) & ~1


def theta_q(spec: Spec) -> int:
    return math.floor(options(spec).threshold * (1 << spec.format.activation_frac) + 0.5)


def dense_shift(spec: Spec) -> int:
    """W (Q wf) times x^ (Q14) back to h in Q(af)."""
    return spec.format.weight_frac + NORM_FRAC - spec.format.activation_frac


def update_shift(spec: Spec) -> int:
    """lr (Q lr_frac) * delta (Q af) * x^ (Q14) -> W (Q wf), times the gradient's 2."""
    f = spec.format
    return f.lr_frac + f.activation_frac + NORM_FRAC - f.weight_frac - 1


# --- float ----------------------------------------------------------------------------------------

def sigmoid(t: F64) -> F64:
    return 0.5 * (1.0 + np.tanh(0.5 * t))


def embed_float(x: F64, labels: I64, classes: int) -> F64:
    """(batch, D) inputs and (batch,) labels -> (batch, D + C): the one-hot appended."""
    return np.concatenate([x, LABEL_VALUE * np.eye(classes)[labels]], axis=1)


def layer_input_float(v: F64) -> F64:
    """x^ = v / (|v| + eps), the constant 1.0 of the bias and the padding 0."""
    xhat = v / (np.linalg.norm(v, axis=1, keepdims=True) + EPS)
    extra = np.zeros((v.shape[0], row_width(v.shape[1]) - v.shape[1]))
    extra[:, 0] = 1.0
    return np.concatenate([xhat, extra], axis=1)


class Float:
    """The float reference: online (batch 1) SGD on every layer's own loss, negatives as on the device."""

    def __init__(self, model: InitialModel) -> None:
        self.model = model
        self.weights = [w.copy() for w in model.weights]
        self.lr = model.spec.rule.learning_rate
        self.theta = options(model.spec).threshold
        self.classes = model.outputs
        self.steps = 0

    def goodness(self, x: F64, labels: I64) -> F64:
        """(batch, layers) goodness of the samples with these labels embedded."""
        v, out = embed_float(x, labels, self.classes), []
        for w in self.weights:
            v = np.maximum(layer_input_float(v) @ w.T, 0.0)
            out.append(np.sum(v * v, axis=1))
        return np.stack(out, axis=1)

    def scores(self, x: F64) -> F64:
        """(batch, C): each label's goodness summed over the scored layers."""
        used = list(scored_layers(len(self.weights)))
        return np.stack([self.goodness(x, np.full(len(x), c))[:, used].sum(axis=1)
                         for c in range(self.classes)], axis=1)

    def score(self, x: F64, y: I64) -> float:
        """Test accuracy."""
        return float(np.mean(self.scores(x).argmax(axis=1) == y))

    def train_step(self, x: F64, label: int) -> None:
        neg = negative_label(self.model.spec.seed, self.steps, label, self.classes)
        v = embed_float(np.stack([x, x]), np.array([label, neg]), self.classes)  # rows: positive, negative
        for w in self.weights:
            a = layer_input_float(v)
            h = np.maximum(a @ w.T, 0.0)
            g = np.sum(h * h, axis=1)
            s_pos, s_neg = sigmoid(self.theta - g[0]), sigmoid(g[1] - self.theta)
            grad = np.outer(-2.0 * s_pos * h[0], a[0]) + np.outer(2.0 * s_neg * h[1], a[1])
            w -= self.lr * grad
            v = h
        self.steps += 1

    def fit(self, data: Dataset, epochs: int | None = None) -> list[float]:
        """Train epoch by epoch in the shared order with the spec's lr schedule; test accuracy per epoch."""
        history = []
        for epoch in schedule(self.model.spec, len(data.y_train), 1, epochs):
            self.lr = epoch.lr
            for i in epoch.order:
                self.train_step(data.x_train[i], int(data.y_train[i]))
            history.append(self.score(data.x_test, data.y_test))
        return history


# --- fixed point ----------------------------------------------------------------------------------

def unit_length_fixed(v: I64) -> I64:
    """x^ in Q14 (any Q format of v: the normalisation is scale-free), the bias input 2^14 and the padding 0."""
    sumsq = int(np.dot(v, v))
    norm = int(fixed.isqrt([sumsq << (2 * NORM_GUARD)])[0])
    inv = (1 << (NORM_FRAC + NORM_GUARD + RECIP_SHIFT)) // (norm + 1)  # both positive: C division
    out = np.zeros(row_width(len(v)), dtype=np.int64)
    out[:len(v)] = fixed.round_shift(v * inv, RECIP_SHIFT)
    out[len(v)] = 1 << NORM_FRAC
    return out


class Fixed(FixedReference):
    """The bit-exact specification of Forward-Forward in firmware/src/rule_ff.c."""

    def __init__(self, model: InitialModel) -> None:
        spec = model.spec
        self.classes = model.outputs
        self.input_dim = model.dims[0]
        self.label_q = int(fixed.to_q([LABEL_VALUE], spec.format.activation_frac)[0][0])
        self.theta_q = theta_q(spec)
        self.dense_shift = dense_shift(spec)
        self.shift = update_shift(spec)
        super().__init__(model)

    def embed(self, x: I64, label: int) -> I64:
        v = np.zeros(len(x) + self.classes, dtype=np.int64)
        v[:len(x)] = x
        v[len(x) + label] = self.label_q
        return v

    def goodness(self, h: I64) -> int:
        """sum h^2 rounded to Q(af)."""
        return int(fixed.round_shift([int(np.dot(h, h))], self.fmt.activation_frac)[0])

    def forward(self, layer: int, v: I64) -> tuple[I64, I64, int]:
        """(x^, h, G in Q(af)) of one layer on the raw input v."""
        a = unit_length_fixed(v)
        h, sats = dense_fixed(self.weights[layer], a, self.dense_shift, relu=True)
        self.saturations += sats
        return a, h, self.goodness(h)

    def first_layer_sums(self, x: I64) -> tuple[I64, int]:
        """Layer 0's sums over the features and the bias (exact), the same for every label, and x^ of the label
        entry (also the same for every label: every one-hot has the same norm)."""
        a = unit_length_fixed(self.embed(x, 0))
        label_value = int(a[len(x)])
        a[len(x):len(x) + self.classes] = 0
        return self.weights[0] @ a, label_value

    def first_layer_label(self, sums: I64, label_value: int, label: int) -> I64:
        """Layer 0's h for one label: its column added to the label-independent sums, then as dense_fixed."""
        column = self.weights[0][:, self.input_dim + label]
        h, sats = fixed.requant(sums + column * label_value, self.dense_shift, 0)
        self.saturations += sats
        return np.maximum(h, 0)

    def label_score(self, sums: I64, label_value: int, label: int) -> int:
        v = self.first_layer_label(sums, label_value, label)
        total = self.goodness(v) if 0 in scored_layers(self.num_layers) else 0
        for layer in range(1, self.num_layers):
            _, v, g = self.forward(layer, v)
            if layer in scored_layers(self.num_layers):
                total += g
        return total

    def infer(self, x: I64) -> I64:
        sums, label_value = self.first_layer_sums(x)
        return relative(np.array([self.label_score(sums, label_value, c) for c in range(self.classes)]))

    def train_step(self, x: I64, target: int) -> I64:
        neg = negative_label(self.seed, self.steps, target, self.classes)
        v_pos, v_neg = self.embed(x, target), self.embed(x, neg)
        score_pos = score_neg = 0
        for layer in range(self.num_layers):
            a_pos, h_pos, g_pos = self.forward(layer, v_pos)
            a_neg, h_neg, g_neg = self.forward(layer, v_neg)
            if layer in scored_layers(self.num_layers):
                score_pos, score_neg = score_pos + g_pos, score_neg + g_neg
            s_pos = int(fixed.sigmoid_q15([self.theta_q - g_pos], self.fmt.activation_frac)[0])
            s_neg = int(fixed.sigmoid_q15([g_neg - self.theta_q], self.fmt.activation_frac)[0])
            key = self.rounding_key(layer)
            for h, a, s, k in ((h_pos, -a_pos, s_pos, key), (h_neg, a_neg, s_neg, fixed.derive(key, 1))):
                lr_s = int(fixed.round_shift([self.lr_q * s], 15)[0])
                self.weights[layer], sats = update_fixed(self.weights[layer], h, a, lr_s, self.shift, k)
                self.saturations += sats
            v_pos, v_neg = h_pos, h_neg
        out = np.full(self.classes, FLOOR, dtype=np.int64)
        both = relative(np.array([score_pos, score_neg]))
        out[target], out[neg] = both
        return out


def relative(scores: I64) -> I64:
    """Scores minus their maximum, floored at -32768 (not a saturation: the argmax is unchanged)."""
    return np.maximum(scores - scores.max(), FLOOR)


def forward_evals(model: InitialModel, stage: int) -> float:
    """Dense-layer evaluations of one training step: the positive and the negative pass."""
    return 2 * model.num_layers
