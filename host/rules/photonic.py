"""The photonic chip's controller: the microcontroller beside a programmable MZI-mesh chip learns the chip's phase
codes in situ, from forward queries alone (docs/photonic_controller.md). Its firmware is firmware/src/rule_photonic.c.

The learned state is one code word per trained phase shifter (every layer's MZIs, θ then φ; the output screens are
invisible to intensity detectors and stay at code 0). A word is 15 bits: the DAC code in its top `dac_bits` bits,
the rest sub-LSB steps that small updates accumulate in (code = word >> (15 - dac_bits)).

A query writes DAC codes and shines one sample in; the chip's host answers with the ADC codes of the output
detectors (onward.instrument: a QUERY frame out, an ANSWER frame back). The loss of a reading is FFzero's and
the photonic literature's multi-class hinge on the class detectors, in ADC codes, so that it is an integer:
L = Σ_{c≠y} max(0, M + a_c − a_y), M the margin in ADC codes.

One training step on one sample: a query at the current codes (its class detectors are the step's outputs, the
prediction before learning: a prequential score), then per direction k (K Rademacher sign vectors d_k regenerated
from the PRNG, stream DIRECTIONS keyed by the step and k) the central difference ΔL_k = L(w + δ d_k) − L(w − δ d_k)
from two queries. The estimate of ∂L/∂code_j is Σ_k ΔL_k d_kj / (2 δ K) (ADC codes per DAC LSB); the code moves by
−lr times it: in words, w_j −= round(s_j · rate / 2^GAIN_FRAC) with s_j = Σ_k ΔL_k d_kj and
rate = round(lr_q · gain_q / 2^lr_frac), gain_q = 2^(15 − dac_bits) / (2 δ K) in Q(GAIN_FRAC); the word is
clipped to [0, 2^15 − 1] (each clip counts as a saturation). K = 1 is SPSA (Spall 1992); K > 1 is FFzero's
directional derivative averaged over K directions. 1 + 2K queries a step; no float, no division on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import cast

import numpy as np

from onward import fixed
from onward.data import Dataset
from onward.fixed import I64
from onward.instrument import Answer
from onward.model import STREAM_DIRECTIONS, InitialModel
from onward.nn.conv import direction_signs
from onward.nn.dense import F64
from onward.reference import FixedReference
from onward.schedule import schedule
from onward.spec import RuleOptions, Spec, check_device_rule, require

RULE_ID = 7
TASKS = ("classification",)
MICROPYTHON = False  # the MicroPython runtime has no QUERY exchange (docs/micropython.md)

WORD_BITS = 15  # a code word: the DAC code in its top dac_bits bits
WORD_MAX = (1 << WORD_BITS) - 1
GAIN_FRAC = 24  # gain_q and rate: word units per unit of s_j, Q24
LAYOUTS = ("clements", "reck")
INITS = ("random", "twin")
TWIN_STEPS, TWIN_LR = 600, 0.05  # the digital twin's Adam (as the photonic experiments' examples)


@dataclass(frozen=True)
class Options(RuleOptions):
    """`[rule]` keys: the estimator. `learning_rate` is in DAC LSB per unit of the estimated gradient (the hinge in
    ADC codes, per DAC LSB)."""

    directions: int = 1  # K: 1 is SPSA, more is FFzero's directional derivative over K directions
    perturbation: int = 2  # δ: DAC LSB each code moves along a direction
    margin: float = 0.1  # the hinge margin, in units of the ADC's full scale
    # the initial codes: "random" (uniform over the DAC's range) or "twin" (the digital twin's phases, trained on the
    # ideal model of the chip with exact gradients at code generation, written through the nominal heater law: what
    # a lab deploys before it corrects the chip's flaws in situ)
    init: str = "random"

    def check(self, spec: Spec) -> None:
        require(1 <= self.directions <= 16, spec, f"`rule.directions` must be in [1, 16], got {self.directions}")
        require(0 < self.margin <= 1, spec, f"`rule.margin` must be in (0, 1] (of the ADC's full scale), got "
                f"{self.margin}")
        require(self.init in INITS, spec, f"`rule.init` must be one of {INITS}, got {self.init!r}")
        chip = cast(Table, spec.table)
        require(self.init != "twin" or chip.layers == 1, spec,
                f"`rule.init` = \"twin\" trains one mesh; `photonic.layers` = {chip.layers}: use \"random\"")
        require(not spec.hidden, spec, f"`model.hidden` = {list(spec.hidden)}: the photonic controller's layers are "
                "the chip's meshes (`photonic.layers`); expected []")
        chip.check(spec)
        top = (1 << dac_bits(spec)) - 1
        require(1 <= self.perturbation <= top // 4, spec,
                f"`rule.perturbation` must be in [1, {top // 4}] DAC LSB (a quarter of the DAC's range), got "
                f"{self.perturbation}")
        gain = gain_q(spec)
        require(1 <= gain < 2**31, spec, f"`rule.perturbation` x `rule.directions` and the DAC's bits make the update "
                f"gain {gain} (Q{GAIN_FRAC}); it must be in [1, 2**31)")
        require(spec.lr_q(spec.rule.learning_rate) * gain >> spec.format.lr_frac < 2**31, spec,
                "`rule.learning_rate` is too large for the update's 32-bit rate; lower it")


@dataclass(frozen=True)
class Table:
    """`[photonic]`: the chip the controller drives (onward.photonic.device). Flaw magnitudes left at -1 take the
    preset's value."""

    modes: int = 0  # N; 0: the features, a bias mode, and at least one detector per class
    layout: str = "clements"  # or "reck"
    layers: int = 1  # meshes in a row, the electro-optic activation between them; the last one's detectors are read
    preset: str = "l2ight"  # a flaw set of onward.photonic.device.PRESETS
    chip_seed: int = 1  # the chip's static flaws (another seed is another chip)
    dac_bits: int = 0  # 0: the preset's; at most 15 (a code word is 15 bits)
    adc_bits: int = 12  # at most 15 (the outputs are int16)
    splitter_sigma: float = -1.0
    loss_db: float = -1.0
    loss_db_sigma: float = -1.0
    gamma_sigma: float = -1.0
    phase_bias: float = -1.0
    phase_error: float = -1.0
    crosstalk: float = -1.0
    phase_noise: float = -1.0
    drift: float = -1.0  # rad per query, a random walk of every phase
    shot_noise: float = -1.0
    thermal_noise: float = -1.0

    def check(self, spec: Spec) -> None:
        from onward.photonic.device import PRESETS

        require(self.preset in PRESETS, spec, f"`photonic.preset` must be one of {tuple(PRESETS)}, got "
                f"{self.preset!r}")
        require(self.layout in LAYOUTS, spec, f"`photonic.layout` must be one of {LAYOUTS}, got {self.layout!r}")
        require(1 <= self.layers <= 4, spec, f"`photonic.layers` must be in [1, 4], got {self.layers}")
        require(self.modes == 0 or 2 <= self.modes <= 64, spec,
                f"`photonic.modes` must be 0 (features + 1) or in [2, 64], got {self.modes}")
        require(0 <= self.chip_seed < 2**32, spec, f"`photonic.chip_seed` must be in [0, 2**32), got {self.chip_seed}")
        require(self.dac_bits == 0 or 2 <= self.dac_bits <= WORD_BITS, spec,
                f"`photonic.dac_bits` must be 0 (the preset's) or in [2, {WORD_BITS}], got {self.dac_bits}")
        require(2 <= dac_bits(spec) <= WORD_BITS, spec, f"the preset's DAC has {dac_bits(spec)} bits; "
                f"the controller's code words hold at most {WORD_BITS}: set `photonic.dac_bits`")
        require(2 <= self.adc_bits <= 15, spec, f"`photonic.adc_bits` must be in [2, 15], got {self.adc_bits}")
        for key in FLAW_KEYS:
            value = getattr(self, key)
            require(value == -1.0 or 0 <= value <= 10, spec,
                    f"`photonic.{key}` must be -1 (the preset's) or in [0, 10], got {value}")


