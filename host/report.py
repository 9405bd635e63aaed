"""`onward report`: exact resource figures of one spec on one bare-metal target (an emulated board, or a real part
whose firmware the emulator runs function by function), measured on the built firmware.

Figures (and the keys of the `--json` object; every figure is an integer unless marked float):

    spec, target, cpu          the spec's name, the target, the CPU the instructions were counted on
    kernel                     "dsp" (the SMLALD dense kernel of firmware/src/dense.c) or "portable" (plain C)
    flash_bytes                .isr_vector + .text + .rodata + .ARM.exidx + .data (the load image)
    flash_without_weights_bytes  flash_bytes minus the model's initial weights (the size of the ELF symbol
                               onw_weights_init): what the runtime and the rule cost, whatever the model's size
    ram_static_bytes           .data + .bss
    stack_worst_bytes          worst-case stack from reset, static: GCC's per-function frames (-fstack-usage
                               / -fcallgraph-info=su) along the deepest call path, plus an interrupt's frame
    stack_worst_path           that path, outermost first (list of function names)
    stack_interrupt_bytes      of which an interrupt can add on top (Arm: 32 B exception frame + 4 B
                               alignment + the deepest enabled handler; 0 when the board enables none)
    stack_train_bytes          worst-case stack of onw_train and everything it calls (static)
    stack_train_measured_bytes peak stack of the measured training step (emulated, stack painting)
    ram_with_stack_bytes       ram_static_bytes + stack_worst_bytes
    part_flash_bytes, part_ram_bytes  the board's flash and RAM (board.json; the part's, on a real board)
    clock_hz                   the core clock the port sets up (board.json; null on emulated boards)
    us_per_inference, us_per_training_step  (float, null without clock_hz) instructions / clock_hz: one cycle per
                               instruction, a lower bound (on a Cortex-M4 a load takes 2 cycles unless pipelined,
                               a taken branch 2-4, a flash wait state more where the prefetch and caches miss)
    instructions_per_inference       onw_infer on test sample 0 after RESET(spec seed)
    instructions_per_training_step   onw_train on the first training sample of the spec's stream after RESET
    instructions_dense_64x64   onw_dense on a 64x64 layer (ReLU, the spec's weight_frac, aligned buffers)
    instructions_per_mac       (float) instructions_dense_64x64 / 4096
    ..._portable               the same four figures for the firmware built with -DONW_PORTABLE_KERNELS
                               (identical to the above on targets without the DSP extension)
    macs_per_inference         multiply-accumulates of one inference (sum of in x out over the layers)
    inference_ram_bytes        weights (2 B each) + input + output + the hidden activations in two
                               ping-pong buffers: the least static RAM an inference-only build of this
                               model needs with these kernels (no stack, like ram_static_bytes)
    inference_ram              its parts: weights, input, activations, output
    training_ram_bytes         = ram_static_bytes: the training firmware's static RAM
    training_ram               its parts: state (header + weights), rule_buffers (the learning rule's
                               activation buffers), io_buffers (frame buffers, sample, outputs), other
    persist_flash_bytes        a [persist] build: the flash of its two save slots (whole pages); 0 without
    queries_per_training_step  a rule that queries the host's instrument (a chip behind DACs and ADCs): QUERY
                               frames of the measured step, answered outside the core (not in the instruction
                               count); query_bytes_per_training_step their frames' bytes both ways; 0 for the
                               others
    frontend_flash_bytes       a [frozen] build: the extractor's tables in flash (operators, int8 weights, int32
                               biases, multipliers); frontend_ram_bytes its buffers (two int8 ping-pong
                               activations, the features); instructions_frontend its instructions per sample,
                               included in the inference's and the training step's; all 0 without

Instruction counts are executed instructions under the unicorn emulator (onward.counting): exact and
repeatable, but not cycles (an LDM of 3 words or a 64-bit SMLALD count as one). Each inference and training
step is checked against the fixed-point reference (outputs, and the state digest after training), so the
numbers are those of a run that is bit-exact.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from elftools.elf.elffile import ELFFile

from onward import persist
from onward.counting import Call, CountingError, Emulator
from onward.data import Dataset
from onward.errors import OnwardError
from onward.model import InitialModel, device_inputs
from onward.nn.dense import dense_fixed
from onward.protocol import Cmd, encode_frame
from onward.reference import STATE_HEADER, FixedReference, make_fixed, share_instrument, training_stream
from onward.session import prepare
from onward.size import SizeReport, size_report
from onward.spec import load_spec
from onward.targets.build import Firmware, bare_metal_targets, build_firmware, load_board

STACK_FLAGS = ["-fstack-usage", "-fcallgraph-info=su"]  # per-function frames and call graph; no code change
PORTABLE_FLAG = "-DONW_PORTABLE_KERNELS"
NO_LTO_FLAG = "-fno-lto"
IO_BUFFERS = ("rx", "tx", "sample", "outputs")
DENSE_DIM = 64
ARM_EXCEPTION_FRAME = 32 + 4  # r0-r3, r12, lr, pc, xPSR; plus 4 B to realign the stack to 8 bytes


class ReportError(OnwardError):
    """A report that cannot be made (a target that cannot be emulated, a firmware that disagrees with the
    reference, an unbounded stack)."""


# -- building --------------------------------------------------------------------------------------------

def build_variant(model: InitialModel, target: str, build_dir: Path, portable: bool = False,
                  lto: bool = True) -> Firmware:
    """The firmware of `onward build`, compiled with the same command plus -fstack-usage and
    -fcallgraph-info=su (they write .su/.ci files beside the ELF and do not change the code), and with
    -DONW_PORTABLE_KERNELS when `portable`. lto=False links without link-time optimisation (-fno-lto): every kernel
    then stays a function that takes any argument, which is what the kernel tests call."""
    board = load_board(target)
    if "linker_script" not in board.config:
        raise ReportError(f"`onward report` measures bare-metal firmware; {target} is not (use one of: "
                          f"{', '.join(bare_metal_targets())})")
    flags = [*STACK_FLAGS, *([PORTABLE_FLAG] if portable else []), *([] if lto else [NO_LTO_FLAG])]
    variant = "report" + ("-portable" if portable else "") + ("" if lto else "-nolto")
    return build_firmware(model, target, build_dir, extra_cflags=flags, variant=variant)


def board_cpu(firmware: Firmware) -> str | None:
    """The -mcpu= of the board's cflags (None for RISC-V boards: unicorn has one RV32 model)."""
    for flag in firmware.board.config.get("cflags", []):
        if flag.startswith("-mcpu="):
            return str(flag.split("=", 1)[1])
    return None


