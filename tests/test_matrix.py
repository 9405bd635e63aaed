"""Every target x every rule, bit-exact: the same small model learns the same bits on every core, over the
UART of every emulated board (PEPITA) and over its semihosting channel (the other rules)."""

from pathlib import Path

import pytest

from helpers import make_spec
from onward.codegen.micropython import RULES as MICROPYTHON_RULES
from onward.data import load_dataset
from onward.model import init_model
from onward.rules import rule_module, rule_names
from onward.session import run_on_target
from onward.targets.build import TARGETS

EXPECTED_TARGETS = {"native", "qemu-m0", "qemu-m3", "qemu-m4", "qemu-m7", "qemu-rv32", "qemu-stm32f4"}


def test_every_target_is_there() -> None:
    assert set(TARGETS) >= EXPECTED_TARGETS


# Per rule: what makes saturation happen in a small model (FFzero: every stage, K = 2, ReLU; fgrad: both modes).
# Every registered rule runs; one without an entry here with a learning rate of 1.
RULE_KEYS = {
    **{name: {"learning_rate": 1.0} for name in rule_names()},
    "ffzero": {"learning_rate": 0.3, "directions": 2, "activation": "relu"},
    "fgrad-activity": {"learning_rate": 1.0}, "fgrad-weight": {"learning_rate": 0.1, "mode": "weight"},
}
RULE_KEYS.pop("fgrad")
# Per rule: the spec's other tables where they differ (the photonic controller: no hidden layers, its chip instead,
# a 17-mode chip with every flaw of the `typical` preset and drift).
SPEC_KEYS: dict[str, dict] = {"photonic": {"model": {"hidden": []},
                                           "photonic": {"preset": "typical", "drift": 0.01, "adc_bits": 12}}}


@pytest.mark.parametrize("rule", sorted(RULE_KEYS))
@pytest.mark.parametrize("target", sorted(EXPECTED_TARGETS))
def test_bit_exact(target: str, rule: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    # two hidden layers, odd widths (unaligned rows), a learning rate and formats that make saturation happen
    keys = {"name": rule.split("-")[0], **RULE_KEYS[rule]}
    spec = make_spec(name=f"m_{rule.replace('-', '_')}", rule=keys, data={"scale": 3.0},
                     **{"model": {"hidden": [23, 9]}, **SPEC_KEYS.get(rule, {})},
                     format={"activation_frac": 13, "weight_frac": 12})
    data = load_dataset(spec)
    build = Path(tmp_path_factory.getbasetemp()) / "matrix"
    # the UART (every board's real protocol link) with one rule, the emulated boards' semihosting with the rest
    transport = "uart" if rule == "pepita" else "auto"
    run = run_on_target(init_model(spec, data), data, target, build, steps=150, transport=transport)
    assert run.train_steps == 150
    assert run.transport == ("pipe" if target == "native" else "uart" if rule == "pepita" else "semihost")
    assert run.saturations > 0  # the saturating paths were exercised, and counted alike


@pytest.mark.parametrize("rule", sorted(r for r in RULE_KEYS if r.split("-")[0] in MICROPYTHON_RULES))
def test_bit_exact_on_micropython(rule: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The same saturating models on the MicroPython unix port, for the rules its runtime has."""
    keys = {"name": rule.split("-")[0], **RULE_KEYS[rule]}
    spec = make_spec(name=f"m_{rule.replace('-', '_')}", rule=keys, data={"scale": 3.0},
                     model={"hidden": [23, 9]}, format={"activation_frac": 13, "weight_frac": 12})
    data = load_dataset(spec)
    run = run_on_target(init_model(spec, data), data, "micropython",
                        Path(tmp_path_factory.getbasetemp()) / "matrix", steps=150)
    assert run.train_steps == 150 and run.transport == "pipe"
    assert run.saturations > 0


REGRESSION_RULES = sorted(n for n in rule_names() if "regression" in rule_module(n).TASKS)


@pytest.mark.parametrize("rule", REGRESSION_RULES)
@pytest.mark.parametrize("target", ["native", "qemu-m0", "qemu-m4", "qemu-rv32", "micropython"])
def test_regression_bit_exact(target: str, rule: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The rules that learn a regression (PEPITA's and MEMPEPITA's squared-error output, FFzero's cosine), on
    inputs scaled until the error and the modulated input saturate."""
    if target == "micropython" and rule not in MICROPYTHON_RULES:
        pytest.fail(f"{rule} learns regression but firmware/micropython/onward_rt.py has no step for it")
    spec = make_spec(name=f"r_{rule}", rule={"name": rule, "learning_rate": 0.5}, data={"set": "f2", "scale": 3.0,
                     "samples": 400}, model={"hidden": [11]}, format={"activation_frac": 13, "weight_frac": 12})
    data = load_dataset(spec)
    run = run_on_target(init_model(spec, data), data, target, Path(tmp_path_factory.getbasetemp()) / "matrix",
                        steps=150)
    assert run.train_steps == 150
    assert run.saturations > 0
