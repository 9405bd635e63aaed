"""The model spec: one TOML file drives the float reference, the fixed-point reference, code generation
and verification. `load_spec` validates it and names the key and the expected value on every error."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

RULES = ("pepita", "mempepita")
DATA_SETS = ("digits", "synthetic")
MAX_WIDTH = 4096
MAX_HIDDEN_LAYERS = 8


class SpecError(ValueError):
    """A spec that cannot be used; the message names the file, the key and what was expected."""


@dataclass(frozen=True)
class DataSpec:
    set: str = "digits"
    test_fraction: float = 0.25
    scale: float = 1.0  # inputs are multiplied by this (digits: pixels / 16 * scale)
    # synthetic only: Gaussian class clusters, generated from the spec's seed
    features: int = 16
    classes: int = 4
    samples: int = 400


@dataclass(frozen=True)
class RuleSpec:
    name: str = "pepita"
    learning_rate: float = 0.01
    epochs: int = 100
    feedback_scale: float = 0.05  # F ~ U[-a, a], a = feedback_scale * sqrt(6 / input_dim) (PEPITA's code)
    batch_size: int = 1
    momentum: float = 0.0
    lr_decay: float = 0.1
    lr_decay_epochs: tuple[int, ...] = ()


@dataclass(frozen=True)
class FormatSpec:
    activation_frac: int = 12  # activations, errors and inputs: int16 Q(15-f).f
    weight_frac: int = 13
    feedback_frac: int = 15  # PEPITA's fixed random projection F
    lr_frac: int = 24  # the learning rate as an integer multiplier lr * 2**lr_frac

    @property
    def update_shift(self) -> int:
        """delta (Q af) * input (Q af) * lr (Q lr_frac) -> weight (Q wf): shift right by this much."""
        return 2 * self.activation_frac + self.lr_frac - self.weight_frac


@dataclass(frozen=True)
class Spec:
    name: str
    seed: int
    hidden: tuple[int, ...]
    data: DataSpec = field(default_factory=DataSpec)
    rule: RuleSpec = field(default_factory=RuleSpec)
    format: FormatSpec = field(default_factory=FormatSpec)
    source: str = "<spec>"

    def lr_at_epoch(self, epoch: int) -> float:
        drops = sum(1 for e in self.rule.lr_decay_epochs if epoch >= e)
        return self.rule.learning_rate * self.rule.lr_decay**drops

    def with_epochs(self, epochs: int) -> Spec:
        """The same spec trained for `epochs`, its learning-rate schedule compressed to match."""
        r = self.rule
        decay = tuple(max(1, round(e * epochs / r.epochs)) for e in r.lr_decay_epochs)
        return replace(self, rule=replace(r, epochs=epochs, lr_decay_epochs=decay))

    def lr_q(self, lr: float) -> int:
        return math.floor(lr * (1 << self.format.lr_frac) + 0.5)


_SECTIONS: dict[str, type] = {"data": DataSpec, "rule": RuleSpec, "format": FormatSpec}
_TOP_KEYS = {"name": str, "seed": int, "model": dict, **{k: dict for k in _SECTIONS}}


def _type_name(t: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", dict: "a table", list: "a list",
            tuple: "a list of integers"}.get(t, str(t))


def _check_type(where: str, key: str, value: Any, expected: type) -> Any:
    ok = (
        isinstance(value, expected) and not isinstance(value, bool)
        if expected is not float
        else isinstance(value, int | float) and not isinstance(value, bool)
    )
    if expected is tuple:
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ok:
        raise SpecError(f"{where}: `{key}` must be {_type_name(expected)}, got {value!r}")
    return tuple(value) if expected is tuple else (float(value) if expected is float else value)


def _section(where: str, name: str, raw: dict[str, Any], cls: type) -> Any:
    fields = cls.__dataclass_fields__
    values = {}
    for key, value in raw.items():
        if key not in fields:
            raise SpecError(f"{where}: unknown key `{name}.{key}`; expected one of: {', '.join(fields)}")
        ftype = {"int": int, "float": float, "str": str, "tuple[int, ...]": tuple}[str(fields[key].type)]
        values[key] = _check_type(where, f"{name}.{key}", value, ftype)
    return cls(**values)


def _require(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise SpecError(f"{where}: {message}")


def parse_spec(raw: dict[str, Any], source: str = "<spec>") -> Spec:
    """Build and validate a Spec from a parsed TOML table."""
    where = source
    for key, value in raw.items():
        if key not in _TOP_KEYS:
            raise SpecError(f"{where}: unknown key `{key}`; expected one of: {', '.join(_TOP_KEYS)}")
        _check_type(where, key, value, _TOP_KEYS[key])
    for key in ("name", "model"):
        _require(key in raw, where, f"missing required key `{key}`")
    model = dict(raw["model"])
    for key in model:
        _require(key == "hidden", where, f"unknown key `model.{key}`; expected one of: hidden")
    _require("hidden" in model, where, "missing required key `model.hidden` (a list of layer widths)")
    hidden = _check_type(where, "model.hidden", model["hidden"], tuple)
    sections = {k: _section(where, k, raw.get(k, {}), cls) for k, cls in _SECTIONS.items()}
    spec = Spec(name=raw["name"], seed=raw.get("seed", 0), hidden=hidden, source=source, **sections)
    _validate(spec)
    return spec


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec ({exc.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return parse_spec(raw, str(path))


def _validate(spec: Spec) -> None:
    w, d, r, f = spec.source, spec.data, spec.rule, spec.format
    _require(spec.name.replace("_", "").replace("-", "").isalnum(), w,
             f"`name` must be letters, digits, '_' or '-' (it names files and C symbols), got {spec.name!r}")
    _require(0 <= spec.seed < 2**32, w, f"`seed` must be in [0, 2**32), got {spec.seed}")
    _require(len(spec.hidden) <= MAX_HIDDEN_LAYERS, w,
             f"`model.hidden` has {len(spec.hidden)} layers; at most {MAX_HIDDEN_LAYERS} are supported")
    for i, width in enumerate(spec.hidden):
        _require(1 <= width <= MAX_WIDTH, w, f"`model.hidden[{i}]` must be in [1, {MAX_WIDTH}], got {width}")
    _require(d.set in DATA_SETS, w, f"`data.set` must be one of {DATA_SETS}, got {d.set!r}")
    _require(0.05 <= d.test_fraction <= 0.5, w, f"`data.test_fraction` must be in [0.05, 0.5], got {d.test_fraction}")
    _require(0 < d.scale <= 1e4, w, f"`data.scale` must be in (0, 10000], got {d.scale}")
    _require(1 <= d.features <= MAX_WIDTH, w, f"`data.features` must be in [1, {MAX_WIDTH}], got {d.features}")
    _require(2 <= d.classes <= 255, w, f"`data.classes` must be in [2, 255], got {d.classes}")
    _require(d.samples >= 4 * d.classes, w, f"`data.samples` must be at least 4 per class, got {d.samples}")
    _require(r.name in RULES, w, f"`rule.name` must be one of {RULES}, got {r.name!r}")
    _require(0 < r.learning_rate <= 1, w, f"`rule.learning_rate` must be in (0, 1], got {r.learning_rate}")
    _require(1 <= r.epochs <= 10000, w, f"`rule.epochs` must be in [1, 10000], got {r.epochs}")
    _require(0 < r.feedback_scale <= 1, w, f"`rule.feedback_scale` must be in (0, 1], got {r.feedback_scale}")
    _require(r.batch_size >= 1, w, f"`rule.batch_size` must be >= 1, got {r.batch_size}")
    _require(0 <= r.momentum < 1, w, f"`rule.momentum` must be in [0, 1), got {r.momentum}")
    _require(0 < r.lr_decay <= 1, w, f"`rule.lr_decay` must be in (0, 1], got {r.lr_decay}")
    for key, lo, hi in (("activation_frac", 0, 14), ("weight_frac", 0, 15), ("feedback_frac", 0, 15),
                        ("lr_frac", 8, 30)):
        value = getattr(f, key)
        _require(lo <= value <= hi, w, f"`format.{key}` must be in [{lo}, {hi}], got {value}")
    _require(1 <= f.update_shift <= 62, w,
             f"`format`: 2*activation_frac + lr_frac - weight_frac must be in [1, 62], got {f.update_shift}")


def check_fixed_point(spec: Spec, input_dim: int, data_max_abs: float) -> None:
    """Checks that need the data: can the formats hold the inputs, the initial weights, F and the
    learning rate, and can the device run the rule's hyper-parameters?"""
    w, f, r = spec.source, spec.format, spec.rule
    act_limit = 2.0 ** (15 - f.activation_frac)
    _require(data_max_abs < act_limit, w,
             f"`format.activation_frac` = {f.activation_frac} holds values in [-{act_limit:g}, {act_limit:g}), "
             f"but the data set `{spec.data.set}` reaches {data_max_abs:g}; use at most "
             f"{max(0, 14 - math.ceil(math.log2(max(data_max_abs, 1e-9))))}")
    widths = (input_dim, *spec.hidden)
    init_max = math.sqrt(6.0 / min(widths))
    w_limit = 2.0 ** (15 - f.weight_frac)
    _require(init_max < w_limit, w,
             f"`format.weight_frac` = {f.weight_frac} holds weights in [-{w_limit:g}, {w_limit:g}), but the "
             f"initial weights reach {init_max:.3g} (sqrt(6/fan_in)); lower weight_frac")
    bound = feedback_bound(spec, input_dim)
    _require(1 <= bound <= 32767, w,
             f"`format.feedback_frac` = {f.feedback_frac} gives F a bound of {bound} LSB; expected 1..32767 "
             f"(adjust feedback_frac or rule.feedback_scale)")
    lowest_lr = spec.lr_at_epoch(r.epochs)
    _require(spec.lr_q(lowest_lr) >= 1 and spec.lr_q(r.learning_rate) < 2**31, w,
             f"`rule.learning_rate` {r.learning_rate} (lowest {lowest_lr:g}) times 2**format.lr_frac must be "
             f"an integer in [1, 2**31); raise or lower format.lr_frac")
    _require(r.batch_size == 1, w,
             f"`rule.batch_size` = {r.batch_size}: the device learns online, one sample per step; expected 1")
    _require(r.momentum == 0, w,
             f"`rule.momentum` = {r.momentum}: the device keeps no momentum buffer; expected 0")


def feedback_bound(spec: Spec, input_dim: int) -> int:
    """PEPITA's F is uniform in [-bound, bound] LSB of Q(feedback_frac)."""
    a = spec.rule.feedback_scale * math.sqrt(6.0 / input_dim)
    return math.floor(a * (1 << spec.format.feedback_frac) + 0.5)