INITIAL_WEIGHTS = "onw_weights_init"  # codegen/c.py: the model's initial int16 weights, in flash
FRONTEND_CONSTANTS = ("onw_tfl_ops", "onw_tfl_weights", "onw_tfl_bias", "onw_tfl_quant")  # a [frozen] model's


def symbol_size(firmware: Firmware, name: str) -> int:
    """The size in bytes of a symbol of the firmware's ELF (0 if it has none)."""
    with open(firmware.path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        symbols = symtab.get_symbol_by_name(name) if symtab is not None else None
        return int(symbols[0]["st_size"]) if symbols else 0


def has_dsp_kernels(firmware: Firmware) -> bool:
    """Whether this build contains an SMLALD core of dense.c (they are only compiled for DSP cores; a rule links
    the ReLU/plain cores, onw_dense, or the raw one, onw_dense_acc, or both)."""
    with open(firmware.path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return symtab is not None and any(symtab.get_symbol_by_name(name)
                                          for name in ("onw_dense_pairs", "onw_dense_pairs_raw"))


# -- instruction counts ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Counts:
    inference: int
    training_step: int
    dense_64x64: int | None  # None: the rule does not link onw_dense
    train_stack: int
    frontend: int = 0  # the frozen extractor's part of each (onw_frontend), 0 without one
    queries: int = 0  # instrument queries of the training step (onward.instrument), 0 for a rule without
    query_bytes: int = 0  # their frames' bytes both ways, COBS and delimiters included

    @property
    def per_mac(self) -> float | None:
        return None if self.dense_64x64 is None else round(self.dense_64x64 / (DENSE_DIM * DENSE_DIM), 4)


def _buffer(emu: Emulator, name: str, size: int) -> int:
    """The firmware's own static buffer (the same alignment as on the device), else scratch memory."""
    return emu.symbols[name] if name in emu.symbols else emu.alloc(size)


def _i16(values: np.ndarray) -> bytes:
    return np.asarray(values, dtype="<i2").tobytes()


def count_instructions(firmware: Firmware, model: InitialModel, data: Dataset) -> Counts:
    """Executed instructions of one inference, one training step and one 64x64 dense layer; each checked
    against the fixed-point reference."""
    spec, fmt = model.spec, model.spec.format
    try:
        emu = Emulator(firmware.path, board_cpu(firmware))
        logits = _buffer(emu, "outputs", 2 * model.outputs)
        ref = make_fixed(model)
        link = _attach_instrument(emu, ref)

        x_test = device_inputs(model, data.x_test[:1])
        emu.call("onw_reset", [spec.seed], count=False)
        ref.reset(spec.seed)
        sample, front = _model_input(emu, model, x_test[0])
        inference = front + emu.call("onw_infer", [sample, logits]).instructions
        _check(emu, logits, ref.infer(x_test[0]), "onw_infer on test sample 0")

        link.queries = link.bytes = 0
        train = _count_step(emu, ref, model, data, 0)
        if "onw_dense" not in emu.symbols:  # a rule with kernels of its own
            return Counts(inference, train.instructions, None, train.stack, front, link.queries, link.bytes)
        rng = np.random.default_rng(0)
        w = rng.integers(-(1 << 11), 1 << 11, size=(DENSE_DIM, DENSE_DIM))
        x = rng.integers(0, 1 << 10, size=DENSE_DIM)
        emu.reset_scratch()
        w_at, x_at = emu.alloc(_i16(w)), emu.alloc(_i16(x))
        y_at, sat_at = emu.alloc(2 * DENSE_DIM), emu.alloc(4)
        dense = emu.call("onw_dense", [w_at, x_at, DENSE_DIM, DENSE_DIM, fmt.weight_frac, 1, y_at, sat_at])
        expected, _ = dense_fixed(w, x, fmt.weight_frac, relu=True)
        _check(emu, y_at, expected, "onw_dense on a 64x64 layer")
    except CountingError as exc:
        raise ReportError(str(exc)) from None
    return Counts(inference, train.instructions, dense.instructions, train.stack, front, link.queries, link.bytes)


class _Link:
    """The host's end of onw_host_query in the emulator: the queries answered, their frames' bytes."""

    def __init__(self) -> None:
        self.on_query: Callable[[bytes], bytes] | None = None
        self.queries = 0
        self.bytes = 0

    def __call__(self, emu: Emulator) -> int:
        frame, body_len, answer, answer_len = (emu.arg(i) for i in range(4))
        request = emu.read(frame + 3, body_len)
        assert self.on_query is not None
        reply = self.on_query(request)
        if len(reply) != answer_len:
            raise ReportError(f"the instrument answered {len(reply)} bytes where the firmware takes {answer_len}")
        emu.write(answer, reply)
        self.queries += 1
        self.bytes += sum(len(encode_frame(Cmd.QUERY, b)) for b in (request, reply))
        return 0


def _attach_instrument(emu: Emulator, ref: FixedReference) -> _Link:
    """For a rule that queries an instrument: onw_host_query answered from the tape it shares with the reference
    (onward.instrument), so that the step is counted without the link, and checked all the same."""
    link = _Link()
    if share_instrument(ref, link) is not None:
        emu.intercept("onw_host_query", link)
    return link


def _model_input(emu: Emulator, model: InitialModel, x: np.ndarray) -> tuple[int, int]:
    """Where the rule's input lies, and the instructions it took to make it: the sample itself, or the frozen
    extractor's features of the raw sample (onw_frontend, counted as part of the inference or training step)."""
    sample = _buffer(emu, "sample", 2 * model.sample_dim)
    emu.write(sample, _i16(x))
    if model.frontend is None:
        return sample, 0
    features = _buffer(emu, "frontend_features", 2 * model.dims[0])
    return features, emu.call("onw_frontend", [sample, features]).instructions


def _count_step(emu: Emulator, ref: FixedReference, model: InitialModel, data: Dataset, stage: int) -> Call:
    """onw_train on the first training sample of `stage` in the spec's stream, after RESET (and, past stage 0,
    the stage set as SET_STAGE sets it), checked against the reference: outputs and state digest."""
    spec = model.spec
    current, step = 0, None
    for item in training_stream(model, data, 1, steps_per_stage=1):  # one training sample per stage
        current = item.stage if item.kind == "set_stage" else current
        if item.kind == "train" and current == stage:
            step = item
            break
    assert step is not None and step.x is not None
    emu.call("onw_reset", [spec.seed], count=False)
    ref.reset(spec.seed)
    if stage:
        emu.write(emu.address("onw_state") + STATE_HEADER.size - 4, stage.to_bytes(4, "little"))
        ref.stage = stage
    logits = _buffer(emu, "outputs", 2 * model.outputs)
    sample, front = _model_input(emu, model, step.x)
    train = emu.call("onw_train", [sample, step.target & 0xFFFFFFFF, logits])
    train = Call(front + train.instructions, train.result, train.stack)
    where = "the first training sample" + (f" of stage {stage}" if stage else "")
    _check(emu, logits, ref.train(step.x, step.target), f"onw_train on {where}")
    digest = emu.call("onw_state_digest", count=False).result
    if digest != ref.digest():
        raise ReportError(f"{emu.path}: state digest after one training step 0x{digest:08x} ({where}), "
                          f"the reference 0x{ref.digest():08x}")
    return train


def count_training_step(firmware: Firmware, model: InitialModel, data: Dataset, stage: int) -> int:
    """Executed instructions of onw_train at `stage` (a layer-by-layer rule's; 0 for the others) on
    that stage's first training sample, after RESET; checked against the fixed-point reference."""
    if not 0 <= stage < model.stages:
        raise ReportError(f"{model.spec.name} has {model.stages} stage(s); no stage {stage}")
    try:
        emu = Emulator(firmware.path, board_cpu(firmware))
        ref = make_fixed(model)
        _attach_instrument(emu, ref)
        return _count_step(emu, ref, model, data, stage).instructions
    except CountingError as exc:
        raise ReportError(str(exc)) from None


def _check(emu: Emulator, address: int, expected: np.ndarray, what: str) -> None:
    got = np.frombuffer(emu.read(address, 2 * len(expected)), dtype="<i2").astype(np.int64)
    if not np.array_equal(got, expected):
        raise ReportError(f"{emu.path}: {what} gives {got.tolist()}, the reference {list(map(int, expected))}")


# -- stack -------------------------------------------------------------------------------------------------

@dataclass
class StackReport:
    worst: int                      # from reset, interrupt included
    path: list[str]                 # the worst path from reset (without the interrupt)
    interrupt: int                  # what an interrupt adds on top of any point of that path
    frames: dict[str, int]          # every reachable function's own frame
    train: int                      # onw_train's subtree


_CI_NODE = re.compile(r'node: \{ title: "(?P<title>[^"]*)" label: "(?P<label>[^"]*)"')
_CI_EDGE = re.compile(r'edge: \{ sourcename: "(?P<src>[^"]*)" targetname: "(?P<dst>[^"]*)"')
_CI_SIZE = re.compile(r"(\d+) bytes \(([a-z,]+)\)")
_FUNC = re.compile(r"^(?P<address>[0-9a-f]+) <(?P<name>[^>]+)>:$")
_INSN = re.compile(r"^\s*[0-9a-f]+:\s+(?P<op>\S+)\s*(?P<args>.*)$")
_TARGET = re.compile(r"<(?P<name>[^>+]+)(?P<offset>\+0x[0-9a-f]+)?>")


def _read_callgraph_info(folder: Path) -> tuple[dict[str, int], dict[str, set[str]], set[str]]:
    """Frames (bytes) and calls by function name from GCC's .ci files; and the functions whose frame is
    dynamic (alloca, variable-length arrays)."""
    frames: dict[str, int] = {}
    calls: dict[str, set[str]] = {}
    dynamic: set[str] = set()
    for ci in sorted(folder.glob("*.ci")):
        names: dict[str, str] = {}
        text = ci.read_text()
        for m in _CI_NODE.finditer(text):
            parts = m["label"].split("\\n")
            names[m["title"]] = parts[0]
            size = _CI_SIZE.search(m["label"])
            if size:
                frames[parts[0]] = max(frames.get(parts[0], 0), int(size[1]))
                if "dynamic" in size[2] and "bounded" not in size[2]:
                    dynamic.add(parts[0])
        for m in _CI_EDGE.finditer(text):
            src, dst = names.get(m["src"], m["src"]), names.get(m["dst"], m["dst"])
            calls.setdefault(src, set()).add(dst)
    return frames, calls, dynamic


def _disassembly(firmware: Firmware) -> tuple[dict[str, list[tuple[str, str]]], dict[int, str]]:
    """Every function's instructions (mnemonic, operands) from objdump, and the function at each address."""
    cc = firmware.board.cc
    objdump = cc[: -len("gcc")] + "objdump" if cc.endswith("gcc") else "objdump"
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(firmware.path)], check=True,
                         capture_output=True, text=True).stdout
    functions: dict[str, list[tuple[str, str]]] = {}
    at: dict[int, str] = {}
    current: list[tuple[str, str]] | None = None
    for line in out.splitlines():
        head = _FUNC.match(line)
        if head:
            current = functions.setdefault(head["name"], [])
            at.setdefault(int(head["address"], 16), head["name"])
            continue
        insn = _INSN.match(line)
        if insn and current is not None:
            current.append((insn["op"], insn["args"]))
    return functions, at


