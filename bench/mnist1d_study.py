"""MNIST-1D float study (issue #17): which forward-only rules beat last-layer-only SGD, and by how much?

On 8x8 digits every rule lands at 96 ± 1 %, as does training the last layer alone, so digits cannot rank them;
MNIST-1D can. This script trains a 40-256-10 bias-free ReLU MLP (onward's network, He-uniform init) online
(batch 1, no momentum: what the device does) for 30 epochs with softmax cross-entropy, under:

* backprop and last-layer-only SGD (onward.learn.baselines), the two reference points;
* PEPITA (onward.rules.pepita.Float, its step as is) and its variants from Srinivasan et al. (ICLR 2024):
  weight mirroring of F, the Hebbian form, the time-local form, and the adaptive-feedback-alignment (AFA) rule
  PEPITA approximates;
* direct feedback alignment (DFA, float-only comparison);
* forward gradients (activity-perturbed, K = 1): onward's global-loss Float, and Ren et al. (2022)'s local
  greedy losses with feature groups (each group of hidden units has its own linear head and loss).

Every learning rate and each row's key hyper-parameter is chosen on a validation split (20 % of the training
set, stratified), never on the test set: stage 1 a grid over (lr, key) with a constant lr; stage 2, at the chosen
point, the lr schedule (constant or step decay) and input standardisation. Then each row is retrained on the
whole training set for 3 seeds (a seed changes the initial weights, the sample order, and the random feedback
or tangents) and scored on the test set. docs/mnist1d_study.md has the equations, the grid and the results.

    nice python3 bench/mnist1d_study.py --json build/mnist1d_study.json --plot docs/mnist1d_study.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from onward.data import Dataset, epoch_order, load_dataset
from onward.learn.baselines import Baseline, baseline
from onward.model import InitialModel, he_uniform_weights, quantise_weights
from onward.nn.dense import F64, dense_float
from onward.nn.mlp import logits_float, softmax
from onward.rules import fgrad, pepita
from onward.spec import Spec, parse_spec

DATA_SEED = 1  # the data set is generated once (the examples' seed); run seeds change init, order and noise
CLASSES = 10
INPUT_STD = 0.25  # onward's MNIST-1D scale (INPUT_DIVISOR = 4): standardised inputs keep it per feature
LR_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)
FGRAD_LR_GRID = (0.0001, 0.0003, 0.001, 0.003)
MIRROR_DECAY = 0.002  # weight mirroring: the mirror estimate averages over about 500 steps
MIRROR_NOISE = 1.0  # weight mirroring: the std of the noise ξ sent through the network
WARMUP_STEPS = 3200  # forward-gradient rows: linear lr warm-up over the first epoch-equivalent (they diverge early)


# --- learners: one online step, and logits for scoring --------------------------------------------

class Learner(Protocol):
    def train(self, x: F64, onehot: F64, lr: float) -> None: ...

    def logits(self, x: F64) -> F64: ...


class BaselineLearner:
    """onward's backprop / last-layer-only baseline, with the learning rate set per step."""

    def __init__(self, model: InitialModel, last_layer_only: bool) -> None:
        self.net: Baseline = baseline(model.weights, 0.0, last_layer_only=last_layer_only)

    def train(self, x: F64, onehot: F64, lr: float) -> None:
        self.net.learning_rate = lr
        self.net.step(x, onehot)

    def logits(self, x: F64) -> F64:
        return self.net.forward(x)[-1]


def sgd(ref: pepita.Float, layer: int, grad: F64) -> None:
    """W <- W - lr * grad: the device's update (no momentum), grad already averaged over the (1-sample) batch."""
    ref.weights[layer] -= ref.lr * grad


def forward(weights: list[F64], x: F64) -> list[F64]:
    """Every layer's output, input first (ReLU on hidden layers, logits last)."""
    h = [x]
    for layer, w in enumerate(weights):
        h.append(dense_float(w, h[-1], relu=layer < len(weights) - 1))
    return h


