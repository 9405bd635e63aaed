"""Resource figures read from the firmware itself: MEMPEPITA needs less activation RAM than PEPITA."""

from pathlib import Path

import pytest

from helpers import make_spec
from onward.codegen.c import static_ram
from onward.data import load_dataset
from onward.model import init_model
from onward.size import size_report
from onward.targets.build import OTHER_RAM, BuildError, build_firmware


def test_mempepita_needs_less_training_ram_than_pepita(tmp_path: Path) -> None:
    reports = {}
    for rule in ("pepita", "mempepita"):
        spec = make_spec(name=rule, rule={"name": rule}, model={"hidden": [128, 128, 128]},
                         data={"features": 64, "classes": 10})
        model = init_model(spec, load_dataset(spec))
        reports[rule] = size_report(build_firmware(model, "qemu-m4", tmp_path))
    pepita, mem = reports["pepita"], reports["mempepita"]
    # PEPITA keeps every layer's output (128*3 + 10) plus two modulated buffers; MEMPEPITA four buffers of
    # the widest layer and the modulated input: 2*(394 + 256 + 10) vs 2*(256 + 256 + 64 + 10) bytes
    assert pepita.training_activations == 2 * (394 + 2 * 128 + 10)
    assert mem.training_activations == 2 * (2 * 128 + 2 * 128 + 64 + 10)
    assert mem.sections[".bss"] < pepita.sections[".bss"]
    assert mem.sections[".bss"] - pepita.sections[".bss"] == mem.training_activations - pepita.training_activations
    assert pepita.flash > 2 * (64 * 128 + 2 * 128 * 128 + 128 * 10)  # the initial weights live in flash


def test_static_ram_estimate_equals_the_elf(tmp_path: Path) -> None:
    """codegen's buffer sizes (used to refuse models before building) are the ones the linker placed."""
    for rule in ("pepita", "mempepita"):
        spec = make_spec(name=f"e{rule}", rule={"name": rule}, model={"hidden": [13, 7]})
        model = init_model(spec, load_dataset(spec))
        report = size_report(build_firmware(model, "qemu-m4", tmp_path))
        estimate = static_ram(model)
        assert {k: report.symbols[k] for k in estimate} == estimate
        assert 0 <= report.ram - sum(estimate.values()) <= OTHER_RAM  # counters, SysTick wraps, alignment



def test_a_model_too_big_for_the_board_is_refused_before_building(tmp_path: Path) -> None:
    spec = make_spec(name="big", model={"hidden": [128, 128]}, data={"features": 64})
    model = init_model(spec, load_dataset(spec))
    with pytest.raises(BuildError) as exc:
        build_firmware(model, "qemu-m0", tmp_path)
    need = sum(static_ram(model, 1).values()) + OTHER_RAM + 2048  # the least it could take: a batch of 1
    msg = str(exc.value)
    assert f"big does not fit qemu-m0: it needs at least {need} B of RAM" in msg
    assert f"the board has 16384 B: over by {need - 16384} B" in msg
    assert not any(tmp_path.iterdir())  # nothing was generated or compiled
