"""Start a built firmware on its target and hand back a Device: a native process or a QEMU board."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from onward.model import InitialModel
from onward.protocol import ProtocolError
from onward.targets.build import Firmware, build_firmware
from onward.targets.device import Device
from onward.targets.link import Link, PipeLink, SerialLink


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_qemu(firmware: Firmware) -> tuple[subprocess.Popen[bytes], Link]:
    """QEMU holds the guest until a client connects to the UART's TCP port (wait=on): no byte is lost."""
    import serial

    emulator = firmware.board.config["qemu"][0]
    if shutil.which(emulator) is None:
        raise ProtocolError(f"target {firmware.board.name} needs `{emulator}`, which is not installed "
                            "(scripts/setup.sh installs it)")
    for _attempt in range(5):
        port = _free_port()
        cmd = [a.format(port=port, elf=firmware.path) for a in firmware.board.config["qemu"]]
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
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


@contextmanager
def open_device(
    model: InitialModel, target: str, build_dir: Path, timeout: float = 10.0, port: str | None = None
) -> Iterator[Device]:
    """Build and start the firmware for `target`, or, with `port`, talk to an already flashed board."""
    process: subprocess.Popen[bytes] | None = None
    if port is not None:
        import serial

        try:
            link: Link = SerialLink(port)
        except serial.SerialException as exc:
            raise ProtocolError(f"cannot open the serial port {port}: {exc}") from None
    else:
        firmware = build_firmware(model, target, build_dir)
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
