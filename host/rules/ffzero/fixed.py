"""FFzero (arXiv 2603.24790) as a device rule: the float reference configured from a spec (`Float`), and the
fixed-point reference (`Fixed`), the bit-exact specification of firmware/src/rule_ffzero.c.

The derivation is in docs/ffzero.md ("Design note for the fixed-point reference and the firmware"). In short:

* A **block** is one layer's parameters, int16 Q(wf), shape (out, stride): columns 0..in − 1 the weights, column
  in the bias, a weight on the constant input 1.0 = 2**af, and when in + 1 is odd one padding column that is
  always 0 (stride = in + 1 rounded up to even: every row starts word-aligned, so the accumulate runs on SMLALD).
  d = out·(in + 1) parameters.
* **Directions** are Rademacher, row by row: r_k[o, i] = ±1 from bit i % 32 of rand(key_k, o·wpr + i // 32)
  (wpr = ceil(in / 32) words per row, so a row's signs start at a word), the bias's from bit o % 32 of
  rand(key_k, out·wpr + o // 32), the padding's 0; key_k = derive(derive(derive(derive(seed, STREAM_DIRECTIONS),
  steps), layer), k). Regenerated, never stored.
* Every weight moves by δ = 2**p LSB along r_k. The layer is linear in its block, so with the clean accumulator
  A = W·[h, 2**af] (int64, Q(wf + af)) and the additions-only response P_k = r_k·[h, 2**af],
  z± = A ± (P_k << p) exactly: the perturbed weights are never formed.
* **Loss** in Q24 (LOSS_FRAC): z is brought to Z_BITS significant bits by one power-of-two shift common to the
  pair (ẑ does not depend on it), n = isqrt(Σ z²), t_c = z·p_c with Q15 prototypes, s_c = (t_c << 9) / n (C
  division, Q24). Classification: Σ_c max(0, m + s_c − s_y) (c = y included, as the float reference);
  regression: (y − s_0)², y the Q(af) target. The normalised |z| <= 2**Z_BITS fits int32: the device keeps it so
  and forms it in 32-bit arithmetic where that is exact (rule_ffzero.c rescale_pair; same integers).
* **Update**: ΔL_k = L(z+) − L(z−) and W −= lr_q·Σ_k ΔL_k r_k / 2**S, stochastically rounded, with
  S = lr_frac + 24 + 1 + p + log2 K − 2·wf: the float step lr·(d/K)·Σ_k ΔL_k/(2ε)·u_k with u_k = r_k/√d and
  ε = 2**(p − wf)·√d, in weight LSB (d cancels). K must be a power of two, so 1/K is part of the shift.
  The rounding is in two unbiased stages, as the dense layers' update (onward.nn.dense.update_fixed): per block
  and direction G_k = stochastic_shift(lr_q·ΔL_k, S − 16, rand(rkey, out + k)) (16 fractional bits left), then
  per weight step = floor((Σ_k r_k G_k + o) / 2**16), o the top 16 bits of word 1 + j // 8 of row o's dither
  stream from rand(rkey, o) (fixed.dither_stream): one hash per row and an LCG step per 8 weights instead of a
  hash per weight. With K = 1 and |G| < 2**30 the device takes a weight pair's step from a 4-entry table and
  one USUB16/SEL (firmware/src/rule_ffzero.c).
* **Weight growth** (docs/ffzero.md, pitfall 2): ẑ makes the loss blind to the block's scale, so the estimator's
  noise inflates the block (digits, Q12: max|W| 0.1 -> 2.8 in 100 epochs, as in float), and the effective
  learning rate decays like 1/|θ|²: that decay is what makes batch-1 FFzero converge. Halving early destroys it
  (limits 2^11 / 2^12 at Q12: 14 % / 30 % test accuracy after 10 epochs instead of 76 %), so the halving is only
  an overflow guard: when a step leaves a weight outside [−RENORM_LIMIT, RENORM_LIMIT) (it no longer fits 15
  bits: the device tests the top two bits of a weight pair at once) the block is halved
  (rounding half up); this layer's loss and vote do not change, earlier layers are frozen, later ones have not
  trained yet. Choose weight_frac so that it never fires in a normal run.
* **Schedule**: only layer `stage` learns (the host sets the stage); the frozen layers before it are rerun for
  every sample; a layer passes requant(z) (Q af, saturations counted) or its ReLU to the next one.
* **Outputs**: the layers 0..min(stage, L − 1) (the trained ones and the one training) predict.
  Classification: each votes argmax_c z·p_c, and output_c = votes_c·(L + 1) + (1 + deepest layer voting c, or
  0), so the first maximum of the outputs is the majority with ties to the deepest voter. Regression: the
  deepest such layer's s_0 in Q(af). After the last stage this is the float reference's prediction.

`DenseBlock` is the unit a convolution block also implements (onward.nn.conv.ConvLayerQ): accumulators, the
response to a ±1 direction, the vector z whose cosine with the prototypes is the loss, and the output.

**Conv blocks** (`model.conv`, classification; layers 0 .. len(conv) − 1, one stage each, then the dense layers):

* Block = one filter (in·kh·kw weights, no bias), as the public code's ``cnn_layer.directional_derivative``:
  per filter c and direction k, ΔL_{c,k} is the difference of *channel c's* loss only (block-diagonal
  estimator). The layer-wide direction key_k gives filter c the signs c·fan .. (c+1)·fan − 1, and all ΔL come
  from the same clean accumulators, so one pass updates every filter (= updating them in turn: channels do not
  interact). Update shift: the dense formula with the conv perturbation (d cancels the same way).
* Loss of channel c: its map standardised over the sample's own positions (BatchNorm at batch 1, in integers:
  ``conv.standardise``) + β, kept in int32 Q20, through its fixed projection M_c (Q15), then the cosines with
  its own prototypes (Q15) exactly as a dense layer's z. β = `model.conv[i].beta`, default 0 (measured better on
  digits than the public code's effective 1; β = 1 stays available).
* Perturbation: conv filters move by 2^max(p, 2) LSB (``conv_perturbation``); the float reference uses the same
  ε per weight.
* Vote: argmax_k Σ_c s_{c,k} (Q24 cosines summed over channels), counted with the dense layers' votes.
* Output to the next block: maxpool(ReLU(sat16(standardise(A) + β))), int16 Q(af), saturations counted.
* Model: the C walks a shape table constant (CONV_SHAPES: ``CONV_FIELDS`` per layer); M_c and the conv
  prototypes are constants too; the buffers are sized by the FFZERO_MAX_* macros and listed in `ram`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import cast

import numpy as np

from onward import fixed
from onward.data import Dataset
from onward.fixed import I64
from onward.metrics import r2_score
from onward.model import STREAM_DIRECTIONS, Constant, InitialModel, quantise_weights
from onward.nn import conv
from onward.nn.conv import ConvLayerQ, direction_signs
from onward.nn.dense import F64
from onward.reference import FixedReference
from onward.rules.ffzero.paper import STREAM_DIRECTIONS as FLOAT_DIRECTIONS
from onward.rules.ffzero.paper import Activation, FFzero, FFzeroConfig, Task, activate, similarities, vote
from onward.rules.ffzero.paper_cnn import ConvBlockConfig, FFzeroCNN, FFzeroCNNConfig
from onward.rules.ffzero.zeroth_order import Distribution
from onward.schedule import stage_epochs
from onward.spec import RuleOptions, Spec, SpecError, check_device_rule, check_weights_fit, require

RULE_ID = 3
MICROPYTHON = True  # firmware/micropython/onward_rt.py has its dense blocks (not the conv blocks)
TASKS: tuple[str, ...] = ("classification", "regression")
CONV = True  # learns convolution blocks (`model.conv`) too
ACTIVATIONS = ("linear", "relu")  # what a frozen layer passes on: z (the paper's code) or ReLU(z)


@dataclass(frozen=True)
class Options(RuleOptions):
    directions: int = 1  # K Rademacher directions per step
    perturbation: int = 0  # every parameter moves by 2**perturbation weight LSB along a direction
    margin: float = 0.3  # the hinge margin
    activation: str = "linear"  # one of ACTIVATIONS

    def check(self, spec: Spec) -> None:
        require(1 <= self.directions <= 64, spec, f"`rule.directions` must be in [1, 64], got {self.directions}")
        require(0 <= self.perturbation <= 8, spec,
                f"`rule.perturbation` must be in [0, 8] (2**p weight LSB), got {self.perturbation}")
        require(0 < self.margin <= 2, spec, f"`rule.margin` must be in (0, 2], got {self.margin}")
        require(self.activation in ACTIVATIONS, spec,
                f"`rule.activation` must be one of {ACTIVATIONS}, got {self.activation!r}")


def options(spec: Spec) -> Options:
    return cast(Options, spec.rule.options)
LOSS_FRAC = 24  # s_c and the loss: Q24 (docs/ffzero.md: ΔL ~ 1e-4 must be many LSB)
PROTO_FRAC = 15  # prototypes: unit vectors, Q15
Z_BITS = 24  # z is shifted to this many significant bits before the norm: Σ z² < 2**60 for widths <= 4096
RENORM_LIMIT = 1 << 14  # halve a block when a weight leaves [-RENORM_LIMIT, RENORM_LIMIT) (half the int16 range)
FOLD_BITS = fixed.DITHER_BITS  # G_k keeps 16 fractional bits; the per-weight dither rounds them away
PROTOTYPES = "onw_ffzero_protos"  # the constant (flash): every dense layer's prototypes, Q15, layer after layer
CONV_SHAPES = "onw_ffzero_conv_shapes"  # per conv layer: CONV_FIELDS, the shape table the C walks
CONV_FIELDS = ("in_ch", "in_h", "in_w", "out_ch", "kh", "kw", "ph", "pw", "beta_q")
CONV_MAPS = "onw_ffzero_conv_maps"  # every conv layer's projections M_c (out, dim, n), Q15, layer after layer
CONV_PROTOS = "onw_ffzero_conv_protos"  # every conv layer's prototypes (out, classes, dim), Q15
CONV_MIN_PERTURBATION = 2  # conv filters move by >= 4 LSB (see conv_perturbation)


# --- directions -------------------------------------------------------------------------------------------

def direction_key(seed: int, steps: int, layer: int, k: int) -> int:
    return fixed.derive(fixed.derive(fixed.derive(fixed.derive(seed, STREAM_DIRECTIONS), steps), layer), k)


def rademacher(key: int, d: int) -> I64:
    """d signs ±1: bit j % 32 of rand(key, j // 32) (1 -> +1), as the conv blocks draw theirs."""
    return direction_signs(key, 0, d)


def row_words(fan_in: int) -> int:
    """PRNG words per row of a dense block's direction: the inputs' signs, a row starting at a fresh word."""
    return -(-fan_in // 32)


def dense_directions(key: int, fan_in: int, fan_out: int) -> I64:
    """A dense block's direction (out, stride): r[o, i] = bit i % 32 of rand(key, o·wpr + i // 32), the bias
    r[o, in] = bit o % 32 of rand(key, out·wpr + o // 32), the padding 0 (it never moves)."""
    wpr = row_words(fan_in)
    signs = direction_signs(key, 0, fan_out * wpr * 32).reshape(fan_out, wpr * 32)[:, :fan_in]
    bias = direction_signs(key, fan_out * wpr * 32, fan_out)
    r = np.zeros((fan_out, row_stride(fan_in)), dtype=np.int64)
    r[:, :fan_in], r[:, fan_in] = signs, bias
    return r


def row_stride(fan_in: int) -> int:
    """A dense block's row in the state image: the inputs, the bias, and a padding column if that makes it even."""
    return fan_in + 1 + ((fan_in + 1) & 1)


def pad_rows(w: I64) -> I64:
    """(out, in + 1) -> (out, stride): the padding column is 0."""
    out = np.zeros((w.shape[0], row_stride(w.shape[1] - 1)), dtype=np.int64)
    out[:, :w.shape[1]] = w
    return out


# --- the block: one dense layer ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DenseBlock:
    """z = W h + b with the bias as column `fan_in` of W, on the constant input 2**af; W is (out, stride), its
    padding column (if any) meets the input 0."""

    fan_in: int
    fan_out: int
    act_frac: int

    @property
    def stride(self) -> int:
        return row_stride(self.fan_in)

    @property
    def size(self) -> int:
        return self.fan_out * self.stride

    def _with_one(self, h: I64) -> I64:
        x = np.zeros(self.stride, dtype=np.int64)
        x[:self.fan_in], x[self.fan_in] = fixed.as_i64(h), 1 << self.act_frac
        return x

    def accumulate(self, w: I64, h: I64) -> I64:
        """A = W [h, 1, 0]: exact int64 sums in Q(wf + af)."""
        return w @ self._with_one(h)

    def respond(self, r: I64, h: I64) -> I64:
        """P = R [h, 1, 0] for a ±1 direction R of the block's shape (dense_directions): additions only."""
        return r.reshape(self.fan_out, self.stride) @ self._with_one(h)

    def pairs(self, a: I64, responses: list[I64], perturbation: int) -> list[tuple[I64, I64]]:
        """A± = A ± (P_k << p): the accumulators of W ± 2^p r_k, exactly (the perturbed weights are never formed)."""
        return [(a + (p << perturbation), a - (p << perturbation)) for p in responses]

    def z(self, a: I64) -> I64:
        """The vector whose cosines with the prototypes give the loss: a dense layer's accumulators themselves
        (a conv block normalises and projects its maps here)."""
        return a

    def output(self, a: I64, weight_frac: int, relu: bool) -> tuple[I64, int]:
        """What the next block receives: z in Q(af), saturated (counted), or its ReLU."""
        h, sats = fixed.requant(a, weight_frac, 0)
        return (np.maximum(h, 0) if relu else h), sats


# --- the loss, in integers --------------------------------------------------------------------------------

def rescale(zs: list[I64]) -> list[I64]:
    """The vectors shifted by one common power of two so that the largest |z| has Z_BITS bits (left shifts
    are exact, right shifts round half up). ẑ does not change, and the norm keeps 24 significant bits."""
    top = max(int(np.abs(z).max(initial=0)) for z in zs)
    shift = top.bit_length() - Z_BITS
    if shift > 0:
        return [fixed.round_shift(z, shift) for z in zs]
    return [fixed.as_i64(z) << -shift for z in zs]


def cosines(z: I64, protos_q: I64) -> I64:
    """s_c = ẑ·p_c in Q24 for a normalised z: (z·p_c << 9) / isqrt(Σ z²), C division; 0 when z = 0."""
    n = int(fixed.isqrt(np.array([int(z @ z)]))[0])
    t = protos_q @ z
    if n == 0:
        return np.zeros_like(t)
    return fixed.div_trunc(t << (LOSS_FRAC - PROTO_FRAC), n)


def hinge_q(s: I64, label: int, margin: int) -> int:
    """Σ_c max(0, m + s_c − s_y), Q24 (the c = y term adds m, as the float reference)."""
    return int(np.maximum(0, margin + s - s[label]).sum())


def squared_error_q(s: I64, target_q: int, act_frac: int) -> int:
    """(y − s_0)², Q24; the target comes in Q(af)."""
    e = (target_q << (LOSS_FRAC - act_frac)) - int(s[0])
    return int(fixed.round_shift(np.array([e * e]), LOSS_FRAC)[0])


def margin_q(spec: Spec) -> int:
    return round(options(spec).margin * (1 << LOSS_FRAC))


def update_shift(spec: Spec, perturbation: int | None = None) -> int:
    """S = lr_frac + lf + 1 + p + log2 K − 2 wf (docs/ffzero.md); a conv filter's d cancels the same way."""
    f, r = spec.format, options(spec)
    p = r.perturbation if perturbation is None else perturbation
    return f.lr_frac + LOSS_FRAC + 1 + p + int(math.log2(r.directions)) - 2 * f.weight_frac


def conv_perturbation(spec: Spec) -> int:
    """The conv filters' p: at least CONV_MIN_PERTURBATION. A conv filter has few weights (in·kh·kw) and its map
    is standardised, so a ±1 LSB move barely changes ẑ and the loss difference is mostly the rounding of the
    standardised map (the conv kernels' noise analysis); 4 LSB keeps the signal above it. Float uses the same ε."""
    return max(options(spec).perturbation, CONV_MIN_PERTURBATION)


def update_filters(w: I64, dirs: list[I64], dl: list[I64], lr_q: int, shift: int, key: int) -> tuple[I64, int]:
    """A conv layer's W −= stochastic_shift(lr_q Σ_k ΔL_k r_k, S), rounding bits rand(key, j); saturated, counted.
    ΔL_k is one value per weight (each filter's own ΔL).
    An all-zero ΔL leaves W exactly unchanged (0 + u < 2**S), so the firmware skips it."""
    g = sum(lr_q * d * r for d, r in zip(dl, dirs, strict=True))
    step = fixed.stochastic_shift(g, shift, fixed.rand(key, np.arange(w.size)))
    return fixed.sat16(w - step.reshape(w.shape))


def fold(dl: list[int], lr_q: int, shift: int, key: int, rows: int) -> I64:
    """G_k = stochastic_shift(lr_q ΔL_k, S − 16, rand(key, rows + k)): the block's step per direction with
    FOLD_BITS fractional bits (shift >= 16: _check)."""
    v = lr_q * np.array(dl, dtype=np.int64)
    return fixed.stochastic_shift(v, shift - FOLD_BITS, fixed.rand(key, rows + np.arange(len(dl))))


def dither_offsets(key: int, rows: int, stride: int) -> I64:
    """Each weight's rounding offset in [0, 2**16): row o's dither stream from rand(key, o), word 1 + j // 8, top
    16 bits (as onward.nn.dense.update_fixed, whose word 0 rounds the row factor; here G is the block's)."""
    groups = -(-stride // fixed.DITHER_GROUP)
    words = fixed.dither_stream(fixed.rand(key, np.arange(rows)), groups + 1)[:, 1:]
    return np.repeat(words >> (32 - FOLD_BITS), fixed.DITHER_GROUP, axis=1)[:, :stride]


def update_block(w: I64, dirs: list[I64], dl: list[int], lr_q: int, shift: int, key: int) -> tuple[I64, int]:
    """A dense block's W −= floor((Σ_k r_k G_k + o) / 2**16) (fold, dither_offsets); saturated, counted.
    Both roundings are unbiased: E[step] = lr_q Σ_k ΔL_k r_k / 2**S. The padding column (r = 0) keeps 0 since
    o < 2**16. An all-zero ΔL gives G = 0 and every step 0, so the firmware skips it."""
    g = fold(dl, lr_q, shift, key, w.shape[0])
    step = sum(gk * r for gk, r in zip(g.tolist(), dirs, strict=True)) + dither_offsets(key, *w.shape)
    return fixed.sat16(w - (step >> FOLD_BITS))


def renormalise(w: I64) -> tuple[I64, bool]:
    """Halve the block (round half up) when a weight is outside [−RENORM_LIMIT, RENORM_LIMIT)."""
    if int(w.max()) >= RENORM_LIMIT or int(w.min()) < -RENORM_LIMIT:
        return fixed.round_shift(w, 1), True
    return w, False


def vote_outputs(predictions: list[int], classes: int) -> I64:
    """votes_c·(L + 1) + (1 + the deepest layer that voted c, or 0): argmax (first maximum) is the majority,
    ties to the deepest voter. `predictions` are the voters' classes, layer 0 first (at most L of them)."""
    out = np.zeros(classes, dtype=np.int64)
    deepest = np.zeros(classes, dtype=np.int64)
    for layer, c in enumerate(predictions):
        out[c] += 1
        deepest[c] = layer + 1
    return out * (len(predictions) + 1) + deepest


# --- the model --------------------------------------------------------------------------------------------

def float_config(spec: Spec, task: str, distribution: Distribution = "rademacher") -> FFzeroConfig:
    """The float reference of a spec at batch 1. "rademacher": the device's algorithm in exact arithmetic
    (every weight perturbed by 2**p LSB of Q(wf), i.e. ε = 2**(p − wf)·√d); "gaussian": the paper's
    (unit Gaussian directions, ε = 1e-3)."""
    r = options(spec)
    device = distribution == "rademacher"
    return FFzeroConfig(hidden=spec.hidden, epochs=spec.rule.epochs, lr=spec.rule.learning_rate,
                        eps=2.0 ** (r.perturbation - spec.format.weight_frac) if device else 1e-3,
                        eps_per_weight=device, directions=r.directions, margin=r.margin, batch_size=1,
                        activation=cast(Activation, r.activation), seed=spec.seed, distribution=distribution,
                        task=cast(Task, task))


def _check(spec: Spec, data: Dataset) -> None:
    w, r, f = spec.source, options(spec), spec.format
    check_device_rule(spec, data.max_abs)
    k = r.directions
    if k & (k - 1):
        raise SpecError(f"{w}: `rule.directions` = {k}: ffzero divides by K with a shift; expected a power of "
                        f"two (1, 2, 4, ... 64)")
    if spec.conv:
        if data.task != "classification":
            raise SpecError(f"{w}: `model.conv`: ffzero's conv blocks classify only (task {data.task})")
        if len(data.sample_shape) not in (1, 2):
            raise SpecError(f"{w}: `model.conv`: data set {spec.data.set} has sample shape {data.sample_shape}; "
                            f"expected (length,) for conv1d or (height, width) for conv2d")
        shape = (1, *conv.as_2d(data.sample_shape))
        for i, c in enumerate(spec.conv):
            kernel, pool = conv.kernel_2d(c.kernel, data.sample_shape), conv.kernel_2d(c.pool, data.sample_shape)
            hw = conv.out_shape(shape[1:], kernel)
            pooled = conv.pooled_shape(hw, pool) if min(hw) >= 1 else (0, 0)
            if min(pooled) < 1:
                raise SpecError(f"{w}: `model.conv[{i}]`: kernel {c.kernel} then pool {c.pool} leave no positions "
                                f"of a {shape[1]} x {shape[2]} map")
            # the ±1 response is int32 (|P| <= fan·2^15) and standardise needs |A|·positions < 2^61
            fan, positions = shape[0] * kernel[0] * kernel[1], hw[0] * hw[1]
            if fan >= 1 << 16 or fan * positions >= 1 << 30:
                raise SpecError(f"{w}: `model.conv[{i}]`: {fan} weights per filter over {positions} positions "
                                f"overflow the integer conv kernels; expected fan < 65536 and fan x positions < 2^30")
            shape = (c.channels, *pooled)
    if data.task == "classification":
        narrow = [i for i, width in enumerate(spec.hidden) if width < data.classes]
        if narrow:
            raise SpecError(f"{w}: `model.hidden[{narrow[0]}]` = {spec.hidden[narrow[0]]}: every ffzero layer "
                            f"holds {data.classes} simplex prototypes; expected at least {data.classes}")
    shift = min(update_shift(spec), update_shift(spec, conv_perturbation(spec)))
    if not 1 <= shift <= 62:
        raise SpecError(f"{w}: `format`: ffzero's update shift lr_frac + 25 + perturbation + log2(directions) "
                        f"- 2*weight_frac is {shift}; expected 1..62")
    if update_shift(spec) < FOLD_BITS:
        raise SpecError(f"{w}: `format`: ffzero's update shift lr_frac + 25 + perturbation + log2(directions) "
                        f"- 2*weight_frac is {update_shift(spec)}; the dense layers' update keeps {FOLD_BITS} "
                        f"fractional bits and needs at least {FOLD_BITS}: raise format.lr_frac")
    # the update's product lr_q·Σ_k ΔL_k must stay in int64: |ΔL| <= 2 per class (hinge) or 2(|y| + 1)² (MSE)
    y_max = 2.0 ** (15 - f.activation_frac)
    dl_max = (2 * data.classes if data.task == "classification" else 2 * (y_max + 1) ** 2) * 2.0 ** LOSS_FRAC
    if spec.lr_q(spec.rule.learning_rate) * k * dl_max >= 2.0**62:
        raise SpecError(f"{w}: `rule.learning_rate` {spec.rule.learning_rate} times 2**format.lr_frac times "
                        f"rule.directions is too large for ffzero's int64 update; lower format.lr_frac")


def float_network(spec: Spec, data: Dataset) -> FFzero:
    return FFzero(float_config(spec, data.task), data.input_dim, data.classes)


def cnn_config(spec: Spec, distribution: Distribution = "rademacher") -> FFzeroCNNConfig:
    """The float CNN of a conv spec: the dense tail is float_config's; the blocks carry the spec's beta."""
    blocks = tuple(ConvBlockConfig(c.channels, c.kernel, c.pool, beta=c.beta) for c in spec.conv)
    return FFzeroCNNConfig(conv=blocks, dense=float_config(spec, "classification", distribution), norm="sample")


def conv_blocks(spec: Spec, sample_shape: tuple[int, ...]) -> list[ConvLayerQ]:
    """The integer conv layers of a spec, input to output."""
    layers, in_ch, hw = [], 1, conv.as_2d(sample_shape)
    for c in spec.conv:
        kernel, pool = conv.kernel_2d(c.kernel, sample_shape), conv.kernel_2d(c.pool, sample_shape)
        layer = ConvLayerQ(in_ch, hw, c.channels, kernel, pool, spec.format.activation_frac,
                           round(c.beta * (1 << spec.format.activation_frac)))
        layers.append(layer)
        in_ch, hw = c.channels, conv.pooled_shape(layer.out_hw, pool)
    return layers


def _init_cnn(spec: Spec, data: Dataset) -> InitialModel:
    """Conv blocks (filters (out, in·kh·kw), no bias), then the dense layers; constants: the conv shape table,
    the projections and both sets of prototypes (Q15)."""
    net = FFzeroCNN(cnn_config(spec), data.sample_shape, data.classes)
    convs = conv_blocks(spec, data.sample_shape)
    weights = [b.w.reshape(len(b.w), -1) for b in net.blocks]
    weights += [np.hstack([layer.w, layer.b[:, None]]) for layer in net.tail.layers]
    check_weights_fit(spec, max(float(np.abs(w).max()) for w in weights), "U(±1/sqrt(fan_in)), torch's init")
    weights_q = quantise_weights(spec, weights)
    weights_q[len(convs):] = [pad_rows(w) for w in weights_q[len(convs):]]
    maps = np.concatenate([fixed.to_q(b.maps, PROTO_FRAC)[0].ravel() for b in net.blocks])
    protos = np.concatenate([fixed.to_q(layer.protos, PROTO_FRAC)[0].ravel() for layer in net.tail.layers])
    conv_protos = np.concatenate([fixed.to_q(b.protos, PROTO_FRAC)[0].ravel() for b in net.blocks])
    table = np.array([[c.in_ch, *c.in_hw, c.out_ch, *c.kernel, *c.pool, c.beta_q] for c in convs])
    dims = (data.input_dim, *(c.output_size for c in convs), *(layer.fan_out for layer in net.tail.layers))
    positions = max(c.positions for c in convs)
    conv_acc = max(c.out_ch * c.positions for c in convs)
    channels = max(c.out_ch for c in convs)
    macros = {
        **_dense_macros(spec, data.classes, dims, len(convs)),
        "FFZERO_CONV_LAYERS": f"{len(convs)} /* layers 0 .. this - 1 are conv blocks */",
        "FFZERO_CONV_FIELDS": f"{len(CONV_FIELDS)} /* {', '.join(CONV_FIELDS)} per row of the shape table */",
        "FFZERO_CONV_DIM": f"{data.classes} /* each channel's projection and prototype space */",
        "FFZERO_CONV_PERTURBATION": f"{conv_perturbation(spec)} /* conv filters move by 2^p LSB */",
        "FFZERO_CONV_UPDATE_SHIFT": f"{update_shift(spec, conv_perturbation(spec))} /* S with the conv p */",
        "FFZERO_Z_MAP_FRAC": f"{conv.Z_MAP_FRAC} /* the standardised map the loss projects, int32 */",
        "FFZERO_MAX_POSITIONS": f"{positions} /* the largest conv map (before pooling) */",
        "FFZERO_MAX_CONV_ACC": f"{conv_acc} /* out x positions, largest */",
        "FFZERO_MAX_CHANNELS": f"{channels} /* the most filters of a conv layer */",
    }
    ram = {**_dense_ram(spec, dims, len(convs)),
           "conv_acc": 8 * conv_acc, "conv_pair": 2 * 8 * positions, "conv_response": 4 * positions,
           "conv_wide": 4 * positions, "conv_map": 2 * positions, "conv_dloss": 8 * options(spec).directions * channels,
           "conv_z_wide": 2 * 8 * data.classes}
    constants = (Constant(PROTOTYPES, protos, note="FFzero dense prototypes, Q15, layer by layer"),
                 Constant(CONV_SHAPES, table, note=f"conv layers: {', '.join(CONV_FIELDS)}"),
                 Constant(CONV_MAPS, maps, note="conv projections M_c (out, dim, n), Q15"),
                 Constant(CONV_PROTOS, conv_protos, note="conv prototypes (out, classes, dim), Q15"))
    return InitialModel(spec, dims, weights, weights_q, outputs=data.classes, stages=len(weights),
                        constants=constants, macros=macros, ram=ram)


def _dense_macros(spec: Spec, count: int, dims: tuple[int, ...], convs: int) -> dict[str, str]:
    r = options(spec)
    return {
        "FFZERO_PROTOTYPES": f"{count} /* prototypes per layer (classes, or 1 for regression) */",
        "FFZERO_DIRECTIONS": f"{r.directions} /* K: Rademacher directions per step */",
        "FFZERO_PERTURBATION": f"{r.perturbation} /* every weight moves by 2^p LSB along a direction */",
        "FFZERO_MARGIN_Q": f"{margin_q(spec)} /* hinge margin, Q24 */",
        "FFZERO_UPDATE_SHIFT": f"{update_shift(spec)} /* lr_frac + 25 + p + log2 K - 2 wf */",
        "FFZERO_RELU": f"{int(r.activation == 'relu')} /* 1: a layer passes ReLU(z) on */",
        "FFZERO_LOSS_FRAC": str(LOSS_FRAC), "FFZERO_PROTO_FRAC": str(PROTO_FRAC), "FFZERO_Z_BITS": str(Z_BITS),
        "FFZERO_RENORM_LIMIT": f"{RENORM_LIMIT} /* halve a block when a weight leaves [-this, this) */",
        "FFZERO_FOLD_BITS": f"{FOLD_BITS} /* fractional bits of the block's step G */",
        "FFZERO_MAX_FAN_IN": f"{max(dims[convs:-1])} /* the widest dense layer input */",
        "FFZERO_HIDDEN_WIDTH": f"{_hidden_width(dims)} /* a hidden buffer: the widest hidden layer, even */",
        "FFZERO_CONV_LAYERS": "0 /* layers 0 .. this - 1 are conv blocks */",
    }


def _hidden_width(dims: tuple[int, ...]) -> int:
    """int16 per hidden buffer: even, so that both buffers start word-aligned (the SMLALD kernel's fast path)."""
    widest = max(dims[1:-1], default=1)
    return widest + (widest & 1)


def subset_groups(fan_in: int) -> int:
    """The response's table has 16 partial sums (every ±1 pattern) per group of 4 inputs."""
    return -(-fan_in // 4)


def _dense_ram(spec: Spec, dims: tuple[int, ...], convs: int) -> dict[str, int]:
    widest = max(dims[1:])
    return {"acc": 8 * widest, "response": 4 * widest, "z_pair": 2 * 4 * widest,  # z_pair: normalised, int32
            "hidden": 2 * 2 * _hidden_width(dims), "dloss": 8 * options(spec).directions,
            "subset_sums": 4 * 16 * subset_groups(max(dims[convs:-1]))}


def init_model(spec: Spec, data: Dataset) -> InitialModel:
    """The float reference's initial blocks and prototypes (one seed gives both), quantised."""
    _check(spec, data)
    if spec.conv:
        return _init_cnn(spec, data)
    net = float_network(spec, data)
    weights = [np.hstack([layer.w, layer.b[:, None]]) for layer in net.layers]
    check_weights_fit(spec, max(float(np.abs(w).max()) for w in weights), "U(±1/sqrt(fan_in)), torch's Linear")
    weights_q = [pad_rows(w) for w in quantise_weights(spec, weights)]  # model.weights stay (out, in + 1)
    protos_q = np.concatenate([fixed.to_q(layer.protos, PROTO_FRAC)[0].ravel() for layer in net.layers])
    dims = (data.input_dim, *(layer.fan_out for layer in net.layers))
    outputs = data.classes if data.task == "classification" else 1
    count = net.layers[0].protos.shape[0]
    return InitialModel(spec, dims, weights, weights_q, outputs=outputs, stages=len(weights),
                        constants=(Constant(PROTOTYPES, protos_q, note="FFzero prototypes, Q15, layer by layer"),),
                        macros=_dense_macros(spec, count, dims, 0), ram=_dense_ram(spec, dims, 0))


def constant(model: InitialModel, name: str) -> I64:
    return next(c.values for c in model.constants if c.name == name)


def prototypes(model: InitialModel) -> list[I64]:
    """Each dense layer's prototypes (P, width), Q15, from the model's constant."""
    flat = constant(model, PROTOTYPES)
    widths = model.dims[1 + len(model.spec.conv):]
    out, at = [], 0
    count = len(flat) // sum(widths)
    for width in widths:
        out.append(flat[at:at + count * width].reshape(count, width))
        at += count * width
    return out


def conv_constants(model: InitialModel, convs: list[ConvLayerQ]) -> list[tuple[I64, I64]]:
    """Each conv layer's projections (out, dim, n) and prototypes (out, classes, dim), Q15."""
    if not convs:
        return []
    maps, protos = constant(model, CONV_MAPS), constant(model, CONV_PROTOS)
    dim = classes = model.outputs
    out, at_m, at_p = [], 0, 0
    for c in convs:
        m, p = c.out_ch * dim * c.positions, c.out_ch * classes * dim
        out.append((maps[at_m:at_m + m].reshape(c.out_ch, dim, c.positions),
                    protos[at_p:at_p + p].reshape(c.out_ch, classes, dim)))
        at_m, at_p = at_m + m, at_p + p
    return out


def conv_layers(model: InitialModel) -> list[ConvLayerQ]:
    """The conv layers from the model's shape table (empty without conv blocks)."""
    if not model.spec.conv:
        return []
    table = constant(model, CONV_SHAPES).reshape(len(model.spec.conv), len(CONV_FIELDS))
    af = model.spec.format.activation_frac
    return [ConvLayerQ(int(r[0]), (int(r[1]), int(r[2])), int(r[3]), (int(r[4]), int(r[5])), (int(r[6]), int(r[7])),
                       af, int(r[8])) for r in table]


class Fixed(FixedReference):
    """The bit-exact specification of firmware/src/rule_ffzero.c."""

    def __init__(self, model: InitialModel) -> None:
        spec = model.spec
        self.convs = conv_layers(model)
        self.conv_consts = conv_constants(model, self.convs)
        self.conv_p = conv_perturbation(spec)
        self.conv_shift = update_shift(spec, self.conv_p)
        shapes = model.layer_shapes[len(self.convs):]
        self.blocks: list[DenseBlock | ConvLayerQ] = [*self.convs, *(DenseBlock(a, b, spec.format.activation_frac)
                                                                    for a, b in shapes)]
        self.protos = [np.zeros((0, 0), dtype=np.int64)] * len(self.convs) + prototypes(model)
        self.margin_q = margin_q(spec)
        self.shift = update_shift(spec)
        self.relu = options(spec).activation == "relu"
        self.renormalisations = 0  # diagnostics only (not device state)
        super().__init__(model)

    def _loss(self, layer: int, z: I64, target: int) -> int:
        s = cosines(z, self.protos[layer])
        if self.regression:
            return squared_error_q(s, target, self.fmt.activation_frac)
        return hinge_q(s, target, self.margin_q)

    def _conv_z(self, layer: int, a_c: I64, c: int) -> I64:
        return cast(ConvLayerQ, self.blocks[layer]).z(self.conv_consts[layer][0], a_c, c)

    def _conv_vote(self, layer: int, a: I64) -> int:
        """argmax_k Σ_c s_{c,k}: every channel's cosines (Q24) with its own prototypes, summed."""
        maps, protos = self.conv_consts[layer]
        zs = cast(ConvLayerQ, self.blocks[layer]).z_all(maps, a)
        total = sum(cosines(rescale([z])[0], p) for z, p in zip(zs, protos, strict=True))
        return int(np.argmax(total))

    def _learn_conv(self, layer: int, h: I64, a: I64, target: int) -> None:
        """Per filter c and direction k, ΔL from channel c's loss only (block-diagonal); every filter's step is
        computed from the same clean accumulators, so updating them together equals updating them in turn."""
        block, k_dirs = cast(ConvLayerQ, self.blocks[layer]), options(self.model.spec).directions
        protos = self.conv_consts[layer][1]
        keys = [direction_key(self.seed, self.steps, layer, k) for k in range(k_dirs)]
        dl = np.zeros((block.out_ch, k_dirs), dtype=np.int64)
        for c in range(block.out_ch):
            responses = [block.respond(key, h, c) for key in keys]
            pairs = block.pairs(a[c], responses, self.conv_p)
            zs = self._conv_z(layer, np.stack([m for pair in pairs for m in pair]), c)  # z+, z- per direction
            for k in range(k_dirs):
                zp, zm = rescale([zs[2 * k], zs[2 * k + 1]])
                dl[c, k] = (hinge_q(cosines(zp, protos[c]), target, self.margin_q)
                            - hinge_q(cosines(zm, protos[c]), target, self.margin_q))
        if not dl.any():
            return
        dirs = [rademacher(key, block.size) for key in keys]
        per_weight = [np.repeat(dl[:, k], block.fan) for k in range(k_dirs)]
        w = self.weights[layer]
        w, sats = update_filters(w, dirs, per_weight, self.lr_q, self.conv_shift, self.rounding_key(layer))
        self.saturations += sats
        self.weights[layer], halved = renormalise(w)
        self.renormalisations += halved

    def _learn(self, layer: int, h: I64, a: I64, target: int) -> None:
        block, rule = cast(DenseBlock, self.blocks[layer]), options(self.model.spec)
        dirs = [dense_directions(direction_key(self.seed, self.steps, layer, k), block.fan_in, block.fan_out)
                for k in range(rule.directions)]
        dl = []
        for ap, am in block.pairs(a, [block.respond(r, h) for r in dirs], rule.perturbation):
            zp, zm = rescale([block.z(ap), block.z(am)])
            dl.append(self._loss(layer, zp, target) - self._loss(layer, zm, target))
        if not any(dl):
            return
        w, sats = update_block(self.weights[layer], dirs, dl, self.lr_q, self.shift, self.rounding_key(layer))
        self.saturations += sats
        self.weights[layer], halved = renormalise(w)
        self.renormalisations += halved

    def _run(self, x: I64, target: int | None) -> I64:
        """Layers 0..min(stage, L-1): each one's vote (or s_0), and the stage's layer learns if target given."""
        last = min(self.stage, self.num_layers - 1)
        h = fixed.as_i64(x)
        votes: list[int] = []
        s0 = np.zeros(1, dtype=np.int64)
        for layer in range(last + 1):
            block = self.blocks[layer]
            a = block.accumulate(self.weights[layer], h)
            if isinstance(block, ConvLayerQ):
                votes.append(self._conv_vote(layer, a))
                if layer < last:
                    h, sats = block.output(a)
                    self.saturations += sats
                elif target is not None and self.stage < self.num_layers:
                    self._learn_conv(layer, h, a, target)
                continue
            (z,) = rescale([block.z(a)])
            if self.regression:
                if layer == last:
                    s0 = cosines(z, self.protos[layer])
            else:
                votes.append(int(np.argmax(self.protos[layer] @ z)))
            if layer < last:
                h, sats = block.output(a, self.fmt.weight_frac, self.relu)
                self.saturations += sats
            elif target is not None and self.stage < self.num_layers:
                self._learn(layer, h, a, target)
        if self.regression:
            y, sats = fixed.requant(s0, LOSS_FRAC, self.fmt.activation_frac)
            self.saturations += sats
            return y
        return vote_outputs(votes, self.model.outputs)

    def train_step(self, x: I64, target: int) -> I64:
        return self._run(x, target)

    def infer(self, x: I64) -> I64:
        return self._run(x, None)


class Float:
    """The float reference: onward.rules.ffzero.paper's FFzero configured from the spec (float_config: the device's
    Rademacher directions by default, or the paper's Gaussian ones), from the model's initial blocks, trained
    stage by stage in the shared sample order at batch 1."""

    def __init__(self, model: InitialModel, distribution: Distribution = "rademacher") -> None:
        self.model = model
        spec = model.spec
        self.task = spec.data.task
        classes = model.outputs if self.task == "classification" else 1
        self.net = FFzero(float_config(spec, self.task, distribution), model.dims[0], classes)
        self.rng = np.random.default_rng([spec.seed, FLOAT_DIRECTIONS])
        self.voters = 1  # the layers trained so far, and the one training
        self.cnn: FFzeroCNN | None = None
        if spec.conv:  # the CNN: conv blocks, then self.net is its dense tail
            shape = conv_layers(model)[0].in_hw
            self.cnn = FFzeroCNN(cnn_config(spec, distribution), shape[1:] if shape[0] == 1 else shape, classes)
            self.net = self.cnn.tail
            for block, w in zip(self.cnn.blocks, model.weights, strict=False):
                block.w[:] = w.reshape(block.w.shape)
            eps = 2.0 ** (conv_perturbation(spec) - spec.format.weight_frac)
            self.conv_config = dataclasses.replace(self.net.config, eps=eps) if distribution == "rademacher" \
                else self.net.config
        dense = model.weights[len(spec.conv):]
        for layer, w in zip(self.net.layers, dense, strict=True):
            layer.theta[:] = np.concatenate([w[:, :-1].ravel(), w[:, -1]])

    def fit(self, data: Dataset, epochs: int | None = None) -> list[float]:
        """`epochs` per layer (default rule.epochs); test score after every epoch of every stage."""
        spec = self.model.spec
        epochs = spec.rule.epochs if epochs is None else epochs
        h, y = data.x_train, data.y_train
        history = []
        blocks = [] if self.cnn is None else self.cnn.blocks
        if self.cnn is not None:
            h = self.cnn.as_maps(h)
        for stage, block in enumerate(blocks):
            self.voters = stage + 1
            for epoch in stage_epochs(spec, len(y), stage, epochs):
                cfg = dataclasses.replace(self.conv_config, lr=epoch.lr)
                for i in epoch.order:
                    block.train_step(h[i:i + 1], y[i:i + 1], cfg, self.rng)
                history.append(self.score(data.x_test, data.y_test))
            h = block.output(h)
        h = h.reshape(len(h), -1)
        for stage, layer in enumerate(self.net.layers, start=len(blocks)):
            self.voters = stage + 1
            for epoch in stage_epochs(spec, len(y), stage, epochs):
                self.net.config = dataclasses.replace(self.net.config, lr=epoch.lr)
                for i in epoch.order:
                    self.net.train_step(layer, h[i:i + 1], y[i:i + 1], self.rng)
                history.append(self.score(data.x_test, data.y_test))
            h = activate(layer.forward(h), self.net.config.activation)
        return history

    def predict(self, x: F64) -> F64 | I64:
        sims, h = [], x
        if self.cnn is not None:
            h = self.cnn.as_maps(x)
            for block in self.cnn.blocks[:self.voters]:
                sims.append(block.scores(h))
                h = block.output(h)
            h = h.reshape(len(h), -1)
        for layer in self.net.layers[:max(0, self.voters - len(sims))]:
            z = layer.forward(h)
            sims.append(similarities(z, layer.protos))
            h = activate(z, self.net.config.activation)
        if self.task == "classification":
            return vote(np.stack([s.argmax(axis=1) for s in sims]))
        return sims[-1][:, 0]

    def score(self, x: F64, y: F64 | I64) -> float:
        """Accuracy, or R² of the rescaled targets."""
        pred = self.predict(x)
        if self.task == "classification":
            return float(np.mean(pred == y))
        return r2_score(np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64))


def forward_evals(model: InitialModel, stage: int) -> float:
    """Dense-layer evaluations of one training step at `stage`: the frozen prefix, the clean pass of the learning
    layer and its K perturbed passes (a perturbed pass counts one: additions only on the device)."""
    return stage + 1 + model.spec.rule.options.directions
