"""SCons script of the local platform: build an onward emulated board exactly as `onward build` does.

The board manifest (boards/platformio/boards/<board>.json) names the onward target in build.onward_board;
that target's board.json (boards/<target>/board.json) gives the compiler, the flags, the startup and port
sources and the linker script. The runtime (firmware/, a PlatformIO library) and the generated model (the
project's src_dir) are built by PlatformIO itself."""

import json
import os

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()
platform = env.PioPlatform()
board = env.BoardConfig()

TARGET = board.get("build.onward_board")
BOARDS = os.path.dirname(os.path.realpath(platform.get_dir()))  # the platform is boards/platformio
REPO = os.path.dirname(BOARDS)
FOLDER = os.path.join(BOARDS, TARGET)
with open(os.path.join(FOLDER, "board.json"), encoding="utf8") as f:
    CONFIG = json.load(f)
PREFIX = CONFIG["cc"][: -len("gcc")]  # arm-none-eabi- / riscv64-unknown-elf-
WARNINGS = ["-Wall", "-Wextra", "-Werror"]  # as host/targets/build.py

cflags = [flag for flag in CONFIG["cflags"] if not flag.startswith("-std=")]
ldflags = [flag for flag in CONFIG["ldflags"] if not flag.startswith("-l")]

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
    LDSCRIPT_PATH=os.path.join(FOLDER, CONFIG["linker_script"]),
)
env.Append(
    CFLAGS=[flag for flag in CONFIG["cflags"] if flag.startswith("-std=")],
    CCFLAGS=cflags + WARNINGS,
    ASFLAGS=cflags,
    ASPPFLAGS=["-x", "assembler-with-cpp"],
    CPPDEFINES=[("ONW_BOARD_NAME", f'\\"{TARGET}\\"')],
    LINKFLAGS=ldflags,
    LIBS=[flag[2:] for flag in CONFIG["ldflags"] if flag.startswith("-l")],
)

# The board's startup and port (paths relative to its folder, e.g. ../cortex-m/startup.c); port.c includes
# onward/port.h from the runtime (firmware/include).
sources = [os.path.normpath(os.path.join(FOLDER, s)) for s in CONFIG["sources"]]
root = os.path.commonpath([os.path.dirname(s) for s in sources])
board_env = env.Clone()
board_env.Append(CPPPATH=[os.path.join(REPO, "firmware", "include")])
board_env.BuildSources(
    os.path.join("$BUILD_DIR", "board"), root,
    ["-<*>"] + [f"+<{os.path.relpath(s, root)}>" for s in sources],
)

program = env.BuildProgram()
AlwaysBuild(env.Alias("nobuild", program))
size = env.Alias("size", program, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"))
AlwaysBuild(size)
Default([program, size])
