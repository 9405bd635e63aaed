"""`onward flash`: build a spec's firmware with PlatformIO (platformio.ini at the repository root), put it on
a board and check it bit for bit against the reference over the serial port.

Emulated boards (qemu-*) build offline through the local platform in boards/platformio/ and run under QEMU;
real boards (nucleo_l476rg, pico, ...) build through PlatformIO's official platforms, are uploaded with
`pio run -t upload`, and are then verified over their serial port. PlatformIO's folders (core, packages,
platforms, builds, libraries) and the generated model all live under `<build_dir>/pio/`."""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from onward.codegen.c import GeneratedC, generate_c
from onward.errors import OnwardError
from onward.paths import BOARDS, ROOT
from onward.spec import load_spec
from onward.targets.build import TARGETS, Board, Firmware, check_fits, load_board
from onward.targets.link import SerialLink
from onward.upload import INSTALL, PROGRAMMERS, installed_programmers, is_real_board, upload

if TYPE_CHECKING:
    from onward.session import TargetRun

PIO_PROJECT = ROOT / "platformio.ini"
NO_BOARD = "no board found on a serial port; connect one or pass --port"


class FlashError(OnwardError, RuntimeError):
    """A one-line reason to stop (exit status 2)."""


def pio_folder(build_dir: Path) -> Path:
    return Path(build_dir).resolve() / "pio"


def model_dir(build_dir: Path) -> Path:
    """Where the generated model.h/model.c go: platformio.ini's src_dir (build/pio/model by default)."""
    return pio_folder(build_dir) / "model"


def firmware_elf(build_dir: Path, env: str) -> Path:
    return pio_folder(build_dir) / "build" / env / "firmware.elf"


def pio_environments() -> list[str]:
    """The [env:NAME] sections of platformio.ini, in file order."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(PIO_PROJECT, encoding="utf8")
    return [s[4:] for s in parser.sections() if s.startswith("env:")]


def is_emulated(env: str) -> bool:
    """An environment named after an onward target that QEMU runs (board.json has a `qemu` command)."""
    return env in TARGETS and "qemu" in load_board(env).config


def _offline_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("onward_pio_offline", BOARDS / "platformio" / "offline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare_offline_pio(build_dir: Path) -> Path:
    """Seed <build_dir>/pio/packages with tool-scons (from the PyPI `scons` package) and wrappers of the
    system cross compilers, so that `pio run` for the emulated boards downloads nothing. The local platform
    does the same on every build; doing it here first turns a missing `scons` into a clear message."""
    packages = pio_folder(build_dir) / "packages"
    offline = _offline_module()
    try:
        offline.seed(str(packages))
    except offline.SeedError as exc:
        raise FlashError(str(exc)) from None
    return packages


def pio_environ(build_dir: Path) -> dict[str, str]:
    """The environment for `pio`: every PlatformIO folder under <build_dir>/pio, no telemetry, no upgrade check."""
    folder = pio_folder(build_dir)
    return {
        **os.environ,
        "PLATFORMIO_CORE_DIR": str(folder / "core"),
        "PLATFORMIO_WORKSPACE_DIR": str(folder),
        "PLATFORMIO_PACKAGES_DIR": str(folder / "packages"),
        "PLATFORMIO_PLATFORMS_DIR": str(folder / "platforms"),
        "PLATFORMIO_SRC_DIR": str(model_dir(build_dir)),
        "PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No",
        "PLATFORMIO_DISABLE_UPGRADE_CHECK": "true",
        "PLATFORMIO_NO_ANSI": "true",
    }


def pio_command() -> list[str]:
    """PlatformIO in this Python when it is installed here (it then finds the `scons` package), else `pio`."""
    if importlib.util.find_spec("platformio") is not None:
        return [sys.executable, "-m", "platformio"]
    found = shutil.which("pio") or shutil.which("platformio")
    if found is None:
        raise FlashError("PlatformIO is not installed: pip install platformio scons (or pip install -e \".[test]\")")
    return [found]


def run_pio(args: list[str], build_dir: Path, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*pio_command(), *args], cwd=ROOT, env=pio_environ(build_dir), capture_output=True,
                          text=True, timeout=timeout)


def _pio_failed(what: str, result: subprocess.CompletedProcess[str]) -> FlashError:
    output = result.stdout + result.stderr
    lines = [line for line in output.strip().splitlines() if line.strip("*") and not line.startswith("- ")
             and "If you like PlatformIO" not in line]  # less PlatformIO's first-run banner
    hint = ""
    if "HTTPClientError" in output or "InternetConnectionError" in output:
        hint = ("\nPlatformIO could not reach its registry: the real boards' platforms and toolchains download "
                "on their first build (the emulated qemu-* boards build offline)")
    return FlashError(f"{what} failed (pio exit status {result.returncode}):\n" + "\n".join(lines[-40:]) + hint)


def write_model(gen: GeneratedC, folder: Path) -> None:
    """model.h and model.c, rewritten only when they change (PlatformIO then rebuilds nothing)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("model.h", gen.header), ("model.c", gen.source)):
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def pio_build(env: str, gen: GeneratedC, build_dir: Path) -> Path:
    """Generate the model into the PlatformIO src_dir and `pio run -e env`; returns the ELF."""
    write_model(gen, model_dir(build_dir))
    prepare_offline_pio(build_dir)
    result = run_pio(["run", "-e", env], build_dir)
    if result.returncode != 0:
        raise _pio_failed(f"pio run -e {env}", result)
    elf = firmware_elf(build_dir, env)
    if not elf.exists():
        raise FlashError(f"pio run -e {env} succeeded but wrote no {elf}")
    return elf


