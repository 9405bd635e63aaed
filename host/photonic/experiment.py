"""`onward photonic SPEC`: a photonic spec file, and the experiment it describes: a data set on an emulated flawed
chip, the digital twin's phases deployed, against forward-only training in situ through the codes, on one query
budget, mean ± sd over chips (each chip seed: other static flaws).

    name = "photonic_iris"
    [data]
    set = "iris"              # iris | digits (scikit-learn's, shipped: nothing downloads)
    pool = 1                  # digits: average-pool the 8x8 pixels by this factor (2: 4x4)
    test_fraction = 0.3       # a fixed, stratified split (split_seed)
    split_seed = 0
    [chip]
    modes = 8                 # at least the features + the bias mode (and the classes), at most twice that
    layers = 1                # meshes in a row, the electro-optic activation between them (2+: FFzero's local
                              # losses on every layer's photodiodes, and the vote)
    power = 20.0              # the input's power in the activation's units (g = 0.05π: π / g = 20)
    preset = "l2ight"         # onward.photonic.device.PRESETS; any Flaws field below overrides it
    seeds = [1, 2, 3]
    [train]
    methods = ["spsa", "gaussian", "directional"]
    queries = 48000           # training queries per method and chip
    batch = 32
    step = 2.0                # DAC LSB per unit of estimated gradient
    perturbation = 2.0        # DAC LSB
    gaussian_directions = 4
    directional_directions = 2
    coordinate_batch = 256    # the coordinate method's mini-batch (its chip time shows the extra samples)
    coordinate_damping = 0.5  # the share of the way to the fitted optimum a coordinate step moves
    twin_steps = 600
    twin_lr = 0.05
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from onward.data.iris import iris
from onward.photonic.activation import Activation
from onward.photonic.device import Chip, Device, Flaws, preset
from onward.photonic.network import LocalTask, fit_twin, ideal_readings
from onward.photonic.train import (
    ESTIMATORS,
    Curve,
    Task,
    chip_intensity,
    deploy,
    fit_ideal,
    fit_in_situ,
    ideal_intensity,
)
from onward.spec import SpecError, read_toml

QUERIES_PER_STEP = {"spsa": lambda k: 2, "gaussian": lambda k: 1 + k, "directional": lambda k: 2 * k,
                    "coordinate": lambda k: 3}
DATA_SETS = ("iris", "digits")


@dataclass(frozen=True)
class PhotonicSpec:
    name: str
    data: str = "iris"
    pool: int = 1
    test_fraction: float = 0.3
    split_seed: int = 0
    modes: int = 8
    layers: int = 1
    power: float = 20.0
    preset: str = "l2ight"
    flaws: dict[str, float] = field(default_factory=dict)
    seeds: tuple[int, ...] = (1, 2, 3)
    methods: tuple[str, ...] = ESTIMATORS
    queries: int = 48000
    batch: int = 32
    step: float = 2.0
    perturbation: float = 2.0
    gaussian_directions: int = 4
    directional_directions: int = 2
    coordinate_batch: int = 256
    coordinate_damping: float = 0.5
    twin_steps: int = 600
    twin_lr: float = 0.05

    def directions(self, method: str) -> int:
        return {"gaussian": self.gaussian_directions, "directional": self.directional_directions}.get(method, 1)


SECTIONS = {
    "data": {"set": "data", "pool": "pool", "test_fraction": "test_fraction", "split_seed": "split_seed"},
    "chip": {"modes": "modes", "layers": "layers", "power": "power", "preset": "preset", "seeds": "seeds"},
    "train": {k: k for k in ("methods", "queries", "batch", "step", "perturbation", "gaussian_directions",
                             "directional_directions", "coordinate_batch", "coordinate_damping",
                             "twin_steps", "twin_lr")},
}
FLAW_KEYS = tuple(f.name for f in fields(Flaws))


def load_photonic_spec(path: Path) -> PhotonicSpec:
    """Read and check a photonic spec; a bad key or value stops with one line naming it (SpecError, exit 2)."""
    path = Path(path)
    raw = read_toml(path, "the photonic spec")
    if "rule" in raw:
        raise SpecError(f"{path}: a model spec (it has [rule]); `onward photonic` runs it with --target (the MCU as "
                        "the chip's controller), an experiment file has the sections [data], [chip], [train]")
    values: dict[str, Any] = {"name": raw.get("name", path.stem)}
    flaws: dict[str, float] = {}
    for key, value in raw.items():
        if key == "name":
            continue
        if key not in SECTIONS or not isinstance(value, dict):
            raise SpecError(f"{path}: unknown key `{key}`; expected name and the sections [data], [chip], [train]")
        for sub, v in value.items():
            if key == "chip" and sub in FLAW_KEYS:
                flaws[sub] = v
            elif sub in SECTIONS[key]:
                values[SECTIONS[key][sub]] = tuple(v) if isinstance(v, list) else v
            else:
                extra = f", or a flaw: {', '.join(FLAW_KEYS)}" if key == "chip" else ""
                raise SpecError(f"{path}: unknown key `{key}.{sub}`; expected one of: "
                                f"{', '.join(SECTIONS[key])}{extra}")
    spec = PhotonicSpec(flaws=flaws, **values)
    check(spec, path)
    return spec


def _need(ok: bool, path: Path, message: str) -> None:
    if not ok:
        raise SpecError(f"{path}: {message}")


TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "data": (str,), "pool": (int,), "test_fraction": (int, float), "split_seed": (int,),
    "modes": (int,), "layers": (int,), "power": (int, float), "preset": (str,), "seeds": (tuple,),
    "methods": (tuple,), "queries": (int,), "batch": (int,),
    "step": (int, float), "perturbation": (int, float), "gaussian_directions": (int,),
    "directional_directions": (int,), "coordinate_batch": (int,), "coordinate_damping": (int, float),
    "twin_steps": (int,), "twin_lr": (int, float),
}
KEY_NAMES = {"name": "name", **{attr: f"{section}.{key}" for section, keys in SECTIONS.items()
                                for key, attr in keys.items()}}


def check(spec: PhotonicSpec, path: Path) -> None:
    from onward.photonic.device import DeviceError

    for attr, kinds in TYPES.items():  # types first: every later check may then compare and iterate
        value = getattr(spec, attr)
        if isinstance(value, bool) or not isinstance(value, kinds):
            expected = {"tuple": "a list", "int": "an integer", "str": "a string", "float": "a number"}
            raise SpecError(f"{path}: `{KEY_NAMES[attr]}` must be {expected[kinds[-1].__name__]}, got {value!r}")
    for value in spec.flaws.values():
        if isinstance(value, bool) or not isinstance(value, int | float):
            name = next(k for k, v in spec.flaws.items() if v is value)
            raise SpecError(f"{path}: `chip.{name}` must be a number, got {value!r}")
    _need(spec.data in DATA_SETS, path, f"`data.set` must be one of {', '.join(DATA_SETS)}, got {spec.data!r}")
    _need(spec.pool in (1, 2, 4) or spec.data != "digits", path, f"`data.pool` must be 1, 2 or 4, got {spec.pool}")
    _need(0 < spec.test_fraction < 1, path, f"`data.test_fraction` must be in (0, 1), got {spec.test_fraction}")
    try:
        preset(spec.preset, **spec.flaws)
    except DeviceError as exc:
        raise SpecError(f"{path}: chip: {exc}") from None
    features, classes = data_shape(spec)
    least, most = max(features + 1, classes), 2 * (features + 1)
    _need(isinstance(spec.modes, int) and least <= spec.modes <= most, path,
          f"`chip.modes` must be in [{least}, {most}] for {spec.data} ({features} features + the bias mode, "
          f"{classes} classes; a larger mesh than the data allows only adds idle modes), got {spec.modes!r}")
    _need(1 <= spec.layers <= 16, path, f"`chip.layers` must be an integer in [1, 16], got {spec.layers}")
    _need(math.isfinite(spec.power) and spec.power > 0, path, f"`chip.power` must be a number > 0, got {spec.power}")
    _need(len(spec.seeds) >= 1 and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                       for s in spec.seeds), path,
          f"`chip.seeds` must be a list of integers >= 0, got {list(spec.seeds)}")
    bad = [m for m in spec.methods if not isinstance(m, str) or m not in ESTIMATORS]
    _need(not bad and len(spec.methods) >= 1, path,
          f"`train.methods` must list some of {', '.join(ESTIMATORS)}, got {list(spec.methods)}")
    for key in ("queries", "batch", "gaussian_directions", "directional_directions", "coordinate_batch",
                "twin_steps"):
        value = getattr(spec, key)
        _need(isinstance(value, int) and value >= 1, path, f"`train.{key}` must be an integer >= 1, got {value!r}")
    for key in ("step", "perturbation", "twin_lr"):
        value = getattr(spec, key)
        _need(isinstance(value, int | float) and math.isfinite(value) and value > 0, path,
              f"`train.{key}` must be a number > 0, got {value!r}")
    _need(0 < spec.coordinate_damping <= 1, path,
          f"`train.coordinate_damping` must be in (0, 1], got {spec.coordinate_damping!r}")


def data_shape(spec: PhotonicSpec) -> tuple[int, int]:
    """(features, classes) of the spec's data set."""
    if spec.data == "iris":
        return 4, 3
    return (8 // spec.pool) ** 2, 10


def load_data(spec: PhotonicSpec) -> tuple[np.ndarray, np.ndarray]:
    """Features in [0, 1] (iris: min-max per feature; digits: pixels / 16, average-pooled) and labels."""
    if spec.data == "iris":
        return iris()
    x, y = load_digits(return_X_y=True)
    side = 8 // spec.pool
    x = x.reshape(-1, side, spec.pool, side, spec.pool).mean(axis=(2, 4)).reshape(len(x), -1) / 16.0
    return x, y


@dataclass
class Results:
    spec: PhotonicSpec
    ideal: float
    accuracy: dict[str, list[float]]  # "deployed" and each method: the test accuracy per chip
    curves: dict[str, list[Curve]]
    queries: dict[str, int]  # training queries per method and chip
    chip_time: dict[str, float]  # chip seconds per method and chip (mean)

    def summary(self, key: str) -> tuple[float, float]:
        v = self.accuracy[key]
        return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0

    def recovered(self, method: str) -> float:
        lost = self.ideal - self.summary("deployed")[0]
        return (self.summary(method)[0] - self.summary("deployed")[0]) / lost if lost > 0 else float("nan")


@dataclass(frozen=True)
class Twin:
    """A spec's fixed split, its task, and the digital twin trained on the ideal model: what every comparison
    (`run`, bench/photonic_grid.py) starts from."""

    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    phases: np.ndarray
    ideal: float  # the twin's test accuracy on the ideal model


def train_twin(spec: PhotonicSpec, validation: bool = False) -> Twin:
    """With `validation`, a fifth of the training split (stratified) stands in for the test set, which is then not
    used at all: the scores to tune on."""
    x, y = load_data(spec)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=spec.test_fraction, random_state=spec.split_seed,
                                              stratify=y)
    if validation:
        x_tr, x_te, y_tr, y_te = train_test_split(x_tr, y_tr, test_size=0.2, random_state=spec.split_seed,
                                                  stratify=y_tr)
    classes = int(y.max()) + 1
    if spec.layers == 1:
        task = Task(spec.modes, classes)
        phases = fit_ideal(task, x_tr, y_tr, steps=spec.twin_steps, lr=spec.twin_lr)
        ideal = task.accuracy(ideal_intensity(spec.modes, phases, task, x_te), y_te)
        return Twin(task, x_tr, y_tr, x_te, y_te, phases, ideal)
    local = LocalTask(spec.modes, classes, layers=spec.layers, activation=Activation(power=spec.power))
    phases = fit_twin(local, x_tr, y_tr, steps=spec.twin_steps, lr=spec.twin_lr)
    ideal = local.accuracy(ideal_readings(local, phases, x_te), y_te)
    return Twin(local, x_tr, y_tr, x_te, y_te, phases, ideal)