FLAW_KEYS = tuple(f.name for f in fields(Table) if f.default == -1.0)


def table(spec: Spec) -> Table:
    return cast(Table, spec.table)


def options(spec: Spec) -> Options:
    return cast(Options, spec.rule.options)


def dac_bits(spec: Spec) -> int:
    """The DAC's bits: the table's, or the preset's."""
    from onward.photonic.device import PRESETS

    t = table(spec)
    return t.dac_bits or PRESETS[t.preset].dac_bits


def word_shift(spec: Spec) -> int:
    """code = word >> word_shift: the sub-LSB bits of a code word."""
    return WORD_BITS - dac_bits(spec)


def gain_q(spec: Spec) -> int:
    """2^word_shift / (2 δ K) in Q(GAIN_FRAC): word units per unit of s_j = Σ_k ΔL_k d_kj at lr = 1."""
    o = options(spec)
    return math.floor((1 << (word_shift(spec) + GAIN_FRAC)) / (2 * o.perturbation * o.directions) + 0.5)


def margin_codes(spec: Spec) -> int:
    """The hinge margin M in ADC codes."""
    return math.floor(options(spec).margin * ((1 << table(spec).adc_bits) - 1) + 0.5)


@dataclass(frozen=True)
class Geometry:
    """What a model's chip looks like to the controller."""

    modes: int  # N: detectors per layer
    mzis: int  # per layer
    layers: int
    features: int  # the sample's values in a request
    classes: int  # the detectors the loss reads: the first `classes` of the last layer

    @property
    def codes(self) -> int:
        """Trained codes: every layer's θ then φ."""
        return 2 * self.mzis * self.layers

    @property
    def request_bytes(self) -> int:
        """QUERY's body: the DAC codes u16[codes], then the sample int16[features]."""
        return 2 * self.codes + 2 * self.features

    @property
    def answer_bytes(self) -> int:
        """ANSWER's body: every output detector's ADC code, u16[modes]."""
        return 2 * self.modes