def hebbian_step(ref: pepita.Float, x: F64, onehot: F64) -> F64:
    """PEPITA-Hebbian: dW_l = h_l h_{l-1}^T - h_l^err h_{l-1}^err^T (the clean pass potentiates, the modulated
    pass depresses: Forward-Forward's positive/negative form); the output layer as PEPITA, e h_{L-1}^err^T."""
    last = len(ref.weights) - 1
    h = forward(ref.weights, x)
    e = softmax(h[-1]) - onehot
    h_err = [x + e @ ref.feedback.T]
    for layer in range(last):
        h_err.append(dense_float(ref.weights[layer], h_err[-1], relu=True))
    for layer in range(last):
        sgd(ref, layer, h[layer + 1].T @ h[layer] - h_err[layer + 1].T @ h_err[layer])
    sgd(ref, last, e.T @ h_err[last])
    return h[-1]


def time_local_step(ref: pepita.Float, x: F64, onehot: F64) -> F64:
    """PEPITA-time-local: the Hebbian form with the clean term applied right after pass 1 (nothing of pass 1 kept
    but e), so pass 2 runs on the already-potentiated weights and applies the depressing term."""
    last = len(ref.weights) - 1
    h = [x]
    for layer in range(last + 1):
        h.append(dense_float(ref.weights[layer], h[-1], relu=layer < last))
        if layer < last:  # potentiate as soon as the layer's clean output exists
            sgd(ref, layer, h[-1].T @ h[-2])
    e = softmax(h[-1]) - onehot
    h_err = x + e @ ref.feedback.T
    for layer in range(last):
        h_next = dense_float(ref.weights[layer], h_err, relu=True)
        sgd(ref, layer, -(h_next.T @ h_err))
        h_err = h_next
    sgd(ref, last, e.T @ h_err)
    return h[-1]


def afa_step(ref: pepita.Float, x: F64, onehot: F64) -> F64:
    """Adaptive feedback alignment (Srinivasan et al.'s first-order view of PEPITA): the first hidden layer gets
    DFA with the adaptive feedback -W_1 F, delta_1 = -relu'(z_1) (W_1 F e); one network pass plus W_1 (F e)."""
    h = forward(ref.weights, x)
    e = softmax(h[-1]) - onehot
    delta = -((e @ ref.feedback.T) @ ref.weights[0].T) * (h[1] > 0)
    sgd(ref, 0, delta.T @ h[0])
    sgd(ref, 1, e.T @ h[1])
    return h[-1]


class PepitaLearner(pepita.Float):
    """onward's PEPITA float reference driven online; subclasses swap in a variant's step (`step`)."""

    def train(self, x: F64, onehot: F64, lr: float) -> None:
        self.lr = lr
        self.step(self, x, onehot)


class HebbianLearner(PepitaLearner):
    step = staticmethod(hebbian_step)


class TimeLocalLearner(PepitaLearner):
    step = staticmethod(time_local_step)


class AfaLearner(PepitaLearner):
    step = staticmethod(afa_step)


class MirrorLearner(PepitaLearner):
    """PEPITA with weight mirroring of F (Akrout et al. 2019's mirror mode, applied to F as Srinivasan et al.):
    after each PEPITA step, noise ξ ~ N(0, σ² I) goes through the network (a third pass, o = W_2 ReLU(W_1 ξ)) and
    a running mirror estimate M <- (1 - λ) M - λ ξ o^T tracks -E[ξ o^T] = -(σ²/2) (W_2 W_1)^T (Stein's lemma);
    F = M rescaled to PEPITA's F size at `feedback_scale`. Then PEPITA's hidden feedback -W_1 F ∝ W_1 W_1^T W_2^T
    points along backprop's W_2^T. The rescaling matters: with Akrout's decay alone F grows with W_1 and W_2,
    which grows the hidden update, which grows W_1 (it diverged at every lr we tried)."""

    def __init__(self, model: InitialModel, feedback_scale: float) -> None:
        super().__init__(model)
        self.rng = np.random.default_rng([model.spec.seed, 0x317])
        self.target_rms = feedback_scale * math.sqrt(6.0 / model.dims[0]) / math.sqrt(3.0)  # U[-a, a]'s rms
        self.mirror = self.feedback.copy()

    def train(self, x: F64, onehot: F64, lr: float) -> None:
        super().train(x, onehot, lr)
        xi = self.rng.normal(0.0, MIRROR_NOISE, size=(1, self.feedback.shape[0]))
        out = logits_float(self.weights, xi)
        self.mirror = (1 - MIRROR_DECAY) * self.mirror - MIRROR_DECAY * (xi.T @ out)
        self.feedback = self.mirror * (self.target_rms / np.sqrt(np.mean(self.mirror**2)))


