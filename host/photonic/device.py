"""A flawed photonic chip, reachable only as a lab bench reaches one: write phase-shifter DAC codes, read detector
ADC codes. Every flaw of shared/photonics.md's table is here, each sized in `Flaws` and switchable (0 = off):

static, drawn once from the device seed (the same chip every time):
  splitter_sigma   coupler error ε ~ N(0, σ) rad per coupler (two per MZI)
  loss_db          insertion loss per MZI, N(loss_db, loss_db_sigma) dB, as an amplitude 10^(−dB/20)
  gamma_sigma      the thermo-optic law φ = γ V² per shifter, γ = π / V_π² · (1 + N(0, σ))
  phase_bias       an unknown offset per shifter, U(−b, b) rad
  phase_error      an unknown offset per shifter, N(0, σ) rad (Shen et al. 2017's phase-encoding error)
  crosstalk        heater crosstalk c: a shifter also gets c times the phase of each neighbour (same column, next
                   MZI up or down; same mode pair region, next column), kernel [[0, c, 0], [c, 1, c], [0, c, 0]]
dynamic, drawn per query from a counter-based stream (seed, clock): reproducible query by query. The clock counts
                   queries, and `idle(k)` lets k queries' worth of time pass without measuring (the drift walks on)
  phase_noise      N(0, σ) rad on every shifter, per query
  drift            a random walk of every shifter's phase, N(0, σ) rad per query, accumulated
  shot_noise       detector shot noise: N(0, σ² I) on an intensity I in units of the full scale
  thermal_noise    detector thermal noise: N(0, σ²), units of the full scale
quantisation
  dac_bits         voltage V = V_max · code / (2^b − 1)
  adc_bits         intensity codes round(I / full_scale · (2^b − 1)), clipped

A chip may hold several meshes in a row (`layers`), with the electro-optic activation (onward.photonic.activation)
between them; static flaws are drawn for every layer's shifters and couplers, the layers' heaters do not cross-talk.

The shifters, in code order: layer 0's MZIs' θ then their φ (mesh order), then layer 1's, ..., then every layer's N
output-screen phases (one layer: θ, φ, screen)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np
from scipy import sparse

from onward.errors import OnwardError
from onward.photonic.activation import Activation
from onward.photonic.mesh import Layout, Mesh, layout
from onward.photonic.mzi import C128, F64

V_PI = 4.36  # V for a π shift (L2ight / torchonn's default heater)
V_MAX = 10.8  # the DAC's full scale (V): φ up to π (V_max / V_π)² ≈ 6.1π


class DeviceError(OnwardError, ValueError):
    """Bad chip parameters or codes: one line naming the field (exit status 2)."""


@dataclass(frozen=True)
class Flaws:
    splitter_sigma: float = 0.0
    loss_db: float = 0.0
    loss_db_sigma: float = 0.0
    gamma_sigma: float = 0.0
    phase_bias: float = 0.0
    phase_error: float = 0.0
    crosstalk: float = 0.0
    phase_noise: float = 0.0
    drift: float = 0.0
    shot_noise: float = 0.0
    thermal_noise: float = 0.0
    dac_bits: int = 16
    adc_bits: int = 16

    def check(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_bits"):
                if not isinstance(value, int) or not 1 <= value <= 24:
                    raise DeviceError(f"`{f.name}` must be an integer in [1, 24], got {value!r}")
            elif not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise DeviceError(f"`{f.name}` must be a finite number >= 0, got {value!r}")


# Named flaw sets. l2ight: Gu et al., "L2ight", NeurIPS 2021 (phase bias U(-1, 1) rad, γ noise 0.002, crosstalk
# 0.005, 8-bit phases); pai2023: Pai et al., Science 380, 398 (2023), the combined case (phase σ 0.05 rad,
# amplitude 0.05, as a loss spread, shot noise 0.02); typical: shared/photonics.md's quick study (splitter σ
# 0.05 rad, 0.2 dB per MZI, 8-bit DAC, phase noise 0.01 rad, detector 0.01, crosstalk 0.005).
PRESETS = {
    "ideal": Flaws(),
    "l2ight": Flaws(phase_bias=1.0, gamma_sigma=0.002, crosstalk=0.005, dac_bits=8),
    "pai2023": Flaws(phase_noise=0.05, loss_db_sigma=0.45, shot_noise=0.02),
    "typical": Flaws(splitter_sigma=0.05, loss_db=0.2, dac_bits=8, phase_noise=0.01, thermal_noise=0.01,
                     crosstalk=0.005),
}


def preset(name: str, **overrides: float) -> Flaws:
    if name not in PRESETS:
        raise DeviceError(f"unknown flaw preset {name!r}; expected one of: {', '.join(PRESETS)}")
    flaws = replace(PRESETS[name], **overrides)
    flaws.check()
    return flaws


@dataclass
class Ledger:
    """What training cost on the chip: queries (one set of codes measured on a batch), samples, chip time (s)."""

    queries: int = 0
    samples: int = 0
    chip_time: float = 0.0


def neighbours(lay: Layout) -> sparse.csr_matrix:
    """Heater adjacency among one kind of MZI shifter (θ or φ): the next MZI up and down in the same column
    (mode ± 2), and the MZIs of the next column over the same modes (mode ± 1)."""
    where = {(int(c), int(m)): k for k, (c, m) in enumerate(zip(lay.columns, lay.modes, strict=True))}
    rows, cols = [], []
    for k, (c, m) in enumerate(zip(lay.columns, lay.modes, strict=True)):
        for dc, dm in ((0, -2), (0, 2), (-1, -1), (-1, 1), (1, -1), (1, 1)):
            j = where.get((int(c) + dc, int(m) + dm))
            if j is not None:
                rows.append(k)
                cols.append(j)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(lay.size, lay.size))


@dataclass
class Device:
    """The chip's physics (the matrices live here; training code gets a Chip, which has none of them)."""

    n: int
    flaws: Flaws = field(default_factory=Flaws)
    seed: int = 0
    kind: str = "clements"
    sample_time: float = 1e-9  # chip time per sample (a detector integration), for the ledger
    layers: int = 1
    activation: Activation = field(default_factory=Activation)

    def __post_init__(self) -> None:
        self.flaws.check()
        if not isinstance(self.layers, int) or isinstance(self.layers, bool) or not 1 <= self.layers <= 16:
            raise DeviceError(f"`layers` must be an integer in [1, 16], got {self.layers!r}")
        self.layout = layout(self.n, self.kind)
        n, f = self.n, self.flaws
        k = self.layout.size * self.layers  # every layer's MZIs, layer after layer
        self.n_codes = 2 * k + n * self.layers
        rng = np.random.default_rng([self.seed, 0])  # static flaws: the device seed alone
        self.eps1 = rng.normal(0.0, f.splitter_sigma, k) if f.splitter_sigma else np.zeros(k)
        self.eps2 = rng.normal(0.0, f.splitter_sigma, k) if f.splitter_sigma else np.zeros(k)
        loss = rng.normal(f.loss_db, f.loss_db_sigma, k) if (f.loss_db or f.loss_db_sigma) else np.zeros(k)
        self.transmission = 10.0 ** (-np.maximum(loss, 0.0) / 20.0)
        self.gamma = np.pi / V_PI**2 * (1.0 + (rng.normal(0.0, f.gamma_sigma, self.n_codes) if f.gamma_sigma
                                               else 0.0))
        self.bias = rng.uniform(-f.phase_bias, f.phase_bias, self.n_codes) if f.phase_bias else np.zeros(self.n_codes)
        if f.phase_error:
            self.bias = self.bias + rng.normal(0.0, f.phase_error, self.n_codes)
        adj = neighbours(self.layout)
        self.crosstalk = sparse.block_diag([adj, adj] * self.layers
                                           + [sparse.csr_matrix((n * self.layers, n * self.layers))]).tocsr()
        self.crosstalk *= f.crosstalk
        self.codes = np.zeros(self.n_codes, dtype=np.int64)
        self.drift = np.zeros(self.n_codes)
        self.ledger = Ledger()
        self.clock = 0  # time in queries: keys each query's noise and drift; equals ledger.queries until idle is called

    @property
    def dac_max(self) -> int:
        return (1 << self.flaws.dac_bits) - 1

    @property
    def adc_max(self) -> int:
        return (1 << self.flaws.adc_bits) - 1

    def set_codes(self, codes: object) -> None:
        c = np.asarray(codes)
        if c.shape != (self.n_codes,):
            raise DeviceError(f"set_codes: expected {self.n_codes} DAC codes (every MZI's θ and φ, then {self.n} "
                              f"output phases), got shape {c.shape}")
        if not np.issubdtype(c.dtype, np.integer):
            raise DeviceError(f"set_codes: DAC codes are integers, got dtype {c.dtype}")
        if c.min(initial=0) < 0 or c.max(initial=0) > self.dac_max:
            bad = int(np.argmax((c < 0) | (c > self.dac_max)))
            raise DeviceError(f"set_codes: code {bad} is {int(c[bad])}, outside [0, {self.dac_max}] "
                              f"({self.flaws.dac_bits}-bit DAC)")
        self.codes = c.astype(np.int64)

    def phases(self, codes: np.ndarray | None = None) -> F64:
        """The static phases the codes set: γ V² + bias, then the heaters' crosstalk."""
        v = V_MAX * (self.codes if codes is None else codes) / self.dac_max
        phase = self.gamma * v**2 + self.bias
        return phase + self.crosstalk @ phase if self.flaws.crosstalk else phase

    def mesh(self, phases: F64, layer: int = 0) -> Mesh:
        k, n = self.layout.size, self.n
        at, mzis = 2 * k * layer, slice(k * layer, k * (layer + 1))
        screen = 2 * k * self.layers + n * layer
        return Mesh(self.layout, phases[at:at + k], phases[at + k:at + 2 * k], phases[screen:screen + n],
                    self.eps1[mzis], self.eps2[mzis], self.transmission[mzis])

    def measure(self, amplitudes: object, taps: bool = False) -> np.ndarray:
        """One query: the input amplitudes (batch, N) through the meshes the codes set (with this query's phase
        noise and drift) and the activations between them, |E|² on every output, detector noise, the ADC.
        Returns codes (batch, N); with `taps`, every layer's readings (batch, layers, N): each activation's
        photodiode α|z|², then the output detectors (one layer: the output detectors)."""
        x = np.asarray(amplitudes)
        if x.ndim != 2 or x.shape[1] != self.n:
            raise DeviceError(f"measure: expected input amplitudes of shape (batch, {self.n}), got {x.shape}")
        f = self.flaws
        rng = np.random.default_rng([self.seed, 1, self.clock])  # this query's noise, reproducible
        phase = self.phases()
        if f.drift:
            self.drift += rng.normal(0.0, f.drift, self.n_codes)
            phase = phase + self.drift
        if f.phase_noise:
            phase = phase + rng.normal(0.0, f.phase_noise, self.n_codes)
        e = np.asarray(x, dtype=np.complex128).T
        readings = []
        for layer in range(self.layers):
            e = self.mesh(phase, layer).propagate(e)
            if layer < self.layers - 1:
                readings.append(self.activation.tap(e).T)
                e = self.activation(e)
        readings.append((e.real**2 + e.imag**2).T)  # full scale 1: a unit-power input on one detector
        intensity = np.stack(readings, axis=1) if taps else readings[-1]
        if f.shot_noise:
            intensity = intensity + rng.normal(0.0, 1.0, intensity.shape) * f.shot_noise * np.sqrt(intensity)
        if f.thermal_noise:
            intensity = intensity + rng.normal(0.0, f.thermal_noise, intensity.shape)
        self.clock += 1
        self.ledger.queries += 1
        self.ledger.samples += x.shape[0]
        self.ledger.chip_time += x.shape[0] * self.sample_time
        return np.clip(np.rint(intensity * self.adc_max), 0, self.adc_max).astype(np.int64)

    def idle(self, queries: int) -> None:
        """Let `queries` queries' worth of time pass with nothing measured: the drift takes the steps those clock
        values' queries would have drawn (the first draw of each one's stream, as in measure), so a chip that waits
        and one that measures meanwhile see the same drift. The ledger is unchanged: idling costs no query."""
        if not isinstance(queries, int | np.integer) or isinstance(queries, bool) or queries < 0:
            raise DeviceError(f"idle: `queries` must be an integer >= 0, got {queries!r}")
        if self.flaws.drift:
            for q in range(self.clock, self.clock + queries):
                self.drift += np.random.default_rng([self.seed, 1, q]).normal(0.0, self.flaws.drift, self.n_codes)
        self.clock += int(queries)

    def ideal_unitary(self, layer: int = 0) -> C128:
        """The unitary the codes would set on a flawless chip (tests and the ideal-model baseline, not training)."""
        k, n = self.layout.size, self.n
        p = nominal_phases(self.codes, self.flaws.dac_bits)
        at, screen = 2 * k * layer, 2 * k * self.layers + n * layer
        return Mesh(self.layout, p[at:at + k], p[at + k:at + 2 * k], p[screen:screen + n]).unitary()