def _machine_frame(code: list[tuple[str, str]], arch: str) -> int | None:
    """An upper bound of the frame of a function GCC did not describe (assembly, libgcc): the sum of every
    push and every sp decrement in its code (a prologue may push twice, as Cortex-M0 code saving r8-r11
    does). None if it moves sp by a register amount."""
    frame = 0
    for op, args in code:
        flat = args.replace(" ", "")
        if arch == "arm":
            base = op.split(".")[0]
            if base == "push" or (base == "stmdb" and flat.startswith("sp!")):
                frame += 4 * (flat.count(",") + 1 - (1 if base == "stmdb" else 0))
            elif base in ("sub", "subw") and flat.startswith("sp,"):
                imm = re.search(r"#(\d+)", args)
                if imm is None:
                    return None
                frame += int(imm[1])
            elif base in ("str", "strd") and (pre := re.search(r"\[sp,#-(\d+)\]!", flat)):
                # a store that pre-decrements sp (libgcc's __aeabi_ldivmod: strd ip, lr, [sp, #-16]!)
                frame += int(pre[1])
            elif base == "vpush":
                return None
        elif op in ("addi", "c.addi16sp", "c.addi") and flat.startswith("sp,sp,"):
            amount = int(flat.split(",")[2], 0)
            frame += -amount if amount < 0 else 0
        elif op in ("sub", "c.sub") and flat.startswith("sp,sp,"):
            return None
    return frame


