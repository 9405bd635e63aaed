"""PlatformIO pre-script of every environment in platformio.ini: stop with a clear message when the
generated model (model.h, model.c in the project's src_dir) is missing."""

import os
import sys

from SCons.Script import GetOption, Import

Import("env")

if not GetOption("clean"):  # `pio run -t clean` needs no model
    src = env.subst("$PROJECT_SRC_DIR")  # noqa: F821 (SCons Import)
    missing = [name for name in ("model.h", "model.c") if not os.path.isfile(os.path.join(src, name))]
    if missing:
        shown = os.path.relpath(src) if not os.path.relpath(src).startswith("..") else src
        sys.stderr.write(
            f"Error: no generated model in {shown} ({' and '.join(missing)} missing). Write it for your spec:\n"
            f"    onward generate examples/digits_pepita.toml -o {shown}\n"
            "or let `onward flash SPEC --board BOARD` generate, build, flash and verify.\n")
        env.Exit(1)  # noqa: F821