def nominal_phases(codes: np.ndarray, dac_bits: int) -> F64:
    """The phase a code sets on a nominal heater (γ = π / V_π², no bias, no crosstalk): the law a user knows."""
    return np.pi / V_PI**2 * (V_MAX * np.asarray(codes) / ((1 << dac_bits) - 1)) ** 2


def codes_for_phases(phases: F64, dac_bits: int) -> np.ndarray:
    """The DAC codes that set `phases` (wrapped into [0, 2π)) on a nominal heater (γ = π / V_π², no bias): what a
    user deploying an ideal model's phases writes. The voltage is within half a DAC step of √(φ / γ)."""
    top = (1 << dac_bits) - 1
    volts = np.sqrt(np.mod(phases, 2 * np.pi) / (np.pi / V_PI**2))
    return np.clip(np.rint(volts / V_MAX * top), 0, top).astype(np.int64)


class Chip:
    """What training code gets: set_codes, measure and the ledger, and the sizes it needs. No matrix, phase or flaw
    is reachable through it (tests/test_photonic.py checks that): the device sits in a closure."""

    __slots__ = ("_ledger", "_measure", "_set", "adc_bits", "dac_bits", "layers", "n_codes", "n_modes")

    def __init__(self, device: Device) -> None:
        object.__setattr__(self, "_set", lambda codes: device.set_codes(codes))
        object.__setattr__(self, "_measure", lambda x, taps: device.measure(x, taps))
        object.__setattr__(self, "_ledger", lambda: replace(device.ledger))
        object.__setattr__(self, "n_modes", device.n)
        object.__setattr__(self, "n_codes", device.n_codes)
        object.__setattr__(self, "layers", device.layers)
        object.__setattr__(self, "dac_bits", device.flaws.dac_bits)
        object.__setattr__(self, "adc_bits", device.flaws.adc_bits)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Chip is read-only: use set_codes")

    def set_codes(self, codes: object) -> None:
        self._set(codes)

    def measure(self, amplitudes: object, taps: bool = False) -> np.ndarray:
        """ADC codes (batch, N) of the output detectors; with `taps`, of every layer's (batch, layers, N)."""
        return self._measure(amplitudes, taps)

    @property
    def ledger(self) -> Ledger:
        """A copy: queries, samples and chip time so far."""
        return self._ledger()