ST_VENDOR_ID = 0x0483  # STMicroelectronics: every ST-LINK's virtual COM port (V2-1 374B, V3 374E/374F/3753)


def find_serial_port(vendor: int | None = None, board: str = "") -> str:
    """The one USB serial port present (of USB vendor `vendor`, if given); FlashError naming what was looked for
    when there is none, or more than one."""
    from serial.tools import list_ports

    ports = sorted(p.device for p in list_ports.comports()
                   if p.vid is not None and (vendor is None or p.vid == vendor))
    if not ports and vendor is not None:
        raise FlashError(f"no {board} found: no USB serial port of vendor {vendor:04x} (the ST-LINK's virtual COM "
                         "port, /dev/ttyACM*) is present; connect the board over USB or pass --port")
    if not ports:
        raise FlashError(NO_BOARD)
    if len(ports) > 1:
        raise FlashError(f"several serial ports found ({', '.join(ports)}); pass --port to pick the board")
    return ports[0]


def _wait_for_port(port: str, seconds: float = 10.0) -> None:
    """After an upload, USB boards re-enumerate: wait for the device node, then for the firmware to boot."""
    deadline = time.monotonic() + seconds
    while port.startswith("/dev/") and not os.path.exists(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)


def _report(spec_name: str, where: str, run: TargetRun) -> int:
    print(f"{spec_name} on {where}: {run.train_steps} training steps and {run.inferences} inferences, every output "
          f"and state digest bit-exact (0 mismatches); {run.saturations} saturations on both; "
          f"{run.steps_per_second:.0f} steps/s")
    return 0


PROGRAMMER_CHOICES = ("auto", "pio", *PROGRAMMERS)


def flash(spec_path: Path, board: str, port: str | None, build_dir: Path, steps: int,
          programmer: str = "auto") -> int:
    """Build `spec_path` for the PlatformIO environment `board`, flash it (real boards) or start it under
    QEMU (qemu-*), and verify `steps` training steps bit for bit: 0 when bit-exact; Mismatch or another
    OnwardError otherwise (the CLI maps them to exit statuses 1 and 2). A board with an onward bare-metal port
    (nucleo_f446re, nucleo_l476rg) is built by `onward build` and flashed with OpenOCD or st-flash, or by
    PlatformIO when its platform is installed (programmer "auto") or asked for ("pio")."""
    if programmer not in PROGRAMMER_CHOICES:
        raise FlashError(f"unknown programmer {programmer!r}; expected one of: {', '.join(PROGRAMMER_CHOICES)}")
    try:
        if board in TARGETS and is_real_board(load_board(board)):
            chosen = pick_programmer(board, build_dir, programmer)
            if chosen != "pio":
                return _flash_bare_metal(Path(spec_path), load_board(board), port, Path(build_dir), steps, chosen)
        return _flash(Path(spec_path), board, port, Path(build_dir), steps)
    except subprocess.TimeoutExpired as exc:
        raise FlashError(f"{' '.join(map(str, exc.cmd))} did not finish within {exc.timeout:g} s") from None


