"""PlatformIO post-script of the real boards that have an onward bare-metal port (nucleo_f446re, nucleo_l476rg):
on the official platform (ststm32), with no framework, build the port, startup and linker script of
boards/<env>/board.json with its flags, as `onward build` does (onward_board.py), instead of the platform's
defaults (newlib, its own -Os and float ABI). Upload stays the platform's (ST-LINK)."""

import importlib.util
import os

from SCons.Script import Import

Import("env")

_path = os.path.join(env.subst("$PROJECT_DIR"), "boards", "platformio", "onward_board.py")  # noqa: F821
_spec = importlib.util.spec_from_file_location("onward_board", _path)
onward_board = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(onward_board)

onward_board.add_board(env, env["PIOENV"])  # noqa: F821 (SCons Import)