def geometry(model: InitialModel) -> Geometry:
    return Geometry(model.dims[1], model.weights_q[0].shape[1], model.num_layers, model.dims[0], model.outputs)


def init_model(spec: Spec, data: Dataset) -> InitialModel:
    """The chip's geometry and its initial code words: uniform over the DAC's range from the spec's seed, or the
    digital twin's (`rule.init`)."""
    from onward.photonic.mesh import layout

    check_device_rule(spec, data.max_abs)
    t = table(spec)
    n = t.modes or max(data.input_dim + 1, data.classes)
    require(n >= data.input_dim + 1 and n >= data.classes, spec,
            f"`photonic.modes` = {n}: the chip needs a mode per feature and a bias mode ({data.input_dim + 1}) and a "
            f"detector per class ({data.classes})")
    require(n <= 64, spec, f"the chip would need {n} modes ({data.input_dim} features + a bias mode); at most 64")
    k = layout(n, t.layout).size
    if options(spec).init == "twin":
        words = [twin_words(spec, data, n)]
    else:
        rng = np.random.default_rng([spec.seed, 0x9407])
        words = [rng.integers(0, WORD_MAX + 1, size=(2, k)).astype(np.int64) for _ in range(t.layers)]
    geo = Geometry(n, k, t.layers, data.input_dim, data.classes)
    o = options(spec)
    macros = {"PHOTONIC_MODES": str(n), "PHOTONIC_CODES": str(geo.codes), "PHOTONIC_FEATURES": str(data.input_dim),
              "PHOTONIC_WORD_SHIFT": str(word_shift(spec)), "PHOTONIC_DIRECTIONS": str(o.directions),
              "PHOTONIC_PERTURBATION": str(o.perturbation << word_shift(spec)),
              "PHOTONIC_MARGIN": str(margin_codes(spec)), "PHOTONIC_ADC_MAX": str((1 << t.adc_bits) - 1),
              "PHOTONIC_GAIN_Q": str(gain_q(spec)), "PHOTONIC_GAIN_FRAC": str(GAIN_FRAC)}
    ram = {"request": 3 + geo.request_bytes + 4, "answer": geo.answer_bytes, "sums": 4 * geo.codes}
    return InitialModel(spec, (data.input_dim, *[n] * t.layers), [w.astype(np.float64) for w in words], words,
                        outputs=data.classes, macros=macros, ram=ram, query_bytes=geo.request_bytes,
                        answer_bytes=geo.answer_bytes)


def twin_words(spec: Spec, data: Dataset, n: int) -> I64:
    """The digital twin's θ, φ phases (onward.photonic.train.fit_ideal on the training split), as the code words of
    their nominal-heater-law DAC codes: shape (2, MZIs)."""
    from onward.photonic.train import Task, deploy, fit_ideal

    require(table(spec).layout == "clements", spec, "`rule.init` = \"twin\" trains a Clements mesh; "
            "`photonic.layout` is \"reck\"")
    phases = fit_ideal(Task(n, data.classes), data.x_train, data.y_train, TWIN_STEPS, TWIN_LR, spec.seed)
    codes = deploy(phases, dac_bits(spec)).astype(np.int64)
    return (codes << word_shift(spec)).reshape(2, -1)


