"""Start a built firmware on its target and hand back a Device: a native process or a QEMU board."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from onward.model import InitialModel
from onward.protocol import ProtocolError
from onward.targets.build import TRANSPORTS, BuildError, Firmware, build_firmware, load_board
from onward.targets.device import Device
from onward.targets.link import Link, PipeLink, SemihostLink, SerialLink

SEMIHOSTING = ["-semihosting-config", "enable=on,target=native"]
FLASH_FILE, CUT_FILE = "onward.flash", "onward.cut"  # in QEMU's folder: boards/semihost/flash_semihost.c
# for reports, "... over the UART"; pipe: the native target's stdin/stdout
TRANSPORT_NAMES = {"uart": "the UART", "semihost": "semihosting", "pipe": "stdin/stdout"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_qemu(
    firmware: Firmware, semihosting: bool = True, timeout: float = 10.0, flash: Path | None = None, cut: int = 0,
    cut_seed: int = 1,
) -> tuple[subprocess.Popen[bytes], Link]:
    """Run the firmware under QEMU and connect to it: over the UART (a TCP port; QEMU holds the guest until a
    client connects, wait=on: no byte is lost) or, for a firmware built for it, the semihosting channel.
    semihosting=False leaves QEMU's semihosting off: only to check what a wrong start does. timeout: how long the
    firmware may take to open its channel. A [persist] firmware's flash is the file `flash` (none: a fresh part
    that dies with QEMU), with a power cut at its cut-th erase or program (boards/semihost/flash_semihost.c)."""
    import serial

    emulator = firmware.board.config["qemu"][0]
    if shutil.which(emulator) is None:
        raise ProtocolError(f"target {firmware.board.name} needs `{emulator}`, which is not installed "
                            "(scripts/setup.sh installs it)")
    if firmware.transport == "semihost":
        return _start_semihost(firmware, semihosting, timeout, flash, cut, cut_seed)
    if firmware.persist:  # its flash driver would trap into a semihosting that the UART run does not serve
        raise ProtocolError(f"{firmware.board.name}: a [persist] firmware on an emulated board keeps its flash in a "
                            f"file reached by semihosting; run it over the semihost transport (the default), not "
                            f"the UART")
    for _attempt in range(5):
        port = _free_port()
        cmd = [a.format(port=port, elf=firmware.path) for a in firmware.board.config["qemu"]]
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            try:
                return process, SerialLink(f"socket://127.0.0.1:{port}")
            except serial.SerialException:
                time.sleep(0.01)
        process.kill()
        stderr = process.communicate()[1].decode(errors="replace")
        if "Address already in use" not in stderr:  # another process took the port: try another one
            raise ProtocolError(f"QEMU did not start: {' '.join(cmd)}\n{stderr}")
    raise ProtocolError("QEMU could not get a free TCP port for its UART")


def _start_semihost(firmware: Firmware, semihosting: bool, timeout: float, flash: Path | None = None, cut: int = 0,
                    cut_seed: int = 1) -> tuple[subprocess.Popen[bytes], Link]:
    """QEMU in a temporary folder holding the two FIFOs of the channel, and the flash file's link and the power
    cut's file when there are; the UART goes nowhere."""
    # nobody connects to the UART: a TCP server with wait=on would hold the guest forever
    args = ["null" if "{port}" in a else a for a in firmware.board.config["qemu"]]
    cmd = [a.format(elf=firmware.path) for a in args] + (SEMIHOSTING if semihosting else [])
    folder = Path(tempfile.mkdtemp(prefix="onward-semihost-"))
    SemihostLink.create(folder)
    if flash is not None:
        (folder / FLASH_FILE).symlink_to(Path(flash).resolve())
    if cut:
        (folder / CUT_FILE).write_text(f"{cut} {cut_seed}\n")
    process = subprocess.Popen(cmd, cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    link = SemihostLink(folder, process)
    try:
        link.connect(timeout)
    except BaseException:
        process.kill()
        link.close()
        process.wait()
        raise
    return process, link


def resolve_transport(target: str, transport: str, port: str | None = None) -> str:
    """"auto" is the semihosting channel on an emulated board and the UART (or native pipes) elsewhere;
    "semihost" exists only on the emulated boards, started here (not through --port)."""
    if transport not in ("auto", *TRANSPORTS):
        raise BuildError(f"unknown transport {transport!r}; expected one of: auto, {', '.join(TRANSPORTS)}")
    emulated = port is None and "qemu" in load_board(target).config
    if transport == "auto":
        return "semihost" if emulated else "uart"
    if transport == "semihost" and not emulated:
        where = f"the serial port {port}" if port is not None else f"target {target}"
        raise BuildError(f"{where} has no semihosting channel: only an emulated qemu-* board started by onward "
                         "has one (use --transport uart)")
    return transport


@contextmanager
def open_device(
    model: InitialModel, target: str, build_dir: Path, timeout: float = 10.0, port: str | None = None,
    transport: str = "uart",
) -> Iterator[Device]:
    """Build and start the firmware for `target`, or, with `port`, talk to an already flashed board.
    transport: "uart" (every board), "semihost" (emulated boards: the fast channel), or "auto" (semihost on
    an emulated board, else the UART or the native process's pipes)."""
    process: subprocess.Popen[bytes] | None = None
    transport = resolve_transport(target, transport, port)
    if port is not None:
        import serial

        try:
            link: Link = SerialLink(port)
        except serial.SerialException as exc:
            raise ProtocolError(f"cannot open the serial port {port}: {exc}") from None
    else:
        board = load_board(target)
        if "linker_script" in board.config and "qemu" not in board.config:
            raise BuildError(f"target {target} is a real board, which onward cannot start: flash it first "
                             f"(onward flash SPEC --board {target}), then pass its serial port with --port")
        if "micropython" in board.config:  # the generated module on the MicroPython unix port
            from onward.targets.micropython import start_micropython, write_micropython

            process = start_micropython(board, write_micropython(model, build_dir)[0])
            link = PipeLink(process)
        else:
            firmware = build_firmware(model, target, build_dir, transport=transport)
            if "qemu" in firmware.board.config:
                process, link = start_qemu(firmware)
            else:  # a host executable speaking the protocol on stdin/stdout
                process = subprocess.Popen([str(firmware.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                link = PipeLink(process)
    device = Device(link, timeout)
    try:
        yield device
    finally:
        device.close()
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.wait()
            if process.stderr:
                process.stderr.close()


@contextmanager
def power_on(firmware: Firmware, flash: Path, cut: int = 0, cut_seed: int = 1, timeout: float = 10.0,
             ) -> Iterator[Device]:
    """Power a [persist] firmware on with its flash kept in the file `flash` (native: ONWARD_FLASH; an emulated
    board: the semihosting file) and, with cut = n, the power failing inside its n-th flash erase or program (how
    far in: cut_seed); HELLO answered. Leaving the block is the power going off: the process is killed."""
    process: subprocess.Popen[bytes] | None = None
    if "qemu" in firmware.board.config:
        process, link = start_qemu(firmware, timeout=timeout, flash=flash, cut=cut, cut_seed=cut_seed)
    else:
        env = {**os.environ, "ONWARD_FLASH": str(flash), "ONWARD_FLASH_CUT": str(cut),
               "ONWARD_FLASH_CUT_SEED": str(cut_seed)}
        process = subprocess.Popen([str(firmware.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        link = PipeLink(process)
    device = Device(link, timeout)
    try:
        device.connect()
        yield device
    finally:
        device.close()
        if process.poll() is None:
            process.kill()
        process.wait()
