"""FFzero's CNN (arXiv 2603.24790, public code `core/solver.py`: cnn_layer, cnn_model): float reference.

Conv blocks, then FFzero's dense layers, all trained block after block with local losses and directional
derivatives; prediction by the vote of every block. What a conv block does in the public code:

- **Forward for the loss** (``forward_ff`` + ``z_mapping``): conv (no bias) -> BatchNorm; the normalised map of
  each channel c, *before* ReLU and pooling, flattened (n positions), goes through its own fixed random matrix
  M_c (``nn.Linear(n, ref_dim, bias=False)``, torch's init U(±1/sqrt(n)), never trained) to z_c in R^ref_dim
  (ref_dim = 10 = C by default). Channel c has its own simplex prototypes in that space.
- **Local loss**: per channel, the hinge Σ_k max(0, m + s_k - s_y) on s = ẑ_c·p_{c,k}, summed over the batch
  (``multi_class_margin_loss`` returns one loss per channel).
- **Estimator block = one filter** (``cnn_layer.directional_derivative``): for each output channel c in turn,
  the block is [filter c (in·kh·kw weights), one BatchNorm parameter]; K unit directions over it, the central
  difference of *channel c's loss only*, the step lr·d·δ·u. Channels never interact (BatchNorm is per channel),
  so this is a block-diagonal estimator with d = in·kh·kw + 1 per block.
- The BatchNorm parameter is an index slip: the value perturbed and updated is gamma_c (``paras_to_optimize[1]``)
  but it is written into beta_c (index ``-(C - c)`` of the flat vector ends in the BN biases). gamma stays 1 and
  beta_c becomes gamma_c - step = 1 ± O(lr) at every step: in effect BN's affine part is the constant
  y = x̂ + 1, and only the filter learns. This module does exactly that: gamma = 1, beta = ``beta`` (1.0), and the
  block is the filter alone (d = in·kh·kw).
- BatchNorm stays in training mode (``eval()`` is never called), so train and test both use the statistics of
  the current batch; with the device's batch of 1 these are the sample's own map: ``norm="sample"``
  (the default; the integer kernel ``onward.nn.conv.normalise`` computes it). ``norm="batch"`` is the public
  code's batch statistics at batch > 1 (prediction then normalises test chunks of ``batch_size``, as the public
  test loader does); ``norm="none"`` keeps conv + beta, for the ablation.
- **Propagated** (``forward_bp``): conv -> BN -> ReLU -> max-pool (window = stride = pool); dropout 0.
- **Schedule** (``cnn_model.train_all_layers``): conv block 1 trains all its epochs, is frozen, the data is
  propagated; then block 2; then the flattened maps feed FFzero's dense layers (``onward.rules.ffzero.paper.FFzero``,
  reused as is, with their own schedule). Every block votes argmax_k Σ_c s_{c,k} (conv) or argmax_k s_k (dense);
  ``ffzero.vote`` decides.
- Differences kept on purpose: padding defaults to 0 ("valid", the device's choice; the public MNIST default is
  2 with kernel 6 and is available as ``ConvBlockConfig.padding``); every block reshuffles every epoch.
  Classification only.

Measured (seed 0 unless noted; batch 1, lr 1e-3, ε 1e-3, Gaussian directions, 30 epochs per block; onward's
digits split 1347/450 and MNIST-1D 4000/1000; ``python3 -m onward.rules.ffzero.paper_cnn --help``):

- digits, conv 8x3x3 pool 2 -> dense 10: 74.0 / 68.9 / 72.0 % (seeds 0-2) with beta 0, 66.0 % with beta 1
  (the public code's); the conv block alone votes 37-41 %. With a dense 100 in between: 82.4 %. The FFzero MLP
  64-100-10 gets 87.3 / 86.0 / 86.0 %, 64-10 83.3 %: on digits this CNN does not beat the MLP.
- MNIST-1D, conv 16x5 pool 2 -> dense 10, beta 0: 14.9 %; the block alone stays at chance (11.6 %): its loss
  sees each channel's map through a fixed position-wise projection, and MNIST-1D's patterns are shifted at
  random. The FFzero MLP 40-100-10 gets 25.0 %.
- MNIST-1D through the spec (onward.rules.ffzero.fixed.Float: the device's Rademacher directions, ε = 2^(p−wf) per
  weight with the conv p = 2, examples/mnist1d_ffzero_cnn.toml, 5 epochs per stage): beta 0: 13.7 % (fixed point
  14.5 %), beta 1: 12.0 % (10.9 %). Variant ``pooled_loss`` (M_c sees ReLU + max-pool of the normalised map, so a
  shift by less than the window does not move the loss): the block alone 14.1 % instead of 11.6 %, but 12.4 %
  after the dense layer (12.5 % / 11.4 % with a dense 100 in between, vs 14.7 % without the variant): not
  materially better, so it stays a float-only option here (not a spec key, not on the device).
- Normalisation (digits, 10 epochs, beta 0): batch 32 with BatchNorm's batch statistics 51.1 % vs per-sample
  41.6 %; batch 1 per-sample (= BatchNorm at batch 1) 60.0 % vs none 56.0 %.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from onward.fixed import I64
from onward.nn import conv
from onward.nn.dense import F64
from onward.rules.ffzero.paper import (
    FFzero,
    FFzeroConfig,
    batches,
    hinge_loss,
    init_linear,
    similarities,
    simplex_prototypes,
    vote,
)
from onward.rules.ffzero.zeroth_order import dd_gradient, unit_directions

Norm = Literal["sample", "batch", "none"]
# random streams of one seed, apart from the dense tail's (ffzero.STREAM_*)
STREAM_CONV_INIT, STREAM_CONV_PROTOTYPES, STREAM_CONV_DIRECTIONS, STREAM_CONV_ORDER = 10, 11, 12, 13


@dataclass(frozen=True)
class ConvBlockConfig:
    channels: int
    kernel: int  # kernel x kernel for 2-D samples, 1 x kernel for 1-D
    pool: int = 2  # max-pool window and stride (1: none)
    padding: int = 0  # zeros on each side of each spatial axis (the device: 0)
    beta: float | None = None  # the constant after the normalisation; None: FFzeroCNNConfig.beta
    pooled_loss: bool = False  # the loss projects the ReLU + max-pooled map (a variant), not the normalised one


@dataclass(frozen=True)
class FFzeroCNNConfig:
    conv: tuple[ConvBlockConfig, ...] = (ConvBlockConfig(8, 5, 2),)
    # the dense tail, and the estimator settings of every block
    dense: FFzeroConfig = field(default_factory=lambda: FFzeroConfig(hidden=()))
    proj_dim: int | None = None  # each channel's prototype space; None: the class count (the public ref_dim 10)
    beta: float = 1.0  # the constant after the normalisation (what the public code's BN parameters amount to)
    norm: Norm = "sample"


@dataclass
class ConvBlock:
    """One conv block with its fixed per-channel projections and prototypes; x is (B, in, H, W)."""

    w: F64  # (out, in, kh, kw): filter c is the block the estimator perturbs
    maps: F64  # (out, dim, n): M_c, fixed
    protos: F64  # (out, C, dim): channel c's unit prototypes
    out_hw: conv.Shape2
    pool: conv.Shape2
    padding: int
    beta: float
    norm: Norm
    one_d: bool
    pooled_loss: bool = False

    def loss_maps(self, y: F64) -> F64:
        """What M_c sees: the normalised maps (..., n), or (variant) their ReLU + max-pool (..., n')."""
        if not self.pooled_loss:
            return y
        return conv.relu_maxpool(y.reshape(*y.shape[:-1], *self.out_hw), self.pool).reshape(*y.shape[:-1], -1)

    def padded(self, x: F64) -> F64:
        if not self.padding:
            return x
        p = self.padding
        return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0 if self.one_d else p, 0 if self.one_d else p), (p, p)])

    def normalised(self, a: F64) -> F64:
        """a (..., B, n) -> BN output of one channel; "batch" pools the statistics over B and n."""
        if self.norm == "none":
            return a + self.beta
        if self.norm == "sample":
            return conv.normalise_float(a, self.beta)
        flat = a.reshape(*a.shape[:-2], -1)
        return conv.normalise_float(flat, self.beta).reshape(a.shape)

    def maps_of(self, x: F64) -> F64:
        """The normalised maps before ReLU and pooling, (B, out, n)."""
        a = conv.conv(self.w, self.padded(x))  # (B, out, n)
        return np.swapaxes(self.normalised(np.swapaxes(a, 0, 1)), 0, 1)

    def output(self, x: F64) -> F64:
        """What the next block receives: pool(ReLU(BN(conv x))), (B, out, H', W')."""
        y = self.maps_of(x)
        return conv.relu_maxpool(y.reshape(*y.shape[:2], *self.out_hw), self.pool)

    def scores(self, x: F64) -> F64:
        """Σ_c s_{c,k}: the block's class scores, (B, C)."""
        z = conv.project(self.maps, self.loss_maps(self.maps_of(x)))  # (B, out, dim)
        return sum(similarities(z[:, c], self.protos[c]) for c in range(len(self.w)))

    def train_step(self, x: F64, y: I64, cfg: FFzeroConfig, rng: np.random.Generator) -> None:
        """One DD step on every filter in turn, each with its own channel's loss."""
        cols = conv.patches(self.padded(x), self.w.shape[-2:])  # (B, n, fan), shared by all filters
        out, fan = self.w.shape[0], cols.shape[-1]
        eps = cfg.block_eps(fan)
        for c in range(out):
            w_c = self.w[c].reshape(-1)  # a view: the update below writes into self.w
            a = cols @ w_c  # (B, n)

            def pair(dirs: F64, a: F64 = a, c: int = c) -> tuple[F64, F64]:
                # the accumulators are linear in the filter: a(w ± εu) = a ± ε·cols·u exactly; BN is not
                da = eps * np.moveaxis(cols @ dirs.T, -1, 0)  # (K, B, n)
                z_plus = self.loss_maps(self.normalised(a + da)) @ self.maps[c].T
                z_minus = self.loss_maps(self.normalised(a - da)) @ self.maps[c].T
                return (hinge_loss(z_plus, y, self.protos[c], cfg.margin),
                        hinge_loss(z_minus, y, self.protos[c], cfg.margin))

            w_c -= cfg.lr * dd_gradient(pair, unit_directions(rng, cfg.directions, fan, cfg.distribution), eps)