class DfaLearner:
    """Direct feedback alignment (Nøkland 2016): delta_l = relu'(z_l) (B_l e) with a fixed random B_l, one pass."""

    def __init__(self, model: InitialModel, feedback_scale: float) -> None:
        self.weights = [w.copy() for w in model.weights]
        rng = np.random.default_rng([model.spec.seed, 0xDFA])
        bound = feedback_scale * math.sqrt(6.0 / model.dims[-2])  # scale 1: W_L^T's own He-uniform range
        self.feedback = [rng.uniform(-bound, bound, size=(w.shape[0], CLASSES)) for w in self.weights[:-1]]

    def train(self, x: F64, onehot: F64, lr: float) -> None:
        h = forward(self.weights, x)
        e = softmax(h[-1]) - onehot
        for layer, b in enumerate(self.feedback):
            self.weights[layer] -= lr * ((e @ b.T) * (h[layer + 1] > 0)).T @ h[layer]
        self.weights[-1] -= lr * e.T @ h[-2]

    def logits(self, x: F64) -> F64:
        return logits_float(self.weights, x)


class FgradGlobalLearner(fgrad.Float):
    """onward's forward gradient (activity-perturbed, K tangents, one global cross-entropy) as is."""

    def train(self, x: F64, onehot: F64, lr: float) -> None:
        self.lr = lr
        self.step(x, onehot)

    def logits(self, x: F64) -> F64:
        return logits_float(self.weights, x)


class FgradLocalLearner:
    """Forward gradient with local greedy losses (Ren et al. 2022), for one hidden layer: its units are split
    into `groups`; group g has a linear head A_g and its own cross-entropy L_g = CE(A_g h_g, y). One Rademacher
    tangent u on z_1 (dead units dropped), the jvp through each head gives d_g = e_g . A_g u_g, the hidden estimate
    g_z = d_g u_g (a group's tangent only reaches its own loss: the variance scales with the group's size, not the
    layer's). The heads and the output layer learn from their exact local gradients (their own inputs only)."""

    def __init__(self, model: InitialModel, groups: int) -> None:
        self.weights = [w.copy() for w in model.weights]
        width = model.dims[1]
        self.groups, self.size = groups, width // groups
        rng = np.random.default_rng([model.spec.seed, 0x10CA1])
        bound = math.sqrt(6.0 / self.size)
        self.heads = rng.uniform(-bound, bound, size=(groups, CLASSES, self.size))
        self.rng = rng

    def train(self, x: F64, onehot: F64, lr: float) -> None:
        w1, w2 = self.weights
        h1 = dense_float(w1, x, relu=True)[0]
        live = h1 > 0
        hg = h1.reshape(self.groups, self.size)
        e_local = softmax(np.einsum("gcs,gs->gc", self.heads, hg)) - onehot[0]  # (G, C)
        u = (self.rng.integers(0, 2, size=h1.shape) * 2.0 - 1.0) * live
        d = np.einsum("gc,gcs,gs->g", e_local, self.heads, u.reshape(self.groups, self.size))
        g_z = (d[:, None] * u.reshape(self.groups, self.size)).reshape(1, -1)
        e = softmax(h1 @ w2.T) - onehot[0]
        self.weights[0] = w1 - lr * g_z.T @ x
        self.weights[1] = w2 - lr * np.outer(e, h1)
        self.heads -= lr * e_local[:, :, None] * hg[:, None, :]

    def logits(self, x: F64) -> F64:
        return logits_float(self.weights, x)


# --- rows ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    name: str
    label: str
    key: str  # the key hyper-parameter's name ("" for none)
    key_grid: tuple[float, ...]
    lr_grid: tuple[float, ...]
    evals: str  # dense-layer evaluations per training sample (a layer with its tangent counts two)
    forward_only: bool
    warmup: bool = False