@dataclass(frozen=True)
class Outcome:
    """One method trained on one chip."""

    seed: int
    method: str
    deployed: float  # the twin's phases on this chip, before training
    curve: Curve
    chip_time: float


def train_on_chip(spec: PhotonicSpec, twin: Twin, seed: int, method: str) -> Outcome:
    """A fresh chip of this seed (its own ledger), the twin's phases deployed, then `method` in situ."""
    chip = Chip(Device(spec.modes, preset(spec.preset, **spec.flaws), seed=seed, layers=spec.layers,
                       activation=Activation(power=spec.power)))
    codes = deploy(twin.phases, chip.dac_bits)
    deployed = twin.task.accuracy(chip_intensity(chip, codes, twin.task, twin.x_test), twin.y_test)
    k = spec.directions(method)
    steps = max(1, spec.queries // QUERIES_PER_STEP[method](k))
    batch = spec.coordinate_batch if method == "coordinate" else spec.batch
    _, curve = fit_in_situ(chip, twin.task, codes, twin.x_train, twin.y_train, twin.x_test, twin.y_test, kind=method,
                           steps=steps, batch=batch, lr=spec.step, delta=spec.perturbation, directions=k, seed=seed,
                           every=max(1, steps // 20), damping=spec.coordinate_damping)
    return Outcome(seed, method, deployed, curve, chip.ledger.chip_time)


def run(spec: PhotonicSpec, progress: bool = True, workers: int = 1, validation: bool = False) -> Results:
    """Every (chip, method) of the spec, on `workers` processes (each job is independent and seeded: the
    results do not depend on the number of workers)."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    twin = train_twin(spec, validation)
    jobs = [(seed, method) for seed in spec.seeds for method in spec.methods]
    bar = tqdm(total=len(jobs), desc=spec.name, file=sys.stderr, disable=not progress)
    outcomes: list[Outcome] = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(train_on_chip, spec, twin, seed, method) for seed, method in jobs]
            for future in futures:
                outcomes.append(future.result())
                bar.update(1)
    else:
        for seed, method in jobs:
            outcomes.append(train_on_chip(spec, twin, seed, method))
            bar.update(1)
    bar.close()
    accuracy: dict[str, list[float]] = {"deployed": [o.deployed for o in outcomes if o.method == spec.methods[0]]}
    curves: dict[str, list[Curve]] = {}
    queries: dict[str, int] = {}
    chip_time: dict[str, list[float]] = {}
    for o in outcomes:
        accuracy.setdefault(o.method, []).append(o.curve.accuracy[-1])
        curves.setdefault(o.method, []).append(o.curve)
        queries[o.method] = o.curve.queries[-1]
        chip_time.setdefault(o.method, []).append(o.chip_time)
    return Results(spec, twin.ideal, accuracy, curves, queries, {k: float(np.mean(v)) for k, v in chip_time.items()})


def table(r: Results) -> str:
    lines = ["| method | test accuracy | training queries | chip time | share of the deployment loss recovered |",
             "|---|---|---|---|---|",
             f"| ideal model (digital twin, exact gradients) | {100 * r.ideal:.1f} % | — | — | — |"]
    m, s = r.summary("deployed")
    lines.append(f"| twin's phases deployed on the chip | {100 * m:.1f} ± {100 * s:.1f} % | 0 | — | — |")
    for method in r.spec.methods:
        m, s = r.summary(method)
        lines.append(f"| {method} in situ | {100 * m:.1f} ± {100 * s:.1f} % | {r.queries[method]} "
                     f"| {r.chip_time[method] * 1e3:.2f} ms | {100 * r.recovered(method):.0f} % |")
    return "\n".join(lines)


def as_json(r: Results) -> dict[str, Any]:
    return {"spec": r.spec.name, "ideal": r.ideal,
            "methods": {k: {"mean": r.summary(k)[0], "sd": r.summary(k)[1], "per_chip": r.accuracy[k],
                            **({"queries": r.queries[k], "chip_time_s": r.chip_time[k],
                                "recovered": r.recovered(k),
                                "curve_queries": r.curves[k][0].queries,
                                "curve_accuracy": np.mean([c.accuracy for c in r.curves[k]], axis=0).tolist()}
                               if k != "deployed" else {})}
                        for k in r.accuracy}}


def plot(r: Results, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, cs in r.curves.items():
        ax.plot(cs[0].queries, np.mean([c.accuracy for c in cs], axis=0), label=f"{method} in situ")
    budget = max(r.queries.values(), default=0)
    for layer in range(1, r.spec.layers):  # each layer trains for its share of the queries, in order
        ax.axvline(budget * layer / r.spec.layers, color="gray", ls=":", lw=1,
                   label="the next layer starts" if layer == 1 else None)
    ax.axhline(r.ideal, color="black", ls="--", label="ideal model (twin)")
    ax.axhline(r.summary("deployed")[0], color="red", ls=":", label="twin's phases deployed")
    ax.set_xlabel("training queries (one set of codes measured on a mini-batch)")
    ax.set_ylabel("test accuracy")
    mesh = f"{r.spec.layers} x {r.spec.modes}-mode Clements meshes" if r.spec.layers > 1 else \
        f"{r.spec.modes}-mode Clements chip"
    ax.set_title(f"{r.spec.name}: {mesh}, {r.spec.preset} flaws, "
                 f"mean of {len(r.spec.seeds)} chips")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
