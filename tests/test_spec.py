"""Spec validation: every bad spec gets an error that names the key and what was expected."""

from pathlib import Path

import pytest

from helpers import make_spec
from onward.data import load_dataset
from onward.model import init_model
from onward.paths import EXAMPLES
from onward.rules import rule_names
from onward.spec import SpecError, load_spec


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_examples_load(path: Path) -> None:
    spec = load_spec(path)
    init_model(spec, load_dataset(spec))


def error_of(**overrides: object) -> str:
    with pytest.raises(SpecError) as exc:
        spec = make_spec(**overrides)
        init_model(spec, load_dataset(spec))
    return str(exc.value)


def test_unknown_key() -> None:
    msg = error_of(rule={"learning_rat": 0.1})
    assert "unknown key `rule.learning_rat`" in msg and "learning_rate" in msg


def test_unknown_top_level_key() -> None:
    assert "unknown key `modle`" in error_of(modle={"hidden": [3]})


def test_wrong_type() -> None:
    assert "`rule.epochs` must be an integer, got '10'" in error_of(rule={"epochs": "10"})
    assert "`model.hidden` must be a list of integers, got 64" in error_of(model={"hidden": 64})


def test_zero_width() -> None:
    assert "`model.hidden[1]` must be in [1, 4096], got 0" in error_of(model={"hidden": [8, 0]})


def test_format_that_cannot_hold_the_data() -> None:
    # digits scaled by 4 reach 4.0; Q1.14 holds only [-2, 2)
    msg = error_of(data={"set": "digits", "scale": 4.0}, format={"activation_frac": 14, "weight_frac": 12})
    assert "`format.activation_frac` = 14 holds values in [-2, 2)" in msg
    assert "reaches 4" in msg and "use at most 12" in msg


def test_weights_that_do_not_fit() -> None:
    msg = error_of(model={"hidden": [1]}, format={"weight_frac": 15})
    assert "`format.weight_frac` = 15" in msg and "initial weights reach 2.45" in msg


def test_device_needs_online_learning() -> None:
    assert "`rule.batch_size` = 8" in error_of(rule={"batch_size": 8})
    assert "`rule.momentum` = 0.9" in error_of(rule={"momentum": 0.9})


def test_unknown_rule_and_bad_toml(tmp_path: Path) -> None:
    assert f"`rule.name` must be one of {rule_names()}, got 'bp'" in error_of(rule={"name": "bp"})
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(SpecError, match=r"bad\.toml: not valid TOML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec(tmp_path / "missing.toml")


def test_compressed_schedule() -> None:
    spec = load_spec(EXAMPLES / "digits_pepita.toml").with_epochs(10)
    assert spec.rule.epochs == 10 and spec.rule.lr_decay_epochs == (6, 9)