ROWS: tuple[Row, ...] = (
    Row("backprop", "backprop", "", (0.0,), LR_GRID, "2 + backward", False),
    Row("last_layer", "last-layer-only SGD", "", (0.0,), LR_GRID, "2", True),
    Row("pepita", "PEPITA (onward Float)", "feedback_scale", (0.05, 0.25, 1.0), LR_GRID, "3", True),
    Row("pepita_hebbian", "PEPITA-Hebbian", "feedback_scale", (0.05, 0.25, 1.0), LR_GRID, "3", True),
    Row("pepita_time_local", "PEPITA-time-local", "feedback_scale", (0.05, 0.25, 1.0), LR_GRID, "3", True),
    Row("pepita_wm", "PEPITA + weight mirroring", "feedback_scale", (0.05, 0.25, 1.0), LR_GRID, "5", True),
    Row("afa", "adaptive feedback alignment", "feedback_scale", (0.05, 0.25, 1.0), LR_GRID, "2 + W_1 (F e)", True),
    Row("dfa", "DFA (float only)", "feedback_scale", (0.3, 1.0, 3.0), LR_GRID, "2 + B e", True),
    Row("fgrad", "fgrad activity K=1, global loss", "", (0.0,), FGRAD_LR_GRID, "4", True, warmup=True),
    Row("fgrad_local", "fgrad activity K=1, local losses", "groups", (1.0, 16.0, 64.0), LR_GRID, "5", True,
        warmup=True),
)
ROW_BY_NAME = {r.name: r for r in ROWS}


def model_spec(rule: str, seed: int, hidden: int, key: str, value: float) -> Spec:
    """A spec for onward's init: the run seed picks the He-uniform weights and PEPITA's F."""
    options = {key: value} if rule == "pepita" and key == "feedback_scale" else {}
    raw: dict[str, Any] = {"name": "mnist1d_study", "seed": seed, "model": {"hidden": [hidden]},
                           "data": {"set": "mnist1d"},
                           "rule": {"name": rule, "learning_rate": 0.01, "batch_size": 1, **options}}
    return parse_spec(raw)


def initial_model(spec: Spec, input_dim: int) -> InitialModel:
    """onward's He-uniform bias-free MLP (the same weights for every row at a seed)."""
    dims = (input_dim, *spec.hidden, CLASSES)
    weights = he_uniform_weights(spec, dims)
    return InitialModel(spec, dims, weights, quantise_weights(spec, weights), outputs=CLASSES)


def make_learner(row: Row, seed: int, hidden: int, key_value: float, input_dim: int) -> Learner:
    """The row's learner from the seed's initial network."""
    rule = "fgrad" if row.name == "fgrad" else "pepita"  # the spec only sets the seed's weights (and F)
    key = row.key if row.name.startswith("pepita") or row.name == "afa" else ""
    model = initial_model(model_spec(rule, seed, hidden, key, key_value), input_dim)
    makers: dict[str, Callable[[], Learner]] = {
        "backprop": lambda: BaselineLearner(model, last_layer_only=False),
        "last_layer": lambda: BaselineLearner(model, last_layer_only=True),
        "pepita": lambda: PepitaLearner(model),
        "pepita_hebbian": lambda: HebbianLearner(model),
        "pepita_time_local": lambda: TimeLocalLearner(model),
        "pepita_wm": lambda: MirrorLearner(model, key_value),
        "afa": lambda: AfaLearner(model),
        "dfa": lambda: DfaLearner(model, key_value),
        "fgrad": lambda: FgradGlobalLearner(model),
        "fgrad_local": lambda: FgradLocalLearner(model, int(key_value)),
    }
    return makers[row.name]()


# --- data -----------------------------------------------------------------------------------------

def mnist1d_data() -> Dataset:
    """onward's MNIST-1D with the spec defaults (5000 samples, 4000 / 1000 stratified split)."""
    return load_dataset(model_spec("pepita", DATA_SEED, 256, "", 0.0))


