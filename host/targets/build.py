"""Generate the model's C and compile it with the runtime for one board. Builds are cached by content."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onward.codegen.c import GeneratedC, default_batch, generate_c, static_ram
from onward.errors import OnwardError
from onward.model import InitialModel
from onward.paths import BOARDS, FIRMWARE_INCLUDE, FIRMWARE_SRC

WARNINGS = ["-Wall", "-Wextra", "-Werror"]
# Every runtime source is compiled (C, and the assembly of the DSP paths: *.S, empty on other cores); each rule file
# (rule_<name>.c) compiles to nothing unless ONW_RULE names it.
RUNTIME_SOURCES = sorted(p.name for p in [*FIRMWARE_SRC.glob("*.c"), *FIRMWARE_SRC.glob("*.S")])


def available_targets() -> list[str]:
    """Every folder of boards/ with a board.json is a target of the same name."""
    return sorted(p.parent.name for p in BOARDS.glob("*/board.json"))


TARGETS = available_targets()


def bare_metal_targets() -> list[str]:
    """The targets built with a linker script (emulated boards and real parts; not native): what `onward report`
    measures."""
    return [t for t in TARGETS if "linker_script" in load_board(t).config]


class BuildError(OnwardError, RuntimeError):
    pass


STACK_SIZE = re.compile(r"__stack_size\s*=\s*DEFINED\(__stack_size\)\s*\?\s*__stack_size\s*:\s*(\d+)([KM]?)\s*;")


@dataclass(frozen=True)
class Board:
    name: str
    folder: Path
    config: dict[str, Any]

    @property
    def cc(self) -> str:
        return str(self.config["cc"])

    @property
    def stack_bytes(self) -> int:
        """The stack its linker script reserves (`__stack_size`, the one place it is set: the build, the RAM check
        and PlatformIO all read that script); 0 for a board without one (native)."""
        if "linker_script" not in self.config:
            return 0
        script = (self.folder / self.config["linker_script"]).read_text()
        match = STACK_SIZE.search(script)
        if match is None:
            raise BuildError(f"{self.folder / self.config['linker_script']}: no `__stack_size = DEFINED(__stack_size) "
                             f"? __stack_size : <bytes>;` line")
        return int(match[1]) * {"": 1, "K": 1024, "M": 1 << 20}[match[2]]


@dataclass(frozen=True)
class Firmware:
    path: Path
    board: Board
    generated: GeneratedC
    buffers: tuple[str, ...] = ()  # the runtime's static buffers (codegen.static_ram): what size reports read
    rule_buffers: tuple[str, ...] = ()  # those of the learning rule (InitialModel.ram)
    transport: str = "uart"  # how the host reaches it: the UART (every board) or semihosting (emulated only)
    persist: bool = False  # the spec's [persist]: the state is kept in the board's flash


def load_board(target: str) -> Board:
    if target not in TARGETS:
        raise BuildError(f"unknown target {target!r}; expected one of: {', '.join(TARGETS)}")
    folder = BOARDS / target
    return Board(target, folder, json.loads((folder / "board.json").read_text()))


def compile_command(board: Board, gen_dir: Path, out: Path, extra_cflags: Sequence[str] = ()) -> list[str]:
    """One command compiles and links (the emulated boards with link-time optimisation). `extra_cflags` follow the
    board's, so that they win where they disagree (-fno-lto)."""
    cfg = board.config
    sources = [str(FIRMWARE_SRC / s) for s in RUNTIME_SOURCES] + [str(board.folder / s) for s in cfg["sources"]]
    flash = [f"-DONW_FLASH_PAGE={cfg['flash_page']}u"] if "flash_page" in cfg else []
    cmd = [board.cc, *cfg["cflags"], *extra_cflags, *WARNINGS, f'-DONW_BOARD_NAME="{board.name}"', *flash,
           "-I", str(FIRMWARE_INCLUDE), "-I", str(gen_dir), *sources, str(gen_dir / "model.c")]
    if "linker_script" in cfg:  # -L: where its INCLUDEs (cortex-m/sections.ld) are looked up
        cmd += ["-T", str(board.folder / cfg["linker_script"]), f"-L{BOARDS}"]
    return [*cmd, *cfg["ldflags"], "-o", str(out)]


# The runtime's small statics beyond its buffers (frame and saturation counters, the port's tick count) and the
# linker's alignment padding: 14-30 B over every example (tests/test_size.py holds this bound against the ELF).
OTHER_RAM = 64
# What a transport's port code adds to static RAM (boards/*/port.c: the semihosting channel's two buffers).
TRANSPORT_RAM = {"uart": 0, "semihost": 768 + 16}
TRANSPORTS = tuple(TRANSPORT_RAM)
SEMIHOST_CFLAGS = ("-DONW_TRANSPORT_SEMIHOST",)


