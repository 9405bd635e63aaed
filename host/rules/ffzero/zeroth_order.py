"""Directional-derivative (zeroth-order) gradient estimates from forward evaluations only.

For a parameter block θ of size d and K unit directions u_k:

    δ_k = [L(θ + ε u_k) - L(θ - ε u_k)] / (2ε)        (two forward evaluations per direction)
    ĝ   = (d / K) Σ_k δ_k u_k

E[u uᵀ] = I/d for a unit direction drawn from any rotation- or sign-symmetric distribution, so the factor d makes
ĝ an unbiased estimate of ∇L (up to the O(ε²) error of the central difference). FFzero's directions are Gaussian
vectors normalised to unit length; the device will use Rademacher ±1 vectors divided by sqrt(d), which need no
norm and can be regenerated from a counter-based PRNG."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from onward.nn.dense import F64

Distribution = Literal["gaussian", "rademacher"]
DISTRIBUTIONS: tuple[Distribution, ...] = ("gaussian", "rademacher")

# pair_loss(U) -> (L(θ + εU_k), L(θ - εU_k)) for every row U_k of U: the only access the estimator has to L
PairLoss = Callable[[F64], tuple[F64, F64]]


def unit_directions(rng: np.random.Generator, k: int, d: int, distribution: Distribution) -> F64:
    """K directions of unit norm, shape (K, d)."""
    if distribution == "gaussian":
        u = rng.standard_normal((k, d))
        return u / np.linalg.norm(u, axis=1, keepdims=True)
    if distribution == "rademacher":
        # ±1/sqrt(d): already unit length, so the device never computes a norm (8 signs per random byte)
        bits = np.unpackbits(rng.integers(0, 256, size=(k, (d + 7) // 8), dtype=np.uint8), axis=1, count=d)
        return (2.0 * bits - 1.0) / np.sqrt(d)
    raise ValueError(f"unknown direction distribution {distribution!r}; expected one of {DISTRIBUTIONS}")


def dd_gradient(pair_loss: PairLoss, dirs: F64, eps: float) -> F64:
    """ĝ = (d/K) Σ_k δ_k u_k from the losses at θ ± ε u_k (2K forward evaluations of the block)."""
    k, d = dirs.shape
    plus, minus = pair_loss(dirs)
    slopes = (np.asarray(plus) - np.asarray(minus)) / (2.0 * eps)  # δ_k, one directional derivative each
    return (d / k) * (slopes @ dirs)


def black_box_pair_loss(loss: Callable[[F64], float], theta: F64, eps: float) -> PairLoss:
    """The pair loss of an arbitrary function: two full evaluations of `loss` per direction."""

    def pair(dirs: F64) -> tuple[F64, F64]:
        plus = np.array([loss(theta + eps * u) for u in dirs])
        minus = np.array([loss(theta - eps * u) for u in dirs])
        return plus, minus

    return pair