# --- the chip ------------------------------------------------------------------------------------------------


def chip_device(spec: Spec, geo: Geometry) -> object:
    """The emulated chip of `[photonic]` (onward.photonic.device.Device)."""
    from onward.photonic.device import Device, preset

    t = table(spec)
    overrides = {key: getattr(t, key) for key in FLAW_KEYS if getattr(t, key) != -1.0}
    flaws = preset(t.preset, dac_bits=dac_bits(spec), adc_bits=t.adc_bits, **overrides)
    return Device(geo.modes, flaws, seed=t.chip_seed, kind=t.layout, layers=geo.layers)


def pack_request(codes: I64, x: I64) -> bytes:
    return np.asarray(codes, dtype="<u2").tobytes() + np.asarray(x, dtype="<i2").tobytes()


def unpack_request(geo: Geometry, request: bytes) -> tuple[I64, I64]:
    if len(request) != geo.request_bytes:
        from onward.photonic.device import DeviceError

        raise DeviceError(f"a chip query carries {geo.request_bytes} bytes ({geo.codes} DAC codes u16, "
                          f"{geo.features} sample values int16), got {len(request)}")
    codes = np.frombuffer(request[:2 * geo.codes], dtype="<u2").astype(np.int64)
    return codes, np.frombuffer(request[2 * geo.codes:], dtype="<i2").astype(np.int64)


def instrument(model: InitialModel, device: object | None = None) -> Answer:
    """The emulated chip as the host answers QUERY frames: the request's codes written (the screens at code 0), the
    sample's values as amplitudes on the first modes with a bias mode after them, scaled to unit power (the light
    source), one measurement, every output detector's ADC code. `device`: that chip (default: a new one of the
    spec's `[photonic]` table)."""
    from onward.photonic.train import Task

    geo = geometry(model)
    device = chip_device(model.spec, geo) if device is None else device
    task = Task(geo.modes, geo.classes)
    frac = model.spec.format.activation_frac
    full = np.zeros(device.n_codes, dtype=np.int64)  # type: ignore[attr-defined]

    def answer(request: bytes) -> bytes:
        codes, x = unpack_request(geo, request)
        full[:geo.codes] = codes
        device.set_codes(full)  # type: ignore[attr-defined]
        adc = device.measure(task.encode(fixed.from_q(x, frac)[None]))  # type: ignore[attr-defined]
        return np.asarray(adc[0], dtype="<u2").tobytes()

    return answer


def hinge(spec: Spec, adc: I64, label: int, classes: int) -> int:
    """Σ_{c≠y} max(0, M + a_c − a_y) over the class detectors, in ADC codes."""
    a = np.asarray(adc[:classes], dtype=np.int64)
    terms = np.maximum(0, margin_codes(spec) + a - a[label])
    return int(terms.sum() - terms[label])


def direction_key(seed: int, steps: int, k: int) -> int:
    """The key of direction k at this step: as every rule's directions (STREAM_DIRECTIONS, step, layer 0, k)."""
    return fixed.derive(fixed.derive(fixed.derive(fixed.derive(seed, STREAM_DIRECTIONS), steps), 0), k)