ARM_BRANCHES = {"b", "beq", "bne", "bcs", "bcc", "bhs", "blo", "bmi", "bpl", "bvs", "bvc", "bhi", "bls", "bge",
                "blt", "bgt", "ble", "bal"}


def _machine_calls(name: str, code: list[tuple[str, str]], arch: str) -> tuple[set[str], bool]:
    """Direct calls and tail calls (a branch to the start of another function) in the machine code; and
    whether the function makes an indirect call (blx rN, jalr rN). Jumps within a function (bx rN in the
    dense kernel's assembly, jr for switch tables) are not calls."""
    calls: set[str] = set()
    indirect = False
    for op, args in code:
        target = _TARGET.search(args)
        base = op.split(".")[0]
        if arch == "arm":
            if base == "bl" and target:
                calls.add(target["name"])
            elif base == "blx":
                if target:
                    calls.add(target["name"])
                else:
                    indirect = True
            elif base in ARM_BRANCHES and target and target["name"] != name and not target["offset"]:
                calls.add(target["name"])
        elif base in ("jal", "call", "tail", "j", "jalr") and target and not target["offset"]:
            if target["name"] != name:
                calls.add(target["name"])
        elif base == "jalr":
            indirect = True
    return calls, indirect


def analyse_stack(firmware: Firmware) -> StackReport:
    """Worst-case stack of the whole firmware, statically: GCC's frame of every function (-fstack-usage,
    via the .ci files of -fcallgraph-info=su) or, for functions GCC did not compile (assembly, libgcc), the
    sum of every push and sp decrement in their code; calls from the .ci files and from the machine code
    (bl / jal, and tail calls), so that library calls and assembly are followed too. Raises ReportError on
    recursion, an indirect call or a dynamic frame, where no bound exists."""
    folder = firmware.path.parent
    frames, calls, dynamic = _read_callgraph_info(folder)
    if not frames:
        raise ReportError(f"{folder}: no .ci files (build with {' '.join(STACK_FLAGS)})")
    code, addresses = _disassembly(firmware)
    with open(firmware.path, "rb") as f:
        elf = ELFFile(f)
        arch = "arm" if elf["e_machine"] == "EM_ARM" else "rv32"
        entry = elf["e_entry"] & ~1
        vectors = elf.get_section_by_name(".isr_vector")
        vector_words = [int(v) & ~1 for v in np.frombuffer(vectors.data(), dtype="<u4")] if vectors else []
        symtab = elf.get_section_by_name(".symtab")
        default = next((s["st_value"] & ~1 for s in (symtab.iter_symbols() if symtab is not None else [])
                        if s.name == "Default_Handler"), None)
    unknown: list[str] = []
    indirect: set[str] = set()
    for name, insns in code.items():
        machine_calls, makes_indirect_calls = _machine_calls(name, insns, arch)
        calls.setdefault(name, set()).update(machine_calls)
        if makes_indirect_calls:
            indirect.add(name)
        if name not in frames:
            frame = _machine_frame(insns, arch)
            if frame is None:
                unknown.append(name)
            frames[name] = frame or 0

    worst: dict[str, tuple[int, list[str]]] = {}

    def deepest(name: str, active: tuple[str, ...]) -> tuple[int, list[str]]:
        if name in active:
            raise ReportError(f"recursion {' > '.join([*active[active.index(name):], name])}: "
                              "the stack is unbounded")
        if name not in worst:
            if name in dynamic:
                raise ReportError(f"{name} has a dynamic stack frame: its stack cannot be bounded statically")
            best = (0, [])
            for callee in sorted(calls.get(name, ())):
                if callee in code or callee in frames:
                    best = max(best, deepest(callee, (*active, name)), key=lambda t: t[0])
            worst[name] = (frames.get(name, 0) + best[0], [name, *best[1]])
        return worst[name]

    if entry not in addresses:
        raise ReportError(f"{firmware.path}: no function at the entry point 0x{entry:x}")
    total, path = deepest(addresses[entry], ())
    reachable = set(worst)
    # Arm M-profile: an exception handler (other than the default one, which only parks the core) runs on
    # the same stack on top of whatever the program was doing.
    handlers = {addresses[v] for v in vector_words[2:] if v and v != default and v in addresses}
    interrupt = ARM_EXCEPTION_FRAME + max(deepest(h, ())[0] for h in handlers) if handlers else 0
    train = deepest("onw_train", ())[0] if "onw_train" in code else 0
    if indirect & set(worst):
        raise ReportError(f"{', '.join(sorted(indirect & set(worst)))} make indirect calls: the stack cannot be "
                          "bounded statically")
    unsure = sorted(set(unknown) & set(worst))
    if unsure:
        raise ReportError(f"{', '.join(unsure)} move the stack pointer by a register amount: no static bound")
    return StackReport(total + interrupt, path, interrupt, {n: frames.get(n, 0) for n in sorted(reachable)},
                       train)


