"""The MicroPython target: write the generated module into a build folder, and run it on the MicroPython unix port
(the protocol on its stdin/stdout), as the native target runs its C firmware as a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from onward.codegen.micropython import GeneratedMicroPython, generate_micropython
from onward.model import InitialModel
from onward.targets.build import Board

MAIN = "main.py"


def write_micropython(model: InitialModel, build_dir: Path, board: str = "micropython") -> tuple[Path,
                                                                                                  GeneratedMicroPython]:
    """The generated files in <build_dir>/<spec>-<board>/, rewritten only when they change."""
    gen = generate_micropython(model, board=board)
    folder = Path(build_dir).resolve() / f"{model.spec.name}-{board}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in gen.files.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return folder, gen


def start_micropython(board: Board, folder: Path) -> subprocess.Popen[bytes]:
    """The unix port (this Python's micropython_unix module) running main.py in `folder`."""
    return subprocess.Popen([sys.executable, *board.config["micropython"], MAIN], cwd=folder,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