def pick_programmer(board: str, build_dir: Path, programmer: str) -> str:
    """"auto": PlatformIO when its platform for the board is installed (it came from the registry once), else the
    first of OpenOCD and st-flash that is installed."""
    if programmer != "auto":
        return programmer
    if (pio_folder(build_dir) / "platforms" / "ststm32").is_dir():
        return "pio"
    tools = installed_programmers()
    if not tools:
        raise FlashError(f"no way to flash {board}: PlatformIO's ststm32 platform is not installed (it downloads "
                         f"from PlatformIO's registry: --programmer pio), nor OpenOCD or st-flash ({INSTALL})")
    return tools[0]


def _flash_bare_metal(spec_path: Path, board: Board, port: str | None, build_dir: Path, steps: int,
                      programmer: str) -> int:
    """Offline: the Debian cross compiler builds (onward build), OpenOCD or st-flash writes, the UART verifies."""
    from onward.session import prepare, run_on_target
    from onward.targets.build import build_firmware

    spec = load_spec(spec_path)
    data, model = prepare(spec)
    if port is None:
        port = find_serial_port(ST_VENDOR_ID, board.name)  # before building: no board, no point
    start = time.perf_counter()
    firmware = build_firmware(model, board.name, build_dir)
    print(f"built {firmware.path} ({time.perf_counter() - start:.1f} s)")
    upload(programmer, board, firmware.path)
    print(f"flashed {board.name} with {programmer}")
    _wait_for_port(port)
    run = run_on_target(model, data, target=board.name, build_dir=build_dir, steps=steps, progress=True, port=port)
    return _report(spec.name, f"{board.name} ({port})", run)


def _flash(spec_path: Path, board: str, port: str | None, build_dir: Path, steps: int) -> int:
    from onward.session import prepare, run_on_target
    from onward.targets.run import start_qemu

    if not PIO_PROJECT.exists():
        raise FlashError(f"{PIO_PROJECT} is missing: `onward flash` runs from a clone of the repository")
    envs = pio_environments()
    if board not in envs:
        raise FlashError(f"unknown board {board!r}; expected one of: {', '.join(envs)} (platformio.ini)")
    spec = load_spec(spec_path)
    data, model = prepare(spec)
    emulated = is_emulated(board)
    # an emulated board short of RAM gets a smaller TRAIN_BATCH (check_fits); a real board the default
    gen = generate_c(model, check_fits(model, load_board(board)) if emulated else None)
    if not emulated and port is None:
        port = find_serial_port()  # before building: no board, no point (and no traceback)

    start = time.perf_counter()
    elf = pio_build(board, gen, build_dir)
    print(f"built {elf} with PlatformIO ({time.perf_counter() - start:.1f} s)")

    if emulated:
        process, link = start_qemu(Firmware(elf, load_board(board), gen))
        assert isinstance(link, SerialLink)
        url = str(link.port.port)  # socket://127.0.0.1:PORT, QEMU's UART
        link.close()  # QEMU listens again: run_on_target connects as to any board's serial port
        try:
            run = run_on_target(model, data, target=board, build_dir=build_dir, steps=steps, progress=True,
                                port=url)
        finally:
            process.kill()
            process.wait()
            if process.stderr:
                process.stderr.close()
        return _report(spec.name, f"{board} (PlatformIO build, under QEMU)", run)

    assert port is not None
    result = run_pio(["run", "-e", board, "-t", "upload", "--upload-port", port], build_dir)
    if result.returncode != 0:
        raise _pio_failed(f"pio run -e {board} -t upload --upload-port {port}", result)
    print(f"flashed {board} on {port}")
    _wait_for_port(port)
    run = run_on_target(model, data, target=board, build_dir=build_dir, steps=steps, progress=True, port=port)
    return _report(spec.name, f"{board} ({port})", run)