@dataclass
class FFzeroCNN:
    config: FFzeroCNNConfig
    sample_shape: tuple[int, ...]  # (length,) -> conv1d, (height, width) -> conv2d
    classes: int
    blocks: list[ConvBlock] = field(init=False)
    tail: FFzero = field(init=False)
    history: list[tuple[int, int, float]] = field(init=False, default_factory=list)  # (block, epoch, test acc)
    seconds: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        cfg = self.config
        init = np.random.default_rng([cfg.dense.seed, STREAM_CONV_INIT])
        protos = np.random.default_rng([cfg.dense.seed, STREAM_CONV_PROTOTYPES])
        dim = cfg.proj_dim or self.classes
        in_ch, (h, w) = 1, conv.as_2d(self.sample_shape)
        self.blocks = []
        for b in cfg.conv:
            kernel = conv.kernel_2d(b.kernel, self.sample_shape)
            pad = (0 if len(self.sample_shape) == 1 else 2 * b.padding, 2 * b.padding)
            out_hw = conv.out_shape((h + pad[0], w + pad[1]), kernel)
            if min(out_hw) < 1:
                raise ValueError(f"kernel {b.kernel} does not fit a {h} x {w} map")
            pool = conv.kernel_2d(b.pool, self.sample_shape)
            n, fan = out_hw[0] * out_hw[1], in_ch * kernel[0] * kernel[1]
            if b.pooled_loss:
                n = int(np.prod(conv.pooled_shape(out_hw, pool)))
            filters = init_linear(init, fan, b.channels)[: b.channels * fan]  # torch's conv init, U(±1/sqrt(fan))
            maps = np.stack([init_linear(init, n, dim)[: dim * n].reshape(dim, n) for _ in range(b.channels)])
            self.blocks.append(ConvBlock(
                w=filters.reshape(b.channels, in_ch, *kernel), maps=maps,
                protos=np.stack([simplex_prototypes(protos, dim, self.classes) for _ in range(b.channels)]),
                out_hw=out_hw, pool=pool, padding=b.padding, beta=cfg.beta if b.beta is None else b.beta,
                norm=cfg.norm, one_d=len(self.sample_shape) == 1, pooled_loss=b.pooled_loss))
            in_ch, (h, w) = b.channels, conv.pooled_shape(out_hw, self.blocks[-1].pool)
            if min(h, w) < 1:
                raise ValueError(f"block {len(self.blocks)}: pooling by {b.pool} leaves no positions")
        self.tail = FFzero(cfg.dense, in_ch * h * w, self.classes)

    def as_maps(self, x: F64) -> F64:
        return x.reshape(len(x), 1, *conv.as_2d(self.sample_shape))

    def _chunked(self, fn: Callable[[F64], F64], h: F64) -> F64:
        """Apply a block function by chunks: of batch_size with norm "batch" (the public test loader), else all."""
        size = self.config.dense.batch_size if self.config.norm == "batch" else len(h)
        return np.concatenate([fn(h[i:i + size]) for i in range(0, len(h), size)])

    def fit(self, x: F64, y: I64, x_test: F64 | None = None, y_test: I64 | None = None) -> FFzeroCNN:
        """Block after block; with a test set, each conv block's own test accuracy after every epoch (the dense
        tail records its own in tail.history)."""
        cfg = self.config.dense
        dirs = np.random.default_rng([cfg.seed, STREAM_CONV_DIRECTIONS])
        order = np.random.default_rng([cfg.seed, STREAM_CONV_ORDER])
        h = self.as_maps(x)
        h_test = None if x_test is None else self.as_maps(x_test)
        start = time.perf_counter()
        for index, block in enumerate(self.blocks):
            for epoch in range(cfg.epochs):
                for idx in batches(order, len(h), cfg.batch_size):
                    block.train_step(h[idx], y[idx], cfg, dirs)
                if h_test is not None and y_test is not None:
                    acc = float(np.mean(self._chunked(block.scores, h_test).argmax(axis=1) == y_test))
                    self.history.append((index, epoch, acc))
            h = self._chunked(block.output, h)
            if h_test is not None:
                h_test = self._chunked(block.output, h_test)
        flat_test = None if h_test is None else h_test.reshape(len(h_test), -1)
        self.tail.fit(h.reshape(len(h), -1), y, flat_test, y_test)
        self.seconds += time.perf_counter() - start
        return self

    def block_predictions(self, x: F64) -> I64:
        """Every block's argmax, conv blocks first, shape (blocks + dense layers, N)."""
        preds, h = [], self.as_maps(x)
        for block in self.blocks:
            preds.append(self._chunked(block.scores, h).argmax(axis=1))
            h = self._chunked(block.output, h)
        return np.concatenate([np.stack(preds), self.tail.layer_predictions(h.reshape(len(h), -1))])

    def predict(self, x: F64) -> I64:
        return vote(self.block_predictions(x))

    def score(self, x: F64, y: I64) -> float:
        return float(np.mean(self.predict(x) == y))