def validation_split(data: Dataset) -> Dataset:
    """20 % of the training set (stratified) as the evaluation set: all tuning scores on it, never on the test."""
    x_fit, x_val, y_fit, y_val = train_test_split(data.x_train, data.y_train, test_size=0.2,
                                                  stratify=data.y_train, random_state=0)
    return Dataset(x_fit, y_fit, x_val, y_val, data.classes)


def standardised(data: Dataset) -> Dataset:
    """Per-feature zero mean and std INPUT_STD, statistics from the training part only (as the device would get
    them): MNIST-1D is only standardised globally, and its edge samples have smaller variance than the middle."""
    mean, std = data.x_train.mean(axis=0), data.x_train.std(axis=0) / INPUT_STD
    return replace(data, x_train=(data.x_train - mean) / std, x_test=(data.x_test - mean) / std)


# --- training --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    row: str
    lr: float
    key_value: float
    schedule: str  # "const" or "step" (x0.1 at 2/3 and 9/10 of the epochs)
    standardise: bool
    seed: int
    hidden: int
    epochs: int


def epoch_lr(config: Config, epoch: int) -> float:
    """The lr of an epoch: constant, or PEPITA's step decay (x0.1 at 60 and 90 of 100) compressed to the epochs."""
    if config.schedule == "const":
        return config.lr
    drops = sum(epoch >= round(f * config.epochs) for f in (0.6, 0.9))
    return config.lr * 0.1**drops


def accuracy(learner: Learner, x: F64, y: Any) -> float:
    with np.errstate(all="ignore"):
        return float(np.mean(learner.logits(x).argmax(axis=1) == y))


def train(config: Config, data: Dataset) -> list[float]:
    """Online training; the evaluation set's accuracy after each epoch (chance if the weights blew up)."""
    row = ROW_BY_NAME[config.row]
    if config.standardise:
        data = standardised(data)
    learner = make_learner(row, config.seed, config.hidden, config.key_value, data.input_dim)
    onehot = np.eye(CLASSES)[data.y_train]
    history: list[float] = []
    steps = 0
    for epoch in range(config.epochs):
        lr = epoch_lr(config, epoch)
        with np.errstate(all="ignore"):
            for i in epoch_order(config.seed, epoch, len(data.y_train)):
                warm = min(1.0, (steps + 1) / WARMUP_STEPS) if row.warmup else 1.0
                learner.train(data.x_train[i:i + 1], onehot[i:i + 1], lr * warm)
                steps += 1
        logits = learner.logits(data.x_test[:1])
        if not np.all(np.isfinite(logits)):
            return history + [0.1] * (config.epochs - epoch)
        history.append(accuracy(learner, data.x_test, data.y_test))
    return history


def run_all(configs: list[Config], data: Dataset, jobs: int, what: str) -> list[list[float]]:
    """Every config in a process pool (order kept), with a progress bar."""
    if jobs <= 1:
        return [train(c, data) for c in tqdm(configs, desc=what)]
    with ProcessPoolExecutor(jobs) as pool:
        return list(tqdm(pool.map(train, configs, [data] * len(configs)), total=len(configs), desc=what))


def val_score(history: list[float]) -> float:
    """Validation score of a run: the mean of the last 3 epochs (one epoch's figure is noisy online)."""
    return float(np.mean(history[-3:]))


def tune(rows: Iterable[Row], data: Dataset, args: argparse.Namespace) -> tuple[dict[str, Config], list[dict]]:
    """Stage 1: lr x key on the validation split (const lr, raw inputs); stage 2: schedule x standardisation at
    the chosen point. Returns each row's chosen config (seed unset) and every tuning run."""
    val = validation_split(data)
    base = Config("", 0.0, 0.0, "const", False, args.tune_seed, args.hidden, args.epochs)
    stage1 = [replace(base, row=r.name, lr=lr, key_value=k) for r in rows for lr in r.lr_grid for k in r.key_grid]
    scores1 = [val_score(h) for h in run_all(stage1, val, args.jobs, "tuning: lr x key")]
    log = [{**asdict(c), "stage": 1, "val": s} for c, s in zip(stage1, scores1, strict=True)]
    best: dict[str, tuple[float, Config]] = {}
    for c, s in zip(stage1, scores1, strict=True):
        if c.row not in best or s > best[c.row][0]:
            best[c.row] = (s, c)
    stage2 = [replace(c, schedule=sch, standardise=std) for _, c in best.values()
              for sch in ("const", "step") for std in (False, True) if (sch, std) != ("const", False)]
    scores2 = [val_score(h) for h in run_all(stage2, val, args.jobs, "tuning: schedule x inputs")]
    log += [{**asdict(c), "stage": 2, "val": s} for c, s in zip(stage2, scores2, strict=True)]
    for c, s in zip(stage2, scores2, strict=True):
        if s > best[c.row][0]:
            best[c.row] = (s, c)
    return {name: c for name, (_, c) in best.items()}, log


