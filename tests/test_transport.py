"""The emulated boards' fast channel (semihosting file I/O on two FIFOs) and TRAIN_BATCH over every link:
the same frames, bit-exact on every emulated core, and clear one-line errors when QEMU is gone."""

import dataclasses
from pathlib import Path

import pytest

from helpers import make_spec
from onward.cli import main
from onward.codegen.c import default_batch, static_ram
from onward.data import Dataset, load_dataset
from onward.model import InitialModel, init_model
from onward.protocol import ProtocolError
from onward.session import run_on_target
from onward.targets.build import OTHER_RAM, BuildError, build_firmware, check_fits, load_board
from onward.targets.device import Device
from onward.targets.link import SemihostLink
from onward.targets.run import start_qemu

EMULATED = ["qemu-m0", "qemu-m3", "qemu-m4", "qemu-m7", "qemu-rv32"]


def small_model(name: str = "tr") -> tuple[InitialModel, Dataset]:
    spec = make_spec(name=name, model={"hidden": [23, 9]}, data={"scale": 3.0},
                     rule={"learning_rate": 1.0}, format={"activation_frac": 13, "weight_frac": 12})
    data = load_dataset(spec)
    return init_model(spec, data), data


@pytest.mark.qemu
@pytest.mark.parametrize("target", EMULATED)
def test_semihost_channel_is_bit_exact_on_every_emulated_board(target: str, tmp_path_factory) -> None:
    model, data = small_model()
    build = Path(tmp_path_factory.getbasetemp()) / "transport"
    run = run_on_target(model, data, target, build, steps=200, transport="semihost")
    assert run.transport == "semihost" and run.train_steps == 200
    assert run.saturations > 0


@pytest.mark.qemu
def test_a_dead_qemu_is_one_clear_line(tmp_path: Path) -> None:
    model, _ = small_model()
    process, link = start_qemu(build_firmware(model, "qemu-m4", tmp_path, transport="semihost"))
    assert isinstance(link, SemihostLink)
    device = Device(link, timeout=5.0)
    try:
        assert device.hello().max_batch == default_batch(model)
        process.kill()
        with pytest.raises(ProtocolError) as exc:
            device.hello()
        assert str(exc.value).startswith("QEMU exited (status -9)") and "\n" not in str(exc.value)
    finally:
        device.close()
        process.wait()


@pytest.mark.qemu
@pytest.mark.parametrize("target", ["qemu-m4", "qemu-rv32"])
def test_semihost_firmware_without_semihosting_fails_clearly(target: str, tmp_path: Path) -> None:
    """The unserved BKPT / ebreak parks the firmware in its fault or trap handler: the host's timeout says so."""
    model, _ = small_model()
    firmware = build_firmware(model, target, tmp_path, transport="semihost")
    with pytest.raises(ProtocolError) as exc:
        start_qemu(firmware, semihosting=False, timeout=1.0)
    message = str(exc.value)
    assert "\n" not in message
    assert ("before the firmware opened its semihosting channel" in message
            or "did not open its semihosting channel within 1 s" in message)


def test_semihost_is_for_emulated_boards_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, _ = small_model()
    with pytest.raises(BuildError, match="target native has no semihosting"):
        build_firmware(model, "native", tmp_path, transport="semihost")
    spec = tmp_path / "s.toml"
    spec.write_text('name = "s"\n[data]\nset = "synthetic"\nfeatures = 4\nclasses = 2\nsamples = 40\n'
                    '[model]\nhidden = [4]\n[rule]\nname = "pepita"\n')
    assert main(["verify", str(spec), "--target", "native", "--transport", "semihost",
                 "--build-dir", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: target native has no semihosting channel") and err.count("\n") == 1
    assert main(["verify", str(spec), "--port", "socket://127.0.0.1:1", "--transport", "semihost"]) == 2
    assert "the serial port socket://127.0.0.1:1 has no semihosting channel" in capsys.readouterr().err


def test_a_board_short_of_ram_gets_a_smaller_batch() -> None:
    """Batching never refuses a model that single TRAIN fits: the batch shrinks to what the RAM holds."""
    spec = make_spec(name="tight", model={"hidden": [64, 40]}, data={"features": 48, "classes": 10})
    model = init_model(spec, load_dataset(spec))
    m0 = load_board("qemu-m0")
    need_1 = sum(static_ram(model, 1).values()) + m0.stack_bytes + OTHER_RAM
    room = m0.config["ram_bytes"] - need_1
    assert 0 < room < sum(static_ram(model).values()) - sum(static_ram(model, 1).values())  # the test's premise
    batch = check_fits(model, m0)
    assert 1 <= batch < default_batch(model)
    assert sum(static_ram(model, batch).values()) + m0.stack_bytes + OTHER_RAM <= m0.config["ram_bytes"]
    assert sum(static_ram(model, batch + 1).values()) + m0.stack_bytes + OTHER_RAM > m0.config["ram_bytes"]
    # exactly the room single TRAIN needs: a batch that costs no more bytes (a LOAD frame is longer than 2 samples)
    tighter = dataclasses.replace(m0, config={**m0.config, "ram_bytes": need_1})
    assert sum(static_ram(model, check_fits(model, tighter)).values()) + m0.stack_bytes + OTHER_RAM == need_1
    with pytest.raises(BuildError, match=f"needs at least {need_1} B of RAM"):
        check_fits(model, dataclasses.replace(m0, config={**m0.config, "ram_bytes": need_1 - 1}))