# --- measurement ------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    """python3 -m onward.rules.ffzero.paper_cnn --set mnist1d --conv 8,5,2 --epochs 10 --batch 1 [--mlp]"""
    from onward.data import load_dataset
    from onward.spec import parse_spec

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--set", default="mnist1d", choices=["mnist1d", "digits"])
    p.add_argument("--conv", nargs="*", default=["8,5,2"], help="channels,kernel,pool[,padding] per block")
    p.add_argument("--hidden", type=int, nargs="*", default=[], help="dense FFzero layers before the last")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eps", type=float, default=1e-3)
    p.add_argument("--seeds", type=int, nargs="*", default=[0])
    p.add_argument("--norm", default="sample", choices=["sample", "batch", "none"])
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--pooled-loss", action="store_true", help="the loss on the ReLU + max-pooled maps (variant)")
    p.add_argument("--distribution", default="gaussian", choices=["gaussian", "rademacher"])
    p.add_argument("--mlp", action="store_true", help="the FFzero MLP (--hidden) on the same data instead")
    args = p.parse_args(argv)
    data = load_dataset(parse_spec({"name": "cnn", "seed": 1, "data": {"set": args.set}, "model": {"hidden": []},
                                    "rule": {"name": "pepita"}}))
    blocks = tuple(ConvBlockConfig(*map(int, s.split(",")), pooled_loss=args.pooled_loss) for s in args.conv)
    for seed in args.seeds:
        dense = FFzeroConfig(hidden=tuple(args.hidden), epochs=args.epochs, lr=args.lr, eps=args.eps,
                             batch_size=args.batch, seed=seed, distribution=args.distribution)
        start = time.perf_counter()
        if args.mlp:
            mlp = FFzero(dense, data.input_dim, data.classes).fit(data.x_train, data.y_train)
            layers = [float(np.mean(p == data.y_test)) for p in mlp.layer_predictions(data.x_test)]
            acc = mlp.score(data.x_test, data.y_test)
        else:
            cnn = FFzeroCNN(FFzeroCNNConfig(conv=blocks, dense=dense, norm=args.norm, beta=args.beta),
                            data.sample_shape, data.classes)
            cnn.fit(data.x_train, data.y_train)
            layers = [float(np.mean(p == data.y_test)) for p in cnn.block_predictions(data.x_test)]
            acc = cnn.score(data.x_test, data.y_test)
        print(f"{args.set} seed {seed}: test {100 * acc:.1f} % (vote); per block "
              f"{' '.join(f'{100 * a:.1f}' for a in layers)}; {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()