def check_fits(model: InitialModel, board: Board, extra_ram: int = 0) -> int:
    """Refuse, before building, a model whose static RAM and stack exceed the board's RAM. Returns the largest
    TRAIN_BATCH (at most codegen's default_batch) whose buffers still fit: a board short of RAM gets a smaller
    batch rather than a refusal, down to 1 sample, which needs no more room than single TRAIN."""
    batch = default_batch(model)
    ram = board.config.get("ram_bytes")
    if ram is None:
        return batch
    stack = board.stack_bytes

    def need_for(b: int) -> int:
        return sum(static_ram(model, b).values()) + extra_ram + OTHER_RAM + stack

    if need_for(batch) <= ram:
        return batch
    if need_for(1) <= ram:  # the buffers grow with the batch: bisect for the largest that fits
        lo, hi = 1, batch
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if need_for(mid) <= ram else (lo, mid)
        return lo
    # not even a batch of 1 fits: name what takes the room
    buffers = static_ram(model, 1)
    if extra_ram:
        buffers["port buffers"] = extra_ram
    need = need_for(1)
    biggest = ", ".join(f"{k} {v} B" for k, v in sorted(buffers.items(), key=lambda kv: -kv[1])[:3])
    raise BuildError(
        f"{model.spec.name} does not fit {board.name}: it needs at least {need} B of RAM "
        f"({need - stack} B static: {biggest}, ...; plus a {stack} B stack) and the board has {ram} B: "
        f"over by {need - ram} B. Narrow `model.hidden` or pick a board with more RAM.")


def build_firmware(
    model: InitialModel, target: str, build_dir: Path, extra_cflags: Sequence[str] = (), variant: str = "",
    transport: str = "uart",
) -> Firmware:
    """Generate and compile; `extra_cflags` (e.g. -DONW_PORTABLE_KERNELS) build a variant in a folder of its
    own, named with `variant`. Nothing is recompiled when the command and every input are unchanged.
    transport "semihost" (emulated boards only) builds the port's semihosting channel instead of the UART."""
    board = load_board(target)
    if transport not in TRANSPORTS:
        raise BuildError(f"unknown transport {transport!r}; expected one of: {', '.join(TRANSPORTS)}")
    if transport == "semihost":
        if "qemu" not in board.config:
            raise BuildError(f"target {target} has no semihosting (only the emulated boards do); use the UART")
        extra_cflags = (*extra_cflags, *SEMIHOST_CFLAGS)
        variant = f"{variant}-semihost" if variant else "semihost"
    if model.spec.persist.enabled and "flash_page" not in board.config:
        with_flash = ", ".join(t for t in TARGETS if "flash_page" in load_board(t).config)
        raise BuildError(f"{model.spec.source}: [persist] needs a board with a flash driver; {target} has none yet "
                         f"(targets with one: {with_flash})")
    if shutil.which(board.cc) is None:
        raise BuildError(f"target {target} needs the compiler `{board.cc}`, which is not installed "
                         "(scripts/setup.sh installs it)")
    batch = check_fits(model, board, TRANSPORT_RAM[transport])
    gen = generate_c(model, batch)
    folder = Path(build_dir).resolve() / f"{model.spec.name}-{target}{'-' + variant if variant else ''}"
    gen_dir = folder / "gen"
    gen_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("model.h", gen.header), ("model.c", gen.source)):
        path = gen_dir / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    out = folder / ("firmware.elf" if "linker_script" in board.config else "firmware")
    cmd = compile_command(board, gen_dir, out, extra_cflags)
    inputs = hashlib.sha256(" ".join(cmd).encode())
    board_files = [board.folder / f for f in [*board.config["sources"], board.config.get("linker_script")] if f]
    if "linker_script" in board.config:
        board_files += sorted(BOARDS.glob("*/*.ld"))  # what a linker script may INCLUDE
    board_files += sorted(BOARDS.glob("*/*.h"))  # what a board's sources may include
    for src in sorted([*(FIRMWARE_SRC / s for s in RUNTIME_SOURCES), *FIRMWARE_INCLUDE.rglob("*.h"), *board_files,
                       board.folder / "board.json", gen_dir / "model.h", gen_dir / "model.c"]):
        inputs.update(src.read_bytes())
    stamp = folder / "build.stamp"
    firmware = Firmware(out, board, gen, tuple(static_ram(model, batch)), tuple(model.ram), transport,
                        model.spec.persist.enabled)
    if out.exists() and stamp.exists() and stamp.read_text() == inputs.hexdigest():
        return firmware
    for stale in [*folder.glob("*.su"), *folder.glob("*.ci")]:  # stack-usage files of an earlier build
        stale.unlink()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=folder)
    if result.returncode != 0:
        raise BuildError(f"building {model.spec.name} for {target} failed:\n$ {' '.join(cmd)}\n{result.stderr}")
    if "linker_script" in board.config:
        write_images(board, out)
    stamp.write_text(inputs.hexdigest())
    return firmware


IMAGE_FORMATS = {".bin": "binary", ".hex": "ihex"}


def write_images(board: Board, elf: Path) -> list[Path]:
    """firmware.bin (the flash image from the lowest load address: what st-flash writes at the board's
    flash_address) and firmware.hex (Intel HEX, addresses included: OpenOCD, STM32CubeProgrammer) beside the ELF,
    made by the toolchain's objcopy from the ELF's load addresses (.data's initial values included, .bss not)."""
    objcopy = board.cc[: -len("gcc")] + "objcopy"
    images = []
    for suffix, fmt in IMAGE_FORMATS.items():
        image = elf.with_suffix(suffix)
        result = subprocess.run([objcopy, "-O", fmt, str(elf), str(image)], capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"{objcopy} -O {fmt} {elf} failed: {result.stderr.strip()}")
        images.append(image)
    return images