class Fixed(FixedReference):
    """The bit-exact specification of firmware/src/rule_photonic.c. `query` is the chip: its own emulated one, or
    the tape a lockstep run shares with the device."""

    def __init__(self, model: InitialModel) -> None:
        super().__init__(model)
        self.geo = geometry(model)
        self.shift = word_shift(model.spec)
        self.query = instrument(model)
        self.queries = 0

    def describe_request(self, a: bytes, b: bytes) -> str:
        codes_a, x_a = unpack_request(self.geo, a)
        codes_b, x_b = unpack_request(self.geo, b)
        for name, u, v in (("DAC code", codes_a, codes_b), ("sample value", x_a, x_b)):
            differ = np.flatnonzero(u != v)
            if len(differ):
                i = int(differ[0])
                return f"{name} {i} = {u[i]} where the other asked {v[i]} ({len(differ)} of {u.size} differ)"
        return "the same request"

    def words(self) -> I64:
        return np.concatenate([w.ravel() for w in self.weights])

    def measure(self, words: I64, x: I64) -> I64:
        """One query: the codes of `words` (clipped to the word's range first: a word LOAD set outside it still
        writes a valid code), the sample; every output detector's ADC code."""
        assert self.query is not None
        self.queries += 1
        answer = self.query(pack_request(np.clip(words, 0, WORD_MAX) >> self.shift, x))
        return np.frombuffer(answer, dtype="<u2").astype(np.int64)

    def outputs(self, adc: I64) -> I64:
        """The class detectors' ADC codes as int16 outputs (an answer's u16 above 2^15 wraps, as in C)."""
        return (adc[:self.geo.classes] + 0x8000 & 0xFFFF) - 0x8000  # type: ignore[no-any-return]

    def infer(self, x: I64) -> I64:
        return self.outputs(self.measure(self.words(), x))

    def train_step(self, x: I64, target: int) -> I64:
        spec, o = self.model.spec, options(self.model.spec)
        w = self.words()
        outputs = self.outputs(self.measure(w, x))
        delta = o.perturbation << self.shift
        s = np.zeros(w.size, dtype=np.int64)
        for k in range(o.directions):
            d = direction_signs(direction_key(self.seed, self.steps, k), 0, w.size)
            plus = hinge(spec, self.measure(w + delta * d, x), target, self.geo.classes)
            minus = hinge(spec, self.measure(w - delta * d, x), target, self.geo.classes)
            s += (plus - minus) * d
        rate = int(fixed.round_shift(self.lr_q * gain_q(spec), self.fmt.lr_frac))
        new = w - fixed.round_shift(s * rate, GAIN_FRAC)
        self.saturations += int(np.count_nonzero((new < 0) | (new > WORD_MAX)))
        new = np.clip(new, 0, WORD_MAX)
        k = self.geo.mzis
        self.weights = [new[2 * k * layer:2 * k * (layer + 1)].reshape(2, k) for layer in range(self.geo.layers)]
        return outputs


class Float:
    """The float reference: the same estimator on the same emulated chip, with real-valued codes (rounded only when
    written to the DAC) and no integer rounding of the loss, the rate or the update."""

    def __init__(self, model: InitialModel) -> None:
        self.model, self.spec = model, model.spec
        self.geo = geometry(model)
        self.query = instrument(model)
        self.codes = np.concatenate([w.ravel() for w in model.weights]) / (1 << word_shift(self.spec))
        self.top = (1 << dac_bits(self.spec)) - 1
        self.rng = np.random.default_rng([self.spec.seed, 0x9408])

    def measure(self, codes: F64, x: F64) -> F64:
        """Detector readings (ADC codes) for real-valued codes (rounded and clipped at the DAC)."""
        request = pack_request(np.clip(np.rint(codes), 0, self.top).astype(np.int64),
                               fixed.to_q(x, self.spec.format.activation_frac)[0])
        return np.frombuffer(self.query(request), dtype="<u2").astype(np.float64)

    def loss(self, reading: F64, label: int) -> float:
        a = reading[:self.geo.classes]
        terms = np.maximum(0.0, margin_codes(self.spec) + a - a[label])
        return float(terms.sum() - terms[label])

    def step(self, x: F64, label: int, lr: float) -> None:
        o = options(self.spec)
        g = np.zeros_like(self.codes)
        for _ in range(o.directions):
            d = self.rng.choice([-1.0, 1.0], size=self.codes.size)
            plus = self.loss(self.measure(self.codes + o.perturbation * d, x), label)
            minus = self.loss(self.measure(self.codes - o.perturbation * d, x), label)
            g += (plus - minus) / (2 * o.perturbation) * d
        self.codes = np.clip(self.codes - lr * g / o.directions, 0, self.top)

    def score(self, x: F64, y: I64) -> float:
        """Test accuracy: one query per sample at the current codes."""
        return float(np.mean([self.measure(self.codes, xi)[:self.geo.classes].argmax() == yi
                              for xi, yi in zip(x, y, strict=True)]))

    def fit(self, data: Dataset, epochs: int | None = None) -> list[float]:
        """Online, one sample a step in the shared order, the spec's lr schedule; test accuracy after each epoch."""
        scores = []
        for epoch in schedule(self.spec, len(data.y_train), 1, epochs):
            for i in epoch.order:
                self.step(data.x_train[i], int(data.y_train[i]), epoch.lr)
            scores.append(self.score(data.x_test, data.y_test))
        return scores


def forward_evals(model: InitialModel, stage: int) -> float:
    """Chip queries a training step takes: one at the current codes, two per direction."""
    return 1 + 2 * options(model.spec).directions

