"""The Mach-Zehnder interferometer: two directional couplers around an internal phase θ, an external phase φ on its
input's top arm. One convention throughout onward.photonic (tests/test_photonic.py checks its closed forms):

    B(ε) = [[cos(π/4 + ε), i sin(π/4 + ε)], [i sin(π/4 + ε), cos(π/4 + ε)]]   a coupler; ε = 0 is 50:50
    T(θ, φ) = B · diag(e^{iθ}, 1) · B · diag(e^{iφ}, 1)

With ideal couplers T(θ, φ) = i e^{iθ/2} [[e^{iφ} sin(θ/2), cos(θ/2)], [e^{iφ} cos(θ/2), −sin(θ/2)]]: θ = 0 is the
cross state (all light changes arm), θ = π the bar state, |T₁₀|² = cos²(θ/2). A coupler error ε makes the pure
cross state unreachable: the bar port keeps at least sin²(2ε) of the power (the floor a self-calibration has to
live with). Arrays broadcast: θ, φ and ε may be arrays of any one shape, the 2x2 axes last."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

C128 = NDArray[np.complex128]
F64 = NDArray[np.float64]


def coupler(eps: ArrayLike = 0.0) -> C128:
    """B(ε), shape (..., 2, 2)."""
    a = np.pi / 4 + np.asarray(eps, dtype=np.float64)
    c, s = np.cos(a), 1j * np.sin(a)
    return np.stack([np.stack([c, s], -1), np.stack([s, c], -1)], -2).astype(np.complex128)


def mzi(theta: ArrayLike, phi: ArrayLike, eps1: ArrayLike = 0.0, eps2: ArrayLike = 0.0) -> C128:
    """T(θ, φ) with coupler errors ε1 (input side) and ε2 (output side), shape (..., 2, 2)."""
    theta, phi = np.asarray(theta, dtype=np.float64), np.asarray(phi, dtype=np.float64)
    b1, b2 = coupler(eps1), coupler(eps2)
    shape = np.broadcast_shapes(theta.shape, phi.shape, b1.shape[:-2], b2.shape[:-2])
    inner = np.zeros((*shape, 2, 2), dtype=np.complex128)
    inner[..., 0, 0] = np.exp(1j * np.broadcast_to(theta, shape))
    inner[..., 1, 1] = 1.0
    outer = np.zeros_like(inner)
    outer[..., 0, 0] = np.exp(1j * np.broadcast_to(phi, shape))
    outer[..., 1, 1] = 1.0
    return b2 @ inner @ b1 @ outer


def solve(m: ArrayLike) -> tuple[float, float, complex, complex]:
    """(θ, φ, d0, d1) with m = diag(d0, d1) · T(θ, φ) for a 2x2 unitary m (|d| = 1), ideal couplers: what moves a
    phase screen through an MZI in the decomposition. With c = i e^{iθ/2}, s = sin(θ/2), k = cos(θ/2):
    m00 = d0 c e^{iφ} s, m01 = d0 c k, m10 = d1 c e^{iφ} k, m11 = −d1 c s. In the cross (s = 0) and bar (k = 0)
    states only d·e^{iφ} is determined: φ = 0 there."""
    m = np.asarray(m, dtype=np.complex128)
    theta = float(2.0 * np.arctan2(abs(m[0, 0]), abs(m[1, 0])))
    c, s, k = 1j * np.exp(0.5j * theta), np.sin(theta / 2), np.cos(theta / 2)
    tiny = 1e-12
    if s <= tiny:  # cross
        d0, d1, phi = m[0, 1] / (c * k), m[1, 0] / (c * k), 0.0
    elif k <= tiny:  # bar
        d0, d1, phi = m[0, 0] / (c * s), -m[1, 1] / (c * s), 0.0
    else:
        d0, d1 = m[0, 1] / (c * k), -m[1, 1] / (c * s)
        phi = float(np.angle(m[0, 0] / (d0 * c * s) if s >= k else m[1, 0] / (d1 * c * k)))
    return theta, phi, complex(d0 / abs(d0)), complex(d1 / abs(d1))