# -- RAM ---------------------------------------------------------------------------------------------------

def inference_ram(model: InitialModel) -> dict[str, int]:
    """What an inference needs: the weights, the input, the output and the hidden activations in two
    ping-pong buffers (hidden layer l writes buffer l % 2 while it reads the other, or the input): one as wide
    as the widest odd hidden layer, one as the widest even one (none with a single hidden layer)."""
    dims = model.dims
    hidden = [int(h) for h in dims[1:-1]]
    ping, pong = max(hidden[0::2], default=0), max(hidden[1::2], default=0)
    return {"weights": 2 * model.num_weights, "input": 2 * dims[0], "activations": 2 * (ping + pong),
            "output": 2 * dims[-1]}


def training_ram(size: SizeReport) -> dict[str, int]:
    symbols = size.symbols
    parts = {"state": symbols.get("onw_state", 0), "rule_buffers": size.training_activations,
             "io_buffers": sum(symbols.get(s, 0) for s in IO_BUFFERS)}
    parts["other"] = size.ram - sum(parts.values())
    return parts


# -- the report --------------------------------------------------------------------------------------------

def collect(spec_path: Path, target: str, build_dir: Path) -> dict[str, Any]:
    """Every figure of the report, as the JSON object (see the module docstring for the keys)."""
    data, model = prepare(load_spec(Path(spec_path)))
    return collect_model(model, data, target, build_dir)


