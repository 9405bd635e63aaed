"""Coverage-guided fuzzing of the firmware with libFuzzer (clang, AddressSanitizer, UndefinedBehaviorSanitizer).

Three harnesses (fuzz/): `frames` feeds the input to onw_serve as the host link's byte stream and checks that every
frame is answered once with a well-formed reply and that the learned state changes only through a successful
state-changing command; `commands` is the same after making every frame's length field and CRC right, so that
mutations reach the commands' argument checks; `state` LOADs the input as the state image and trains and infers on
it. Each is built
for one model (its generated C, the whole runtime, the fuzzing port) and seeded with a valid frame of every
command. `python3 bench/fuzz.py` runs them for longer; tests/test_fuzz.py for a few seconds each in CI."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onward.codegen.c import generate_c
from onward.errors import OnwardError
from onward.model import InitialModel
from onward.paths import FIRMWARE_INCLUDE, FIRMWARE_SRC, ROOT
from onward.protocol import Cmd, encode_frame
from onward.reference import make_fixed, state_size

FUZZ = ROOT / "fuzz"
HARNESSES = ("frames", "commands", "state")
CLANG = "clang"
FLAGS = ["-std=c99", "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
         "-DONW_NO_MAIN", '-DONW_BOARD_NAME="fuzz"']
DICTIONARY = [bytes([c]) for c in Cmd] + [bytes([c | 0x80]) for c in Cmd]


class FuzzError(OnwardError):
    pass


@dataclass(frozen=True)
class FuzzRun:
    harness: str
    executions: int
    seconds: float
    coverage: int  # edges (libFuzzer's `cov`)
    features: int  # libFuzzer's `ft`
    crashes: list[Path]  # crash-* / leak-* / timeout-* inputs it wrote (empty: no finding)
    log: str


def build_harness(model: InitialModel, harness: str, folder: Path, overrides: dict[str, Path] | None = None) -> Path:
    """The harness binary for this model, in folder. `overrides` replaces runtime sources by name (the tests plant
    bugs in a copy of app.c to show that the harness finds them)."""
    if shutil.which(CLANG) is None:
        raise FuzzError(f"fuzzing needs `{CLANG}` and its libFuzzer runtime (scripts/setup.sh installs clang)")
    folder.mkdir(parents=True, exist_ok=True)
    gen = generate_c(model)
    (folder / "model.h").write_text(gen.header)
    (folder / "model.c").write_text(gen.source)
    overrides = overrides or {}
    sources = sorted(str(overrides.get(p.name, p)) for p in FIRMWARE_SRC.glob("*.c"))
    out = folder / harness
    cmd = [CLANG, *FLAGS, "-I", str(FIRMWARE_INCLUDE), "-I", str(folder), "-I", str(FUZZ), *sources,
           str(FUZZ / "port.c"), str(FUZZ / f"{harness}.c"), str(folder / "model.c"), "-o", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise FuzzError(f"building the {harness} harness failed:\n$ {' '.join(cmd)}\n{result.stderr}")
    return out


def seed_corpus(model: InitialModel, folder: Path) -> Path:
    """A valid frame of every command (and a TRAIN_BATCH, a LOAD of the initial state) as the starting corpus."""
    folder.mkdir(parents=True, exist_ok=True)
    ref = make_fixed(model)
    x = np.arange(model.dims[0], dtype="<i2") * 37 - 100
    sample = struct.pack("<h", 1) + x.tobytes()
    image = ref.state_bytes()
    frames = {
        "hello": encode_frame(Cmd.HELLO), "reset": encode_frame(Cmd.RESET, struct.pack("<I", 7)),
        "load": encode_frame(Cmd.LOAD, struct.pack("<I", 16) + image[16:80]),
        "dump": encode_frame(Cmd.DUMP, struct.pack("<IH", 0, min(64, state_size(model)))),
        "train": encode_frame(Cmd.TRAIN, sample), "infer": encode_frame(Cmd.INFER, x.tobytes()),
        "stats": encode_frame(Cmd.STATS), "set_lr": encode_frame(Cmd.SET_LR, struct.pack("<I", 1 << 20)),
        "set_stage": encode_frame(Cmd.SET_STAGE, struct.pack("<I", model.stages - 1)),
        "train_batch": encode_frame(Cmd.TRAIN_BATCH, struct.pack("<H", 2) + sample * 2),
    }
    frames["session"] = b"".join(frames.values())
    for name, data in frames.items():
        (folder / name).write_bytes(data)
    (folder / "state-image").write_bytes(image)
    return folder


def run_harness(binary: Path, corpus: Path, seconds: int, artifacts: Path, max_len: int = 4096) -> FuzzRun:
    """libFuzzer for `seconds`; the crash inputs (if any) land in artifacts."""
    artifacts.mkdir(parents=True, exist_ok=True)
    dictionary = binary.parent / "commands.dict"
    dictionary.write_text("".join(f'"\\x{d[0]:02X}"\n' for d in DICTIONARY))
    cmd = [str(binary), str(corpus), f"-max_total_time={seconds}", f"-max_len={max_len}", "-timeout=10",
           f"-dict={dictionary}", f"-artifact_prefix={artifacts}/", "-print_final_stats=1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    log = result.stdout + result.stderr
    done = re.findall(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+)", log)
    runs = re.search(r"stat::number_of_executed_units:\s+(\d+)", log)
    secs = re.search(r"Done (\d+) runs in (\d+) second", log)
    executions = int(runs[1]) if runs else int(done[-1][0]) if done else 0
    coverage, features = (int(done[-1][1]), int(done[-1][2])) if done else (0, 0)
    crashes = sorted(p for p in artifacts.iterdir() if p.name.split("-")[0] in ("crash", "leak", "timeout", "oom"))
    return FuzzRun(binary.name, executions, float(secs[2]) if secs else float(seconds), coverage, features, crashes,
                   log)
