"""The learning rules: every module (or package) of this package is one, under the name a spec gives in
`rule.name`, with its firmware in firmware/src/rule_<name>.c (docs/rules.md: the contract, file by file).

A rule module provides RULE_ID (its firmware id, ONW_RULE in model.h: stable, unique), TASKS, Options (its own
`[rule]` keys, a dataclass subclassing onward.spec.RuleOptions), init_model(spec, data), a float reference `Float`
and a fixed-point reference `Fixed`, the bit-exact specification of its C. Nothing outside this package names a
rule: adding one is adding a module here, its C file, an example and its tests."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType


@cache
def rule_names() -> tuple[str, ...]:
    """Every rule, in the order of their firmware ids."""
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    ids = {name: int(importlib.import_module(f"{__name__}.{name}").RULE_ID) for name in names}
    clash = {i for i in ids.values() if list(ids.values()).count(i) > 1}
    if clash or min(ids.values(), default=1) < 1:
        raise RuntimeError(f"onward.rules: RULE_ID must be unique and >= 1; got {ids}")
    return tuple(sorted(names, key=ids.__getitem__))


def rule_module(name: str) -> ModuleType:
    if name not in rule_names():
        raise KeyError(f"no rule {name!r}; expected one of {rule_names()}")
    return importlib.import_module(f"{__name__}.{name}")


def rule_id(name: str) -> int:
    """ONW_RULE in model.h; model.h also defines ONW_RULE_<NAME> for every rule (codegen)."""
    return int(rule_module(name).RULE_ID)
