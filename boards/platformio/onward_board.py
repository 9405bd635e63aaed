"""Build an onward board's port into a PlatformIO environment: the compiler and linker flags, the startup and port
sources and the linker script of boards/<target>/board.json, exactly as `onward build` uses them.

Shared by the local platform's builder (builder/main.py: the emulated boards, offline) and by bare_metal.py (the
real boards' environments on PlatformIO's official platforms), so that both build the same port the same way."""

import json
import os

BOARDS = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # the repository's boards/
REPO = os.path.dirname(BOARDS)
WARNINGS = ["-Wall", "-Wextra", "-Werror"]  # as host/targets/build.py


def board_config(target):
    with open(os.path.join(BOARDS, target, "board.json"), encoding="utf8") as f:
        return json.load(f)


def add_board(env, target):
    """Append board.json's flags to `env`, set its linker script and build its sources; returns the config."""
    config = board_config(target)
    folder = os.path.join(BOARDS, target)
    env.Replace(LDSCRIPT_PATH=os.path.join(folder, config["linker_script"]))
    env.Append(
        CFLAGS=[flag for flag in config["cflags"] if flag.startswith("-std=")],
        CCFLAGS=[flag for flag in config["cflags"] if not flag.startswith("-std=")] + WARNINGS,
        ASFLAGS=[flag for flag in config["cflags"] if not flag.startswith("-std=")],
        ASPPFLAGS=["-x", "assembler-with-cpp"],
        CPPDEFINES=[("ONW_BOARD_NAME", f'\\"{target}\\"')]
        + ([("ONW_FLASH_PAGE", f"{config['flash_page']}u")] if "flash_page" in config else []),
        LINKFLAGS=[flag for flag in config["ldflags"] if not flag.startswith("-l")],
        LIBPATH=[BOARDS],  # where the linker script's INCLUDEs (cortex-m/sections.ld) are looked up
    )
    env.Replace(LIBS=[flag[2:] for flag in config["ldflags"] if flag.startswith("-l")])
    # The board's startup, port and flash driver (paths relative to its folder, e.g. ../cortex-m/startup.c):
    # port.c includes onward/port.h from the runtime (firmware/include), the flash driver the model's model.h
    # (the project's src_dir) for its [persist] macros.
    sources = [os.path.normpath(os.path.join(folder, s)) for s in config["sources"]]
    root = os.path.commonpath([os.path.dirname(s) for s in sources])
    board_env = env.Clone()
    board_env.Append(CPPPATH=[os.path.join(REPO, "firmware", "include"), "$PROJECT_SRC_DIR", "$PROJECT_INCLUDE_DIR"])
    board_env.BuildSources(
        os.path.join("$BUILD_DIR", "board"), root,
        ["-<*>"] + [f"+<{os.path.relpath(s, root)}>" for s in sources],
    )
    return config
