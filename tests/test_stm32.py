"""The register-level STM32 ports (boards/stm32f4, boards/stm32l4): the F4 port verified bit-exact under QEMU's
netduinoplus2 (target qemu-stm32f4) over its USART; the Nucleo boards' images built offline, their vector tables
read back from the .bin; `onward flash` without a board or a probe says what it looked for; `onward report` against
the part's memories and clock."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from onward.cli import main
from onward.paths import EXAMPLES
from onward.protocol import Cmd, encode_frame
from onward.report import collect
from onward.session import prepare
from onward.spec import load_spec
from onward.targets.build import build_firmware, load_board
from onward.targets.device import Device
from onward.targets.link import PipeLink
from onward.targets.run import open_device

SPEC = EXAMPLES / "digits_pepita.toml"
# target: (flash origin, RAM origin + length = the initial stack pointer), from its linker script
PARTS = {"nucleo_f446re": (0x0800_0000, 0x2000_0000 + 128 * 1024),
         "nucleo_l476rg": (0x0800_0000, 0x2000_0000 + 96 * 1024),
         "qemu-stm32f4": (0x0800_0000, 0x2000_0000 + 128 * 1024)}


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stm32")


@pytest.mark.qemu
def test_verify_on_qemu_stm32f4_over_the_usart(build_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`onward verify examples/digits_pepita.toml --target qemu-stm32f4 --steps 1000`, over the UART: the F4 port's
    USART2 driver carries every frame (semihosting is the emulated boards' default; this is the real part's link)."""
    assert main(["verify", str(SPEC), "--target", "qemu-stm32f4", "--transport", "uart", "--steps", "1000",
                 "--build-dir", str(build_dir)]) == 0
    out = capsys.readouterr().out
    assert "1000 training steps" in out and "0 mismatches" in out and "over the UART" in out


