"""Where the non-Python parts of the repository live (firmware sources, boards, examples)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
FIRMWARE_INCLUDE = FIRMWARE / "include"
FIRMWARE_SRC = FIRMWARE / "src"
BOARDS = ROOT / "boards"
EXAMPLES = ROOT / "examples"
