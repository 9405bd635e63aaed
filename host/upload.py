"""Put a firmware built by `onward build` on a real board through its ST-LINK, without PlatformIO's registry:
OpenOCD (writes the ELF, verifies what it wrote, resets) or st-flash (writes firmware.bin at the board's flash
address, resets). Both are Debian packages (openocd, stlink-tools); the board's board.json names OpenOCD's
interface and target scripts and the flash address."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from onward.errors import OnwardError
from onward.targets.build import Board

PROGRAMMERS = ("openocd", "st-flash")
INSTALL = "Debian: apt-get install openocd stlink-tools"
# What each tool prints when no probe answers: turned into one line naming what was looked for.
NO_PROBE = {"openocd": ("open failed", "unable to find", "no device found"),
            "st-flash": ("couldn't find any st-link", "no st-link", "found 0 stlink")}


class UploadError(OnwardError, RuntimeError):
    """A one-line reason to stop (exit status 2)."""


def installed_programmers() -> list[str]:
    return [tool for tool in PROGRAMMERS if shutil.which(tool) is not None]


def is_real_board(board: Board) -> bool:
    """An onward target for a real part: a bare-metal build (a linker script) that no emulator runs."""
    return "linker_script" in board.config and "qemu" not in board.config


def upload_command(programmer: str, board: Board, elf: Path) -> list[str]:
    if programmer == "openocd":
        # `program` = init, halt, erase the sectors the image covers, write, verify (read back and compare), reset
        return ["openocd", *board.config["openocd"], "-c", f"program {elf} verify reset exit"]
    if programmer == "st-flash":
        return ["st-flash", "--reset", "write", str(elf.with_suffix(".bin")), str(board.config["flash_address"])]
    raise UploadError(f"unknown programmer {programmer!r}; expected one of: {', '.join(PROGRAMMERS)}")


def upload(programmer: str, board: Board, elf: Path, timeout: float = 120.0) -> None:
    """Flash `elf` (and its .bin) with `programmer`; UploadError with one line when no probe answers, or with the
    tool's last lines when it fails otherwise."""
    if shutil.which(programmer) is None:
        raise UploadError(f"`{programmer}` is not installed ({INSTALL})")
    cmd = upload_command(programmer, board, elf)
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UploadError(f"{' '.join(cmd)} did not finish within {timeout:g} s") from None
    if result.returncode == 0:
        return
    output = result.stdout + result.stderr
    if any(sign in output.lower() for sign in NO_PROBE[programmer]):
        scripts = f" ({' '.join(board.config['openocd'])})" if programmer == "openocd" else ""
        raise UploadError(f"no ST-LINK probe answered {programmer}{scripts}: is {board.name} plugged in over USB, "
                          "and may this user open it (the udev rules of stlink-tools)?")
    tail = "\n".join(output.strip().splitlines()[-15:])
    raise UploadError(f"{' '.join(cmd)} failed (exit status {result.returncode}):\n{tail}")