def evaluate(chosen: dict[str, Config], data: Dataset, args: argparse.Namespace) -> dict[str, list[list[float]]]:
    """Each row's chosen config on the full training set, test accuracy per epoch, per seed."""
    configs = [replace(c, seed=s) for c in chosen.values() for s in args.seeds]
    histories = run_all(configs, data, args.jobs, "test runs")
    out: dict[str, list[list[float]]] = {name: [] for name in chosen}
    for c, h in zip(configs, histories, strict=True):
        out[c.row].append(h)
    return out


# --- reporting -------------------------------------------------------------------------------------

def hyper_text(row: Row, c: Config) -> str:
    key = f", {row.key} {c.key_value:g}" if row.key else ""
    inputs = ", standardised" if c.standardise else ""
    return f"lr {c.lr:g}{key}, {c.schedule}{inputs}"


def table(chosen: dict[str, Config], results: dict[str, list[list[float]]], command: str) -> str:
    """The Markdown table: test accuracy mean ± sd over seeds, and the gap to last-layer-only."""
    finals = {name: np.array([h[-1] for h in hs]) * 100 for name, hs in results.items()}
    ll = finals["last_layer"].mean() if "last_layer" in finals else float("nan")
    lines = [f"`{command}`", "",
             "| rule | chosen on validation | forward evals / sample | test acc (mean ± sd) | vs last-layer |",
             "|---|---|---|---|---|"]
    for name, c in chosen.items():
        row, acc = ROW_BY_NAME[name], finals[name]
        lines.append(f"| {row.label} | {hyper_text(row, c)} | {row.evals} | {acc.mean():.1f} ± {acc.std(ddof=1):.1f} %"
                     f" | {acc.mean() - ll:+.1f} pp |")
    return "\n".join(lines)


def plot(results: dict[str, list[list[float]]], path: str, hidden: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name, hs in results.items():
        a = np.array(hs) * 100
        epochs = np.arange(1, a.shape[1] + 1)
        style = "--" if not ROW_BY_NAME[name].forward_only or name == "last_layer" else "-"
        line, = ax.plot(epochs, a.mean(axis=0), style, label=ROW_BY_NAME[name].label)
        ax.fill_between(epochs, a.mean(axis=0) - a.std(axis=0), a.mean(axis=0) + a.std(axis=0),
                        color=line.get_color(), alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"MNIST-1D, 40-{hidden}-10, online; mean ± sd over {len(next(iter(results.values())))} seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", nargs="+", default=[r.name for r in ROWS], choices=[r.name for r in ROWS])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--tune-seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", help="write every tuning run, the choices and the test histories here")
    p.add_argument("--plot", help="test accuracy vs epoch per row (PNG)")
    args = p.parse_args(argv)
    command = "python3 bench/mnist1d_study.py " + " ".join(sys.argv[1:] if argv is None else argv)
    start = time.time()
    data = mnist1d_data()
    rows = [ROW_BY_NAME[n] for n in args.rows]
    chosen, log = tune(rows, data, args)
    chosen = {r.name: chosen[r.name] for r in rows}
    results = evaluate(chosen, data, args)
    print(table(chosen, results, command))
    print(f"\n({time.time() - start:.0f} s; {len(log)} tuning runs, {len(args.seeds)} seeds per row)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": command, "tuning": log, "chosen": {k: asdict(c) for k, c in chosen.items()},
                       "test_histories": results}, f, indent=1)
    if args.plot:
        plot(results, args.plot, args.hidden)
    return 0


if __name__ == "__main__":
    sys.exit(main())