@pytest.mark.parametrize("target", sorted(PARTS))
def test_images_start_where_the_part_boots(target: str, build_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`onward build` writes .elf, .bin and .hex; the .bin starts with the vector table: the initial stack pointer
    at the top of RAM, the reset vector a Thumb address (bit 0 set) of Reset_Handler inside the image, every other
    core exception vector either unused (0) or a Thumb address inside the image."""
    assert main(["build", str(SPEC), "--target", target, "--build-dir", str(build_dir)]) == 0
    elf = Path(capsys.readouterr().out.split()[0])
    bin_, hex_ = elf.with_suffix(".bin"), elf.with_suffix(".hex")
    flash, stack_top = PARTS[target]
    image = bin_.read_bytes()
    vectors = struct.unpack("<16I", image[:64])
    assert vectors[0] == stack_top
    with elf.open("rb") as f:
        symbols = ELFFile(f).get_section_by_name(".symtab")
        reset = symbols.get_symbol_by_name("Reset_Handler")[0]["st_value"]
    assert vectors[1] == reset | 1 and vectors[1] & 1
    assert flash < vectors[1] < flash + len(image)
    for vector in vectors[2:]:
        assert vector == 0 or (vector & 1 and flash < vector < flash + len(image))
    assert len(image) <= load_board(target).config["flash_bytes"]
    # the Intel HEX holds the same bytes at the flash address
    assert hex_.read_text().startswith(f":02000004{flash >> 16:04X}")
    back = build_dir / f"{target}-from-hex.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-I", "ihex", "-O", "binary", str(hex_), str(back)], check=True)
    assert back.read_bytes() == image


@pytest.mark.parametrize("board", ["nucleo_f446re", "nucleo_l476rg"])
def test_flash_without_a_board_names_what_it_looked_for(board: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", lambda *a, **k: [])
    assert main(["flash", str(SPEC), "--board", board, "--build-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert f"no {board} found" in err and "vendor 0483" in err and "ST-LINK" in err
    assert not any(tmp_path.iterdir())  # nothing built for a board that is not there


@pytest.mark.parametrize("programmer", ["openocd", "st-flash"])
def test_flash_without_a_probe_names_the_tool(programmer: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A serial port given, the firmware built offline, then no ST-LINK answers the (real, installed) tool: one
    line naming it, exit status 2."""
    assert main(["flash", str(SPEC), "--board", "nucleo_f446re", "--port", str(tmp_path / "ttyACM9"),
                 "--programmer", programmer, "--build-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "built" in captured.out
    assert captured.err.count("\n") == 1
    assert f"no ST-LINK probe answered {programmer}" in captured.err and "nucleo_f446re" in captured.err


def test_a_real_board_is_not_started(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(SPEC), "--target", "nucleo_f446re", "--build-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nucleo_f446re is a real board" in err and "--port" in err


def test_report_against_the_part(build_dir: Path) -> None:
    """The Nucleo's firmware is measured like an emulated board's: the same instructions as on qemu-m4 (the same
    core and flags), its flash and RAM against the part's, and the time at the port's clock (168 MHz)."""
    nucleo = collect(SPEC, "nucleo_f446re", build_dir)
    m4 = collect(SPEC, "qemu-m4", build_dir)
    assert nucleo["instructions_per_training_step"] == m4["instructions_per_training_step"]
    assert nucleo["instructions_per_inference"] == m4["instructions_per_inference"]
    assert (nucleo["part_flash_bytes"], nucleo["part_ram_bytes"]) == (512 * 1024, 128 * 1024)
    assert nucleo["clock_hz"] == 168_000_000 and m4["clock_hz"] is None
    assert nucleo["us_per_training_step"] == round(nucleo["instructions_per_training_step"] / 168, 1)
    assert nucleo["ram_with_stack_bytes"] < nucleo["part_ram_bytes"]


class DroppingLink:
    """A link that loses what is written while the firmware "boots" (the first `lost` writes, whole or but their
    last `keep` bytes), as QEMU's STM32 USART does before CR1.UE/RE are set."""

    def __init__(self, inner: PipeLink, lost: int, keep: int) -> None:
        self.inner, self.lost, self.keep = inner, lost, keep

    def write(self, data: bytes) -> None:
        if self.lost:
            self.lost -= 1
            if self.keep:
                self.inner.write(data[-self.keep:])
            return
        self.inner.write(data)

    def read_frame(self, timeout: float) -> bytes:
        return self.inner.read_frame(timeout)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize(("lost", "keep"), [(1, 0), (3, 0), (2, 4)])
def test_connect_says_hello_until_the_board_hears(lost: int, keep: int, build_dir: Path) -> None:
    """Device.connect: lost HELLOs are said again, a damaged one (its tail: an error frame) too, and the next
    command reads its own reply, not a stale one."""
    _, model = prepare(load_spec(SPEC))
    firmware = build_firmware(model, "native", build_dir)
    process = subprocess.Popen([str(firmware.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    device = Device(DroppingLink(PipeLink(process), lost, keep), timeout=5.0)
    try:
        assert device.connect().name.startswith("digits_pepita")
        assert device.request(Cmd.HELLO) == device.request(Cmd.HELLO)  # in step: each reply is its own
        device.link.write(encode_frame(Cmd.RESET))
        device.reply(Cmd.RESET)
    finally:
        device.close()


def test_open_device_on_qemu_stm32f4_connects_despite_the_boot(build_dir: Path) -> None:
    """Under QEMU the guest starts when the host connects and its USART drops what comes before the port enables
    it: connect() gets through every time (five starts)."""
    _, model = prepare(load_spec(SPEC))
    for _ in range(5):
        with open_device(model, "qemu-stm32f4", build_dir, transport="uart") as device:
            assert device.connect().name.startswith("digits_pepita")


@pytest.mark.qemu
def test_the_nucleo_image_itself_runs_under_qemu(build_dir: Path) -> None:
    """Not only the same sources: the very ELF `onward flash --board nucleo_f446re` would write runs on QEMU's
    STM32F405 and is bit-exact over its USART (HELLO names the board it was built for)."""
    from onward.session import run_on_target
    from onward.targets.build import Firmware
    from onward.targets.link import SerialLink
    from onward.targets.run import start_qemu

    data, model = prepare(load_spec(SPEC))
    nucleo = build_firmware(model, "nucleo_f446re", build_dir)
    process, link = start_qemu(Firmware(nucleo.path, load_board("qemu-stm32f4"), nucleo.generated))
    assert isinstance(link, SerialLink)
    url = str(link.port.port)
    link.close()  # QEMU listens again; run_on_target connects as to a board's serial port
    try:
        with open_device(model, "nucleo_f446re", build_dir, port=url) as device:
            assert device.connect().name == "digits_pepita@nucleo_f446re"
        run = run_on_target(model, data, "nucleo_f446re", build_dir, steps=300, port=url)
        assert run.train_steps == 300 and run.transport == "uart"
    finally:
        process.kill()
        process.wait()
        if process.stderr:
            process.stderr.close()
