"""Phase drift: a chip whose phases random-walk while it serves, and three ways to keep a model on it.

Every shifter's phase takes a N(0, σ) step per query of the chip's clock (`Flaws.drift`, `Device.clock`), so a model
trained once slowly stops fitting the chip it runs on. The comparison (the photonic issue's drift item) runs three
arms on identical chips (same seed: the same static flaws and the same drift realisation, because each clock tick's
drift step is drawn from a stream keyed by (seed, tick) whether the chip measures then or idles) from the same
trained codes:

- `frozen`: never updates; the chip idles between checkpoints (its drift walks on);
- `periodic`: frozen, but the last `burst` ticks of every `period` re-train with the warm-up's estimator;
- `online`: every tick is a forward-only training query (small SPSA / directional steps on mini-batches drawn from
  the labelled stream), so the controller follows the drift as it happens.

Time is the chip's clock, in queries: an update's queries are ticks like any other, and an arm that does nothing
idles (`Device.idle`) so that its clock keeps pace. Every `every` ticks each arm evaluates its codes on the test set
with one query. That query is a tick on every arm alike, so the clocks stay in lockstep and the evaluation changes
no arm's drift relative to another's (it is also in every arm's ledger, and not in its training queries).

The harness holds the Device (it is the world, the thing time passes for); training code gets only the Chip."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from onward.photonic.device import Chip, Device, preset
from onward.photonic.experiment import QUERIES_PER_STEP, PhotonicSpec, Twin
from onward.photonic.mzi import F64
from onward.photonic.train import Curve, Task, chip_intensity, deploy, estimate, fit_in_situ

ARMS = ("frozen", "periodic", "online")
KINDS = ("spsa", "gaussian", "directional")  # the estimators whose step updates every code at once


@dataclass(frozen=True)
class Learner:
    """A forward-only estimator and its step: `lr` DAC LSB per unit of estimated gradient, perturbations of
    `delta` LSB, a mini-batch of `batch` labelled samples per step."""

    kind: str = "spsa"
    lr: float = 2.0
    delta: float = 2.0
    batch: int = 32
    directions: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"learner kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    @property
    def queries_per_step(self) -> int:
        return QUERIES_PER_STEP[self.kind](self.directions)


@dataclass(frozen=True)
class DriftConfig:
    """The experiment's schedule, in clock ticks (queries). `queries` must be a multiple of `every`, and `period` of
    `every` with `burst` <= `period`, so that checkpoints and bursts line up on every arm."""

    sigma: float = 5e-4  # drift: rad per shifter per tick (random-walk step)
    queries: int = 1_000_000  # the drifting run
    every: int = 10_000  # a checkpoint (one test query) every this many ticks
    warmup: int = 48_000  # drift-free training queries before the run (fit_in_situ, `retrain`'s settings)
    period: int = 100_000  # the periodic arm re-trains once per period ...
    burst: int = 10_000  # ... for this many ticks, at the period's end
    retrain: Learner = field(default_factory=Learner)  # warm-up and periodic bursts: the spec's in-situ settings
    online: Learner = field(default_factory=lambda: Learner(lr=1.0, delta=2.0))

    def check(self) -> None:
        if self.queries % self.every or self.period % self.every or not 0 < self.burst <= self.period:
            raise ValueError(f"schedule does not line up: queries {self.queries}, every {self.every}, period "
                             f"{self.period}, burst {self.burst}")


@dataclass(frozen=True)
class ArmRun:
    """One arm on one chip: test accuracy at every checkpoint (`curve.queries` = the clock then), the training
    queries it spent, and the drift's RMS (rad) at each checkpoint (equal across arms of a seed: one realisation)."""

    arm: str
    seed: int
    curve: Curve
    training_queries: int
    drift_rms: list[float]

    @property
    def start(self) -> float:
        return self.curve.accuracy[0]

    @property
    def end(self) -> float:
        return self.curve.accuracy[-1]

    @property
    def low(self) -> float:
        return min(self.curve.accuracy)

    @property
    def mean(self) -> float:
        """The mean over the checkpoints: over time, since they are evenly spaced."""
        return float(np.mean(self.curve.accuracy))


def make_chip(spec: PhotonicSpec, seed: int, sigma: float) -> tuple[Device, Chip]:
    """A chip of the spec's preset and flaws with drift σ: the same static flaws for every σ (they come from the
    seed alone), so the warm-up chip (σ = 0) and every arm's chip are one chip."""
    if spec.layers != 1:
        raise ValueError(f"the drift experiment runs one mesh (train.Task); got layers = {spec.layers}")
    device = Device(spec.modes, preset(spec.preset, **{**spec.flaws, "drift": sigma}), seed=seed)
    return device, Chip(device)


