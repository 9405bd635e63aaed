"""The rule framework's contract (docs/rules.md): the registry is the package onward.rules; every rule's own
`[rule]` keys belong to it alone (another rule's key is an error naming it); the shared modules name no rule."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from helpers import make_spec
from onward.cli import main
from onward.paths import ROOT
from onward.rules import rule_id, rule_module, rule_names
from onward.spec import RuleOptions, RuleSpec, SpecError

COMMON_KEYS = {f.name for f in dataclasses.fields(RuleSpec)} - {"options"}


def own_keys(rule: str) -> set[str]:
    return {f.name for f in dataclasses.fields(rule_module(rule).Options)}


def test_the_registry_is_the_package() -> None:
    names = rule_names()
    folder = ROOT / "host" / "rules"
    on_disk = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    on_disk |= {p.parent.name for p in folder.glob("*/__init__.py")}
    assert set(names) == on_disk
    ids = [rule_id(n) for n in names]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and min(ids) >= 1
    for name in names:
        module = rule_module(name)
        assert issubclass(module.Options, RuleOptions)
        assert not own_keys(name) & COMMON_KEYS, f"{name}: an option shadows a common [rule] key"
        assert (ROOT / "firmware" / "src" / f"rule_{name}.c").exists() or name == "mempepita", name
        for attr in ("TASKS", "init_model", "Float", "Fixed", "forward_evals"):
            assert hasattr(module, attr), f"{name} lacks {attr}"


def foreign_pairs() -> list[tuple[str, str]]:
    """(rule, key): a key of another rule's options that this rule does not have."""
    pairs = []
    for rule in rule_names():
        for other in rule_names():
            pairs += [(rule, key) for key in sorted(own_keys(other) - own_keys(rule))]
    return sorted(set(pairs))


@pytest.mark.parametrize(("rule", "key"), foreign_pairs())
def test_another_rules_key_is_an_error_naming_it(rule: str, key: str) -> None:
    other = next(o for o in rule_names() if key in own_keys(o))
    value = getattr(rule_module(other).Options(), key)
    with pytest.raises(SpecError, match=re.escape(f"unknown key `rule.{key}` for rule `{rule}`")):
        make_spec(rule={"name": rule, key: value})


def test_every_rule_pair_is_covered() -> None:
    """Each rule meets the keys of every other rule that has its own (the parametrisation above is not empty)."""
    rules_with_keys = [r for r in rule_names() if own_keys(r)]
    covered = {rule for rule, _ in foreign_pairs()}
    assert len(rules_with_keys) >= 3 and covered == {r for r in rule_names()
                                                       if any(own_keys(o) - own_keys(r) for o in rule_names())}


def test_a_foreign_key_exits_two_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "foreign.toml"
    spec.write_text('name = "foreign"\n[model]\nhidden = [8]\n[rule]\nname = "pepita"\nthreshold = 2.0\n')
    assert main(["verify", str(spec), "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown key `rule.threshold` for rule `pepita`" in err
    assert "Traceback" not in err


def test_a_rules_own_values_are_checked_by_the_rule() -> None:
    with pytest.raises(SpecError, match=r"`rule.threshold` must be in \(0, 64\], got 0.0"):
        make_spec(rule={"name": "ff", "threshold": 0.0})
    with pytest.raises(SpecError, match=r"`rule.mode` must be one of"):
        make_spec(rule={"name": "fgrad", "mode": "sideways"})


SHARED = ["host/spec.py", "host/model.py", "host/verify.py", "host/reference.py", "host/session.py",
          "host/demo.py", "host/report.py", "codegen/c.py", "firmware/include/onward/runtime.h"]


@pytest.mark.parametrize("rule", rule_names())
def test_the_shared_modules_name_no_rule(rule: str) -> None:
    """`grep -il <rule>` over the shared modules finds nothing (`ff` as a word: it is in 'offset' and 'buffer')."""
    pattern = re.compile(rf"\b{rule}\b" if len(rule) <= 2 else rule, re.IGNORECASE)
    hits = [f"{path}:{n}" for path in SHARED
            for n, line in enumerate((ROOT / path).read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, f"{rule} named in shared code: {hits}"
