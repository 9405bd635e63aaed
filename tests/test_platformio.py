"""PlatformIO: every environment of platformio.ini parses; the emulated ones build offline from a clean
PlatformIO core (local platform, system cross compilers, tool-scons seeded from PyPI's scons) and the ELF
that PlatformIO builds is bit-exact with the reference under QEMU."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from onward import fixed
from onward import flash as flash_module
from onward.cli import main
from onward.codegen.c import generate_c
from onward.flash import firmware_elf, flash, is_emulated, pio_environments, run_pio, write_model
from onward.paths import BOARDS, EXAMPLES, FIRMWARE, FIRMWARE_SRC, ROOT
from onward.reference import make_fixed, training_stream
from onward.session import prepare
from onward.spec import load_spec
from onward.targets.device import Device
from onward.targets.link import PipeLink
from onward.verify import check_build, lockstep

SPEC = EXAMPLES / "digits_pepita.toml"
EMULATED = ["qemu-m0", "qemu-m3", "qemu-m4", "qemu-m7", "qemu-rv32", "qemu-stm32f4"]
BARE_METAL = ["nucleo_l476rg", "nucleo_f446re"]  # onward's own port, on PlatformIO's official platform
ARDUINO = ["pico", "nano33ble", "esp32dev"]
DEAD_PROXY = "http://127.0.0.1:9"  # any registry access fails at once instead of downloading


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, DEAD_PROXY)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_every_environment_parses(tmp_path: Path) -> None:
    result = run_pio(["project", "config", "--json-output"], tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    sections = dict(json.loads(result.stdout))
    envs = [name[4:] for name in sections if name.startswith("env:")]
    assert envs == pio_environments()
    assert set(envs) == set(EMULATED) | set(BARE_METAL) | set(ARDUINO)
    for env in EMULATED:
        assert is_emulated(env)
        assert (BOARDS / "platformio" / "boards" / f"{env}.json").exists()
    for env in BARE_METAL:  # framework-free: the same linker script and port as `onward build --target env`
        assert not is_emulated(env)
        options = dict(sections[f"env:{env}"])
        assert "framework" not in options
        assert options["platform"] == "ststm32" and options["board"] == env
        board = json.loads((BOARDS / env / "board.json").read_text())
        assert (BOARDS / env / board["linker_script"]).resolve() == (ROOT / options["board_build.ldscript"]).resolve()
        assert "post:boards/platformio/bare_metal.py" in options["extra_scripts"]
    for env in ARDUINO:
        assert not is_emulated(env)
        options = dict(sections[f"env:{env}"])
        assert options["framework"] == ["arduino"]
        assert any("boards/platformio/arduino" in dep for dep in options["lib_deps"])
        assert "ONW_NO_MAIN" in " ".join(options["build_flags"])


def test_runtime_is_a_platformio_library() -> None:
    manifest = json.loads((FIRMWARE / "library.json").read_text())
    assert manifest["name"] == "onward"
    assert (FIRMWARE / manifest["build"]["includeDir"] / "onward" / "runtime.h").exists()
    assert {p.name for p in (FIRMWARE / manifest["build"]["srcDir"]).glob("*.c")} == {
        p.name for p in FIRMWARE_SRC.glob("*.c")}


@pytest.mark.qemu
@pytest.mark.parametrize("env", EMULATED)
def test_emulated_board_builds_offline_and_is_bit_exact(env: str, tmp_path: Path, offline: None) -> None:
    assert not (tmp_path / "pio").exists()  # a clean PlatformIO core, packages and platforms folder
    assert flash(SPEC, env, None, tmp_path, steps=300) == 0
    assert firmware_elf(tmp_path, env).exists()
    assert (tmp_path / "pio" / "core").is_dir()
    assert json.loads((tmp_path / "pio" / "packages" / "tool-scons" / "package.json").read_text())["version"]


@pytest.mark.qemu
def test_a_missing_model_is_named(tmp_path: Path, offline: None) -> None:
    """Plain `pio run` (no onward flash before it): the local platform seeds its packages itself, and the
    missing model is reported with the command that writes it."""
    result = run_pio(["run", "-e", "qemu-m4"], tmp_path, timeout=300)
    assert result.returncode != 0
    assert "onward generate" in result.stderr + result.stdout
    assert "model.h and model.c missing" in result.stderr + result.stdout


def test_real_board_without_a_board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", lambda *a, **k: [])
    assert main(["flash", str(SPEC), "--board", "pico", "--build-dir", str(tmp_path), "--steps", "10"]) == 2
    assert "no board found on a serial port; connect one or pass --port" in capsys.readouterr().err
    assert not (tmp_path / "pio").exists()  # nothing was built for a board that is not there


def test_unknown_board(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flash", str(SPEC), "--board", "uno", "--build-dir", str(tmp_path), "--steps", "10"]) == 2
    assert "unknown board 'uno'; expected one of: qemu-m0" in capsys.readouterr().err


def test_missing_pio_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flash_module.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(flash_module.shutil, "which", lambda name: None)
    with pytest.raises(flash_module.FlashError, match="pip install platformio"):
        flash_module.pio_command()


ARDUINO_STUB = """\
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
struct StdioSerial {
    void begin(unsigned long) {}
    int read() { int c = getchar(); if (c < 0) exit(0); return c; }
    size_t write(uint8_t b) { return (size_t)putchar(b); }
    void flush() { fflush(stdout); }
    operator bool() { return true; }
};
extern StdioSerial Serial;
inline void yield(void) {}
inline unsigned long micros(void) { return 0; }
"""
ARDUINO_MAIN = """\
#include "Arduino.h"
StdioSerial Serial;
void setup();
void loop();
int main() { setup(); for (;;) loop(); }
"""


def test_arduino_port_on_a_stub_framework(tmp_path: Path) -> None:
    """boards/platformio/arduino/arduino_port.cpp, with the runtime built -D ONW_NO_MAIN, against a stub
    Arduino.h whose Serial is stdin/stdout: the Arduino envs' port and setup() speak the protocol bit-exact."""
    assert "ONW_NO_MAIN" in (FIRMWARE_SRC / "app.c").read_text()
    assert shutil.which("g++") is not None, "needs g++"
    data, model = prepare(load_spec(SPEC))
    gen = generate_c(model)
    write_model(gen, tmp_path)
    (tmp_path / "Arduino.h").write_text(ARDUINO_STUB)
    (tmp_path / "main.cpp").write_text(ARDUINO_MAIN)
    include = ["-I", str(FIRMWARE / "include"), "-I", str(tmp_path)]
    objects = []
    for src in [*sorted(FIRMWARE_SRC.glob("*.c")), tmp_path / "model.c"]:
        obj = tmp_path / f"{src.stem}.o"
        subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-DONW_NO_MAIN",
                        '-DONW_BOARD_NAME="arduino-stub"', *include, "-c", str(src), "-o", str(obj)], check=True)
        objects.append(str(obj))
    for src in [BOARDS / "platformio" / "arduino" / "arduino_port.cpp", tmp_path / "main.cpp"]:
        obj = tmp_path / f"{src.stem}.o"
        subprocess.run(["g++", "-O2", "-Wall", "-Wextra", "-Werror", *include, "-c", str(src), "-o", str(obj)],
                       check=True)
        objects.append(str(obj))
    exe = tmp_path / "arduino-stub"
    subprocess.run(["g++", *objects, "-o", str(exe)], check=True)

    process = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    device = Device(PipeLink(process))
    try:
        assert device.hello().name == "digits_pepita@arduino-stub"
        check_build(model, device, gen.model_hash)
        device.reset()
        ref = make_fixed(model)
        steps = (step for _, step in zip(range(200), training_stream(model, data, 1), strict=False))
        probes, _ = fixed.to_q(data.x_test[:8], model.spec.format.activation_frac)
        result = lockstep(ref, device, steps, probes, tmp_path / "mismatch")
        assert result.train_steps > 0
    finally:
        device.close()