def warm_up(spec: PhotonicSpec, twin: Twin, seed: int, config: DriftConfig) -> F64:
    """The codes every arm starts from: the twin's phases deployed on the drift-free chip, then `config.warmup`
    queries of in-situ training (fit_in_situ) with the `retrain` learner."""
    _, chip = make_chip(spec, seed, 0.0)
    learner = config.retrain
    steps = max(1, config.warmup // learner.queries_per_step)
    codes, _ = fit_in_situ(chip, twin.task, deploy(twin.phases, chip.dac_bits), twin.x_train, twin.y_train,
                           twin.x_test, twin.y_test, kind=learner.kind, steps=steps, batch=learner.batch,
                           lr=learner.lr, delta=learner.delta, directions=learner.directions, seed=seed, every=steps)
    return codes


def evaluate(chip: Chip, task: Task, codes: F64, x: F64, y: np.ndarray) -> float:
    """Accuracy of the codes on (x, y): one query, a tick like any other."""
    return task.accuracy(chip_intensity(chip, codes, task, x), y)


def learn_step(chip: Chip, task: Task, codes: F64, x: F64, y: np.ndarray, learner: Learner,
               rng: np.random.Generator) -> F64:
    """One forward-only step (train.estimate) on a mini-batch drawn from the labelled stream: the next `batch`
    samples a deployed chip would see labels for, here drawn from the training split."""
    idx = rng.choice(len(y), size=min(learner.batch, len(y)), replace=False)

    def loss(c: F64) -> float:
        return task.loss(chip_intensity(chip, c, task, x[idx]), y[idx])

    g = estimate(learner.kind, loss, codes, learner.delta, rng, learner.directions)
    return np.clip(codes - learner.lr * g, 0, (1 << chip.dac_bits) - 1)


def train_for(device: Device, chip: Chip, task: Task, codes: F64, x: F64, y: np.ndarray, learner: Learner,
              rng: np.random.Generator, ticks: int) -> F64:
    """Spend `ticks` clock ticks training: as many whole steps as fit, then idle the remainder (fewer ticks than a
    step's queries), so the clock ends exactly `ticks` later."""
    end = device.clock + ticks
    while device.clock + learner.queries_per_step <= end:
        codes = learn_step(chip, task, codes, x, y, learner, rng)
    device.idle(end - device.clock)
    return codes


def advance(arm: str, device: Device, chip: Chip, task: Task, codes: F64, x: F64, y: np.ndarray,
            config: DriftConfig, rng: np.random.Generator, until: int) -> F64:
    """Run `arm` until the clock reads `until`; returns its codes then."""
    if arm == "frozen":
        device.idle(until - device.clock)
    elif arm == "online":
        codes = train_for(device, chip, task, codes, x, y, config.online, rng, until - device.clock)
    elif arm == "periodic":
        period, quiet = config.period, config.period - config.burst  # a burst fills each period's last ticks
        while device.clock < until:
            phase = device.clock % period
            if phase >= quiet:
                n = min(period - phase, until - device.clock)
                codes = train_for(device, chip, task, codes, x, y, config.retrain, rng, n)
            else:
                device.idle(min(quiet - phase, until - device.clock))
    else:
        raise ValueError(f"unknown arm {arm!r}; expected one of: {', '.join(ARMS)}")
    return codes


def run_arm(arm: str, spec: PhotonicSpec, twin: Twin, seed: int, codes: F64, config: DriftConfig) -> ArmRun:
    """One arm on a fresh drifting chip of `seed` from `codes`: a checkpoint (one test query) every `every` ticks,
    the arm's own activity in between. Its mini-batch stream is seeded by (seed, arm)."""
    config.check()
    device, chip = make_chip(spec, seed, config.sigma)
    rng = np.random.default_rng([seed, 2, ARMS.index(arm)])
    c = np.asarray(codes, dtype=np.float64).copy()
    curve, drift_rms, evaluations = Curve([], []), [], 0
    for start in range(0, config.queries + 1, config.every):
        curve.queries.append(device.clock)
        curve.accuracy.append(evaluate(chip, twin.task, c, twin.x_test, twin.y_test))
        drift_rms.append(float(np.sqrt(np.mean(device.drift**2))))
        evaluations += 1
        if start < config.queries:
            c = advance(arm, device, chip, twin.task, c, twin.x_train, twin.y_train, config, rng,
                        start + config.every)
    return ArmRun(arm, seed, curve, chip.ledger.queries - evaluations, drift_rms)


def run_seed(spec: PhotonicSpec, twin: Twin, seed: int, config: DriftConfig,
             arms: tuple[str, ...] = ARMS) -> list[ArmRun]:
    """Warm up once, then every arm from the same codes on the same chip and drift realisation."""
    codes = warm_up(spec, twin, seed, config)
    return [run_arm(arm, spec, twin, seed, codes, config) for arm in arms]
