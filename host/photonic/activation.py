"""The electro-optic activation between mesh layers (Williamson et al., IEEE JSTQE 26, 7700412, 2020): a tap sends
a fraction α of each mode's power to a photodiode, whose signal, amplified by g, drives a phase modulator on the
rest of the light in a Mach-Zehnder with bias phase φ_b:

    f(z) = i √(1 − α) e^{−i(g|z|² + φ_b)/2} cos((g|z|² + φ_b)/2) z

FFzero's values: α = 0.1, g = 0.05π, φ_b = π. At φ_b = π the modulator is dark for weak light and opens as the
power grows (|f(z)| = √(1 − α) |sin(g|z|²/2)| |z|): a soft threshold. The photodiode's signal α|z|² is a detector
reading a lab can take at every layer: the layer-local loss is computed on it.

Powers here are in units of the input's total power P (the light source): g acts on P|z|², so `power` sets where on
the activation's curve a layer works (P = π / g: all the input on one mode opens the modulator fully)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onward.photonic.mzi import C128


@dataclass(frozen=True)
class Activation:
    alpha: float = 0.1
    gain: float = 0.05 * np.pi
    bias: float = np.pi
    power: float = 20.0  # the input's total power, in the units g is given in (≈ π / g)

    def __call__(self, z: C128) -> C128:
        """The field after the activation, z in units of √P (shape preserved)."""
        a = (self.gain * self.power * (z.real**2 + z.imag**2) + self.bias) / 2
        return 1j * np.sqrt(1 - self.alpha) * np.exp(-1j * a) * np.cos(a) * z

    def tap(self, z: C128) -> np.ndarray:
        """The photodiode's reading, α|z|² (units of P)."""
        return self.alpha * (z.real**2 + z.imag**2)
