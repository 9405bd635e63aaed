"""A sweep file, read and expanded into runs: one run is one spec (a base spec with overrides), one kind of
training and one target. Every run has an id that changes with its spec, its kind, its target, what it records,
and the code (code_version), so a rerun can skip what is already measured.

    # examples/sweeps/NAME.toml
    output = "results.parquet"            # optional, relative to this file; default build/sweeps/<file stem>.parquet
    base = "../digits_pepita.toml"        # optional default for every run (paths relative to this file)
    targets = ["float", "qemu-m4"]        # optional default: float, fixed, native, qemu-* ...
    record = ["curve", "report"]          # optional extras (every run records its score and forward evaluations)

    [grid]                                # optional: the cartesian product, applied to every run
    seed = [1, 2, 3]
    "rule.learning_rate" = [0.1, 0.03]

    [[run]]                               # optional: runs listed one by one (none: one run of `base`)
    name = "pepita-digits"                # the row's name in tables (default: the base spec's name)
    base = "../digits_pepita.toml"
    kind = "rule"                         # or a host-only baseline: backprop, last_layer, bp_dd, fgrad_projection
    targets = ["float", "qemu-m4"]
    set = { "rule.learning_rate" = 0.01 } # spec keys, dotted: section.key, or seed / name
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onward.errors import OnwardError
from onward.paths import ROOT
from onward.spec import Spec, parse_spec, read_toml
from onward.targets.build import TARGETS

HOST_TARGETS = ("float", "fixed")
KINDS = ("rule", "backprop", "last_layer", "bp_dd", "fgrad_projection")
HOST_ONLY_KINDS = KINDS[1:]  # baselines and float-only variants: target float only
RECORD = ("curve", "report")  # curve: score after every epoch (float, fixed); report: onward report's figures (device)
_TOP = {"output", "base", "targets", "record", "grid", "run"}
_RUN = {"name", "base", "kind", "targets", "set"}


class SweepError(OnwardError, ValueError):
    """A sweep file that cannot be run: one line naming the key (exit status 2)."""


@dataclass(frozen=True)
class Run:
    """One task of a sweep: what the worker needs, nothing it must look up elsewhere."""

    name: str
    kind: str
    target: str
    spec: dict[str, Any]  # the parsed TOML of the spec, overrides applied (a worker re-parses it)
    source: str  # where the spec came from, for messages
    settings: dict[str, Any] = field(default_factory=dict)  # the grid point and `set` keys, for the table
    record: tuple[str, ...] = ()
    code: str = ""  # code_version() of the driver

    @property
    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.spec, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def run_key(self) -> str:
        """What the run measures, whatever the code: the table shows the latest result of each."""
        key = json.dumps([self.spec_hash, self.kind, self.target, sorted(self.record)])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    @property
    def run_id(self) -> str:
        """run_key with the code version: a rerun skips the runs whose run_id has a successful row."""
        return hashlib.sha256(f"{self.run_key} {self.code}".encode()).hexdigest()[:16]

    def parse(self) -> Spec:
        return parse_spec(self.spec, self.source)


@dataclass(frozen=True)
class Sweep:
    path: Path
    output: Path
    runs: list[Run]


def code_version() -> str:
    """A hash of every source file that can change a result: the package, the code generator, the firmware and the
    boards (not the docs, tests or benchmarks). Works in any checkout or install, git or not."""
    digest = hashlib.sha256()
    for folder in ("host", "codegen", "firmware", "boards"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".c", ".h", ".S", ".ld", ".json"}:
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _set_key(raw: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    """raw["rule"]["learning_rate"] = value for "rule.learning_rate"; top-level keys (seed, name) undotted."""
    parts = dotted.split(".")
    if len(parts) > 2 or not all(parts):
        raise SweepError(f"{where}: key `{dotted}` must be `section.key` or a top-level key such as `seed`")
    if len(parts) == 1:
        raw[dotted] = value
        return
    section = raw.setdefault(parts[0], {})
    if not isinstance(section, dict):
        raise SweepError(f"{where}: `{parts[0]}` is not a section of the spec")
    section[parts[1]] = value


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SweepError(f"{where}: expected a list of strings, got {value!r}")
    return value


def load_sweep(path: Path, output: Path | None = None) -> Sweep:
    """Read a sweep file and expand it into runs, every spec parsed once here so that a bad key stops the sweep
    before anything is submitted."""
    path = Path(path)
    raw = read_toml(path, "the sweep file", SweepError)
    for key in raw:
        if key not in _TOP:
            raise SweepError(f"{path}: unknown key `{key}`; expected one of: {', '.join(sorted(_TOP))}")
    if "output" in raw and not isinstance(raw["output"], str):
        raise SweepError(f"{path}: `output` must be a file name (a string), got {raw['output']!r}")
    record = tuple(_strings(raw.get("record", []), f"{path}: `record`"))
    for item in record:
        if item not in RECORD:
            raise SweepError(f"{path}: `record` item {item!r}; expected some of: {', '.join(RECORD)}")
    grid = raw.get("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise SweepError(f"{path}: `grid` must map spec keys to non-empty lists of values")
    runs_raw = raw.get("run", [{}])
    if not isinstance(runs_raw, list) or not all(isinstance(r, dict) for r in runs_raw):
        raise SweepError(f"{path}: `run` must be an array of tables ([[run]])")
    code = code_version()
    runs: list[Run] = []
    for i, entry in enumerate(runs_raw):
        where = f"{path}: run {i + 1}"
        for key in entry:
            if key not in _RUN:
                raise SweepError(f"{where}: unknown key `{key}`; expected one of: {', '.join(sorted(_RUN))}")
        base = entry.get("base", raw.get("base"))
        if not isinstance(base, str):
            raise SweepError(f"{where}: no `base` spec (give it in the run or at the top of the file)")
        base_path = (path.parent / base).resolve()
        base_raw = read_toml(base_path, f"the `base` spec of {where}", SweepError)
        kind = entry.get("kind", "rule")
        if kind not in KINDS:
            raise SweepError(f"{where}: `kind` {kind!r}; expected one of: {', '.join(KINDS)}")
        default_targets = ["float"] if kind in HOST_ONLY_KINDS else raw.get("targets", ["float", "fixed"])
        targets = _strings(entry.get("targets", default_targets), f"{where}: `targets`")
        for target in targets:
            allowed = ("float",) if kind in HOST_ONLY_KINDS else (*HOST_TARGETS, *TARGETS)
            if target not in allowed:
                raise SweepError(f"{where}: target {target!r}; expected one of: {', '.join(allowed)}")
        sets = entry.get("set", {})
        if not isinstance(sets, dict):
            raise SweepError(f"{where}: `set` must be a table of spec keys")
        name = entry.get("name", base_raw.get("name", base_path.stem))
        for point in itertools.product(*grid.values()):
            settings = {**dict(zip(grid, point, strict=True)), **sets}
            spec_raw = json.loads(json.dumps(base_raw))  # a deep copy
            for key, value in settings.items():
                _set_key(spec_raw, key, value, where)
            spec_raw["name"] = str(name).replace("-", "_")
            source = f"{base_path.name} + {settings}" if settings else base_path.name
            parse_spec(spec_raw, f"{where} ({source})")  # a bad key stops here, named, before anything runs
            for target in targets:
                runs.append(Run(str(name), kind, target, spec_raw, source, settings, record, code))
    default_output = Path("build") / "sweeps" / f"{path.stem}.parquet"  # beside the builds, like --build-dir
    out = output or (path.parent / raw["output"] if "output" in raw else default_output)
    return Sweep(path, Path(os.path.normpath(out)), runs)
