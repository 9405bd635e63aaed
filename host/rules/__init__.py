"""The registry of learning rules: the module that implements each rule named in a spec.

A rule module (the contract is docs/rules.md) provides TASKS, init_model(spec, data), a float reference
`Float` and a fixed-point reference `Fixed`, the bit-exact specification of its C file
(firmware/src/rule_<name>.c). Modules are imported when first used."""

from __future__ import annotations

import importlib
from types import ModuleType

from onward.spec import RULES

MODULES = {
    "pepita": "onward.rules.pepita",
    "mempepita": "onward.rules.mempepita",
    "ffzero": "onward.rules.ffzero.fixed",
    "ff": "onward.rules.ff",
    "fgrad": "onward.rules.fgrad",
}
assert tuple(MODULES) == RULES, "onward.spec.RULES and onward.rules.MODULES must name the same rules, in order"


def rule_module(name: str) -> ModuleType:
    return importlib.import_module(MODULES[name])


def rule_id(name: str) -> int:
    """ONW_RULE in model.h: 1-based, in the order of RULES (runtime.h's ONW_RULE_* agree)."""
    return RULES.index(name) + 1