def collect_model(model: InitialModel, data: Dataset, target: str, build_dir: Path) -> dict[str, Any]:
    """collect() for a model already made (a sweep's run)."""
    spec = model.spec
    firmware = build_variant(model, target, build_dir)
    portable = build_variant(model, target, build_dir, portable=True)
    size = size_report(firmware)
    stack = analyse_stack(firmware)
    counts = count_instructions(firmware, model, data)
    counts_portable = count_instructions(portable, model, data)
    inference = inference_ram(model)
    training = training_ram(size)
    cpu = board_cpu(firmware) or ("rv32" if "riscv" in firmware.board.cc else "?")
    clock = firmware.board.config.get("clock_hz")
    return {
        "spec": spec.name, "target": target, "cpu": cpu,
        "kernel": "dsp" if has_dsp_kernels(firmware) else "portable",
        "flash_bytes": size.flash,
        "flash_without_weights_bytes": size.flash - symbol_size(firmware, INITIAL_WEIGHTS),
        "ram_static_bytes": size.ram,
        "stack_worst_bytes": stack.worst,
        "stack_worst_path": stack.path,
        "stack_interrupt_bytes": stack.interrupt,
        "stack_train_bytes": stack.train,
        "stack_train_measured_bytes": counts.train_stack,
        "ram_with_stack_bytes": size.ram + stack.worst,
        "part_flash_bytes": firmware.board.config["flash_bytes"],
        "part_ram_bytes": firmware.board.config["ram_bytes"],
        "clock_hz": clock,
        "us_per_inference": None if clock is None else round(counts.inference / clock * 1e6, 1),
        "us_per_training_step": None if clock is None else round(counts.training_step / clock * 1e6, 1),
        "instructions_per_inference": counts.inference,
        "instructions_per_training_step": counts.training_step,
        "instructions_dense_64x64": counts.dense_64x64,
        "instructions_per_mac": counts.per_mac,
        "instructions_per_inference_portable": counts_portable.inference,
        "instructions_per_training_step_portable": counts_portable.training_step,
        "instructions_dense_64x64_portable": counts_portable.dense_64x64,
        "instructions_per_mac_portable": counts_portable.per_mac,
        "macs_per_inference": int(sum(a * b for a, b in zip(model.dims[:-1], model.dims[1:], strict=True))),
        "inference_ram_bytes": sum(inference.values()),
        "inference_ram": inference,
        "training_ram_bytes": size.ram,
        "training_ram": training,
        "persist_flash_bytes": persist_flash(model, firmware),
        "frontend_flash_bytes": sum(symbol_size(firmware, n) for n in FRONTEND_CONSTANTS),
        "frontend_ram_bytes": sum(v for k, v in model.ram.items() if k.startswith("frontend_")),
        "instructions_frontend": counts.frontend,
        "queries_per_training_step": counts.queries,
        "query_bytes_per_training_step": counts.query_bytes,
    }


