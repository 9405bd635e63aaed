"""The local PlatformIO platform of onward's emulated boards (see platform.json and builder/main.py).

Before PlatformIO looks for packages, the packages folder is seeded (offline.py) with tool-scons from the
PyPI `scons` package and with wrappers of the system cross compilers, so that nothing is downloaded."""

import importlib.util
import json
import os

from platformio.exception import UserSideException
from platformio.public import PlatformBase

HERE = os.path.dirname(os.path.realpath(__file__))
BOARDS = os.path.dirname(HERE)  # the repository's boards/: one folder with a board.json per onward target


def _offline():
    spec = importlib.util.spec_from_file_location("onward_pio_offline", os.path.join(HERE, "offline.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class OnwardPlatform(PlatformBase):
    def configure_default_packages(self, variables, targets):
        offline = _offline()
        try:
            seeded = offline.seed(self.config.get("platformio", "packages_dir"))
        except offline.SeedError as exc:
            raise UserSideException(str(exc)) from None
        board = variables.get("board")
        if board:
            target = self.board_config(board).get("build.onward_board")
            with open(os.path.join(BOARDS, target, "board.json"), encoding="utf8") as f:
                cc = json.load(f)["cc"]
            package = offline.toolchain_package(cc[: -len("gcc")])
            if package not in self.packages or not seeded.get(package):
                raise UserSideException(
                    f"board {board} needs the cross compiler `{cc}`, which is not installed "
                    "(scripts/setup.sh installs it: Debian packages gcc-arm-none-eabi, gcc-riscv64-unknown-elf)")
            self.packages[package]["optional"] = False
        return super().configure_default_packages(variables, targets)
