"""SCons script of the local platform: build an onward emulated board exactly as `onward build` does.

The board manifest (boards/platformio/boards/<board>.json) names the onward target in build.onward_board;
that target's board.json (boards/<target>/board.json) gives the compiler, the flags, the startup and port
sources and the linker script (onward_board.py adds them, as it does for the real boards' environments). The
runtime (firmware/, a PlatformIO library) and the generated model (the project's src_dir) are built by PlatformIO
itself."""

import importlib.util
import os

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()
platform = env.PioPlatform()
board = env.BoardConfig()

_path = os.path.join(os.path.realpath(platform.get_dir()), "onward_board.py")  # shared with bare_metal.py
_spec = importlib.util.spec_from_file_location("onward_board", _path)
onward_board = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(onward_board)

TARGET = board.get("build.onward_board")
CONFIG = onward_board.board_config(TARGET)
PREFIX = CONFIG["cc"][: -len("gcc")]  # arm-none-eabi- / riscv64-unknown-elf-

env.Replace(
    AR=PREFIX + "gcc-ar",
    AS=PREFIX + "gcc",
    CC=PREFIX + "gcc",
    CXX=PREFIX + "g++",
    LINK=PREFIX + "gcc",
    GDB=PREFIX + "gdb",
    OBJCOPY=PREFIX + "objcopy",
    RANLIB=PREFIX + "gcc-ranlib",
    SIZETOOL=PREFIX + "size",
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.text\.init|\.rodata|\.srodata|\.ARM\.exidx|\.data|\.sdata)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.sdata|\.bss|\.sbss)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
)
onward_board.add_board(env, TARGET)

program = env.BuildProgram()
AlwaysBuild(env.Alias("nobuild", program))
size = env.Alias("size", program, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"))
AlwaysBuild(size)
Default([program, size])