def persist_flash(model: InitialModel, firmware: Firmware) -> int:
    """The flash a [persist] build keeps its saved state in: two slots of whole pages (host/persist.py); 0 without."""
    if not model.spec.persist.enabled:
        return 0
    page = int(firmware.board.config["flash_page"])
    return 2 * persist.slot_pages(len(make_fixed(model).state_bytes()), page) * page


def format_report(r: dict[str, Any]) -> str:
    def row(label: str, value: object) -> str:
        return f"{label:<58}{value:>14}"

    kernel = "SMLALD kernel" if r["kernel"] == "dsp" else "portable C kernel"
    tr, inf = r["training_ram"], r["inference_ram"]
    lines = [
        f"{r['spec']} on {r['target']} ({r['cpu']}, {kernel})",
        row("flash (text + rodata + data)", f"{r['flash_bytes']} B"),
        row("  of which not the initial weights", f"{r['flash_without_weights_bytes']} B"),
        row("RAM, static (data + bss)", f"{r['ram_static_bytes']} B"),
        row("stack, worst case (static analysis, interrupt included)", f"{r['stack_worst_bytes']} B"),
        f"  path: {' > '.join(r['stack_worst_path'])}"
        + (f" (+ {r['stack_interrupt_bytes']} B interrupt)" if r["stack_interrupt_bytes"] else ""),
        row("stack of onw_train: worst case / measured", f"{r['stack_train_bytes']} / "
            f"{r['stack_train_measured_bytes']} B"),
        row("RAM with the worst-case stack", f"{r['ram_with_stack_bytes']} B"),
        row("of the board's flash / RAM", f"{_percent(r['flash_bytes'], r['part_flash_bytes'])} / "
            f"{_percent(r['ram_with_stack_bytes'], r['part_ram_bytes'])}"),
        row("instructions per inference", r["instructions_per_inference"]),
        row("instructions per training step", r["instructions_per_training_step"]),
        *([row(f"time at {r['clock_hz'] / 1e6:g} MHz: inference / training step",
               f"{r['us_per_inference']} / {r['us_per_training_step']} us"),
           "  (one cycle per instruction: a lower bound)"] if r["clock_hz"] else []),
        row(f"instructions per MAC, dense 64x64 ({r['kernel']})", _per_mac(r["instructions_per_mac"])),
        row("instructions per inference, portable C", r["instructions_per_inference_portable"]),
        row("instructions per training step, portable C", r["instructions_per_training_step_portable"]),
        row("instructions per MAC, dense 64x64, portable C", _per_mac(r["instructions_per_mac_portable"])),
        row("inference RAM (weights + input + activations + output)", f"{r['inference_ram_bytes']} B"),
        f"  weights {inf['weights']} B, input {inf['input']} B, activations {inf['activations']} B, "
        f"output {inf['output']} B",
        row("training RAM (static RAM of this firmware)", f"{r['training_ram_bytes']} B"),
        f"  state {tr['state']} B, rule buffers {tr['rule_buffers']} B, I/O buffers {tr['io_buffers']} B, "
        f"other {tr['other']} B",
        *([row("flash for the saved state ([persist]: A and B slots)", f"{r['persist_flash_bytes']} B")]
          if r.get("persist_flash_bytes") else []),
        *([row("frozen .tflite extractor: flash / RAM", f"{r['frontend_flash_bytes']} / "
               f"{r['frontend_ram_bytes']} B"),
           row("  its instructions, in each inference and training step", r["instructions_frontend"])]
          if r.get("frontend_ram_bytes") else []),
        *([row("instrument queries per training step (QUERY/ANSWER)", r["queries_per_training_step"]),
           row("  their frames, both ways", f"{r['query_bytes_per_training_step']} B")]
          if r.get("queries_per_training_step") else []),
    ]
    return "\n".join(lines)


def _percent(used: int, total: int) -> str:
    return f"{100 * used / total:.1f} % of {total // 1024} KB"


def _per_mac(value: float | None) -> str:
    return "— (no onw_dense)" if value is None else f"{value:.3f}"


def report(spec_path: Path, target: str, build_dir: Path, as_json: bool) -> int:
    """Print the report of one spec on one target (a table, or one JSON object with `as_json`); return 0.
    Raises SpecError for a bad spec and BuildError (ReportError) for a build or measurement failure."""
    figures = collect(spec_path, target, build_dir)
    if as_json:
        json.dump(figures, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_report(figures))
    return 0
