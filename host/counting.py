"""Count executed instructions of functions of a built firmware ELF, repeatably to the instruction.

The ELF is loaded into the `unicorn` CPU emulator (QEMU's CPU models as a library) the way a debugger or
QEMU's `-kernel` loader would: every PT_LOAD segment's file image is written at its load address (LMA) and
at its run address (VMA), and the rest of each segment (.bss) is zeroed. That is exactly the memory the
board's Reset_Handler leaves behind after copying .data and zeroing .bss, so no startup code is run: functions
are called directly, by symbol, with their arguments in registers (and on the stack past the fourth on Arm,
per the AAPCS), and the return address set to a magic address where emulation stops.

Counting: a UC_HOOK_CODE hook fires once per executed instruction. Within a Thumb-2 IT block, unicorn only
reports an instruction whose condition passes (a skipped one is translated as a branch around it), so
conditionally skipped instructions are not counted; conditional branches are counted whether taken or not.
The count is deterministic: the same call on the same state gives the same number every time.

Stack: the free stack is painted with a pattern before the call and scanned afterwards; the lowest word that
changed gives the peak stack depth of that call (measured, for that input; see onward.report for the static
worst case).

Supported: Arm M-profile (Cortex-M0/M3/M4/M7, Thumb) and RV32 (RISC-V, unicorn's RV32 with the C extension).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from onward.errors import OnwardError

PAGE = 0x1000
MAGIC_RETURN = 0x0FFF_0000  # an otherwise unmapped page where every call returns to; emulation stops there
SCRATCH = 0x6000_0000  # memory for arguments (`alloc`), outside every board's flash and RAM
SCRATCH_BYTES = 1 << 20
STACK_PATTERN = b"\xa5\x5a\xc3\x3c"
DEFAULT_STACK = 64 * 1024  # mapped below the initial SP when the ELF does not say where its stack ends

ARM_CPUS = {"cortex-m0": "UC_CPU_ARM_CORTEX_M0", "cortex-m0plus": "UC_CPU_ARM_CORTEX_M0",
            "cortex-m3": "UC_CPU_ARM_CORTEX_M3", "cortex-m4": "UC_CPU_ARM_CORTEX_M4",
            "cortex-m7": "UC_CPU_ARM_CORTEX_M7", "cortex-m33": "UC_CPU_ARM_CORTEX_M33"}
# Tag_CPU_name holds the architecture when the build named none of the CPUs above: its smallest CPU
ARM_ARCH_CPUS = {"6-m": "cortex-m0", "6s-m": "cortex-m0", "7-m": "cortex-m3", "7e-m": "cortex-m4",
                 "8-m.main": "cortex-m33"}


class CountingError(OnwardError, RuntimeError):
    pass


@dataclass(frozen=True)
class Call:
    """One emulated call: executed instructions, the return value (r0 / a0) and the peak stack depth in bytes
    (from the SP at the call, arguments passed on the stack included)."""

    instructions: int
    result: int
    stack: int


def _align_down(x: int) -> int:
    return x & ~(PAGE - 1)


def _align_up(x: int) -> int:
    return (x + PAGE - 1) & ~(PAGE - 1)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted((_align_down(a), _align_up(b)) for a, b in ranges if b > a):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def elf_cpu(elf_path: Path) -> str | None:
    """The CPU of the ELF's Arm build attributes (Tag_CPU_name: 'cortex-m4', or an architecture such as '7E-M',
    taken as its first CPU), if any."""
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        if elf["e_machine"] != "EM_ARM":
            return None
        sec = elf.get_section_by_name(".ARM.attributes")
        if sec is None:
            return None
        for sub in getattr(sec, "subsections", []):
            for subsub in getattr(sub, "subsubsections", []):
                for attr in getattr(subsub, "attributes", []):
                    if attr.tag == "TAG_CPU_NAME":
                        name = str(attr.value).strip('"').lower()
                        return ARM_ARCH_CPUS.get(name, name)
    return None


class Emulator:
    """A firmware ELF loaded into unicorn, ready for `call`s. `cpu` is the -mcpu name ('cortex-m4'); by
    default the ELF's build attributes say which. State persists between calls (like the device's RAM)."""

    def __init__(self, elf_path: Path | str, cpu: str | None = None, stack_bytes: int | None = None) -> None:
        import unicorn
        import unicorn.arm_const as arm
        import unicorn.riscv_const as rv

        self.path = Path(elf_path)
        data = self.path.read_bytes()
        with open(self.path, "rb") as f:
            elf = ELFFile(f)
            machine = elf["e_machine"]
            self.symbols = _symbols(elf)
            segments = [(s["p_vaddr"], s["p_paddr"], s["p_memsz"], s["p_filesz"], s["p_offset"])
                        for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        if machine == "EM_ARM":
            self.arch = "arm"
            cpu = cpu or elf_cpu(self.path) or "cortex-m4"
            if cpu not in ARM_CPUS:
                raise CountingError(f"unsupported Arm CPU {cpu!r}; expected one of {', '.join(ARM_CPUS)}")
            self.uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
            self.uc.ctl_set_cpu_model(getattr(arm, ARM_CPUS[cpu]))
            self._sp, self._lr, self._pc = arm.UC_ARM_REG_SP, arm.UC_ARM_REG_LR, arm.UC_ARM_REG_PC
            self._args = [arm.UC_ARM_REG_R0, arm.UC_ARM_REG_R1, arm.UC_ARM_REG_R2, arm.UC_ARM_REG_R3]
            self._ret = arm.UC_ARM_REG_R0
        elif machine == "EM_RISCV" and elf.elfclass == 32:
            self.arch = "rv32"
            self.uc = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV32)
            self._sp, self._lr, self._pc = rv.UC_RISCV_REG_SP, rv.UC_RISCV_REG_RA, rv.UC_RISCV_REG_PC
            self._gp = rv.UC_RISCV_REG_GP
            self._args = [getattr(rv, f"UC_RISCV_REG_A{i}") for i in range(8)]
            self._ret = rv.UC_RISCV_REG_A0
        else:
            raise CountingError(f"{self.path}: unsupported machine {machine} (Arm M-profile or RV32 only)")
        self.cpu = cpu if self.arch == "arm" else "rv32"
        self._unicorn = unicorn

        # Where the stack is: the linker script's _estack/_sstack, else the Arm vector table's initial SP
        top = self.symbols.get("_estack") or self.symbols.get("__stack_top") or self.symbols.get("_stack_top")
        if top is None and self.arch == "arm":
            top = self._initial_sp(data, segments)
        if top is None:
            raise CountingError(f"{self.path}: cannot tell where the stack is (no _estack symbol)")
        bottom = self.symbols.get("_sstack")
        if bottom is None:
            bottom = top - (stack_bytes or DEFAULT_STACK)
        self.stack_top, self.stack_bottom = top, bottom

        ranges = [(v, v + m) for v, _, m, _, _ in segments] + [(p, p + fs) for _, p, _, fs, _ in segments]
        ranges += [(bottom, top), (MAGIC_RETURN, MAGIC_RETURN + PAGE)]
        regions = _merge(ranges)
        if any(lo < SCRATCH + SCRATCH_BYTES and SCRATCH < hi for lo, hi in regions):
            raise CountingError(f"{self.path}: the firmware uses the scratch area at 0x{SCRATCH:08x}")
        for lo, hi in [*regions, (SCRATCH, SCRATCH + SCRATCH_BYTES)]:
            self.uc.mem_map(lo, hi - lo)
        self._scratch_next = SCRATCH
        for vaddr, paddr, memsz, filesz, offset in segments:
            image = data[offset:offset + filesz]
            self.uc.mem_write(paddr, image)  # the load image (.data's lies in flash)...
            self.uc.mem_write(vaddr, image + bytes(memsz - filesz))  # ...and after the startup copy / zeroing

        self._count = 0
        self._hook = None
        self._intercepts: dict[int, Callable[[Emulator], int]] = {}

    def _initial_sp(self, data: bytes, segments: list[tuple[int, int, int, int, int]]) -> int | None:
        for _vaddr, paddr, _memsz, filesz, offset in segments:
            if paddr == 0 and filesz >= 4:
                return int(struct.unpack_from("<I", data, offset)[0])
        return None

    # -- memory --------------------------------------------------------------------------------------
    def address(self, name: str) -> int:
        try:
            return self.symbols[name]
        except KeyError:
            raise CountingError(f"{self.path.name}: no symbol {name!r}") from None

    def alloc(self, data: bytes | int, align: int = 8, offset: int = 0) -> int:
        """Scratch memory outside the firmware's: `data` (or that many zero bytes) at an address that is
        `offset` bytes past a multiple of `align` (offset=2 gives an int16 array that is not 4-byte aligned)."""
        blob = bytes(data)  # bytes(n) is n zero bytes
        address = -(-self._scratch_next // align) * align + offset
        if address + len(blob) > SCRATCH + SCRATCH_BYTES:
            raise CountingError("scratch memory exhausted (call reset_scratch)")
        self.write(address, blob)
        self._scratch_next = address + len(blob)
        return address

    def reset_scratch(self) -> None:
        self._scratch_next = SCRATCH

    def read(self, address: int, size: int) -> bytes:
        return bytes(self.uc.mem_read(address, size))

    def write(self, address: int, data: bytes) -> None:
        self.uc.mem_write(address, bytes(data))

    # -- calls ---------------------------------------------------------------------------------------
    def intercept(self, function: str, handler: Callable[[Emulator], int]) -> None:
        """Run `handler(emulator)` in Python instead of `function` whenever the firmware calls it: the handler reads
        the arguments (`arg`) and memory, and its return value is the function's. Its instructions are not counted:
        what it stands for happens outside the core (a link to the host: onward.instrument's queries), but for the
        function's first instruction, which the counting hook sees before the call returns."""
        address = self.address(function)
        self._intercepts[address] = handler
        self.uc.hook_add(self._unicorn.UC_HOOK_CODE, self._on_intercept, begin=address, end=address)
        self.uc.ctl_flush_tb()

    def arg(self, index: int) -> int:
        """Argument `index` (< 4 on Arm) of the call being intercepted."""
        return int(self.uc.reg_read(self._args[index]))

    def _on_intercept(self, uc: object, address: int, size: int, user: object) -> None:
        handler = self._intercepts.get(address)
        if handler is None:
            return
        result = handler(self)
        self.uc.reg_write(self._ret, result & 0xFFFFFFFF)
        self.uc.reg_write(self._pc, self.uc.reg_read(self._lr))  # return at once

    def call(self, function: str | int, args: Sequence[int] = (), count: bool = True,
             max_instructions: int = 200_000_000) -> Call:
        """Call `function` (a symbol or an address) with integer arguments (each 32 bits); count its executed
        instructions (count=False runs without the hook, much faster). Returns when it returns."""
        uc = self.uc
        address = self.address(function) if isinstance(function, str) else function
        args = [a & 0xFFFFFFFF for a in args]
        sp = (self.stack_top - 8) & ~7
        regs, stacked = args[:len(self._args)], args[len(self._args):]
        if stacked:
            sp = (sp - 4 * len(stacked)) & ~7
            uc.mem_write(sp, struct.pack(f"<{len(stacked)}I", *stacked))
        for reg, value in zip(self._args, regs, strict=False):
            uc.reg_write(reg, value)
        uc.reg_write(self._sp, sp)
        if self.arch == "rv32" and "__global_pointer$" in self.symbols:
            uc.reg_write(self._gp, self.symbols["__global_pointer$"])  # what _start sets: gp-relative data
        thumb = 1 if self.arch == "arm" else 0
        uc.reg_write(self._lr, MAGIC_RETURN | thumb)
        self.write(self.stack_bottom, STACK_PATTERN * ((sp - self.stack_bottom) // 4))
        self._count = 0
        self._set_hook(count)
        try:
            uc.emu_start(address | thumb, MAGIC_RETURN, count=max_instructions)
        except self._unicorn.UcError as e:
            pc = uc.reg_read(self._pc)
            raise CountingError(f"{self.path.name}: {function} faulted at pc=0x{pc:08x} "
                                f"({self.symbol_at(pc)}): {e}") from None
        pc = uc.reg_read(self._pc)
        if pc & ~1 != MAGIC_RETURN:
            raise CountingError(f"{self.path.name}: {function} did not return within {max_instructions} "
                                f"instructions (pc=0x{pc:08x}, {self.symbol_at(pc)})")
        used = self.read(self.stack_bottom, sp - self.stack_bottom)
        low = next((i for i in range(0, len(used), 4) if used[i:i + 4] != STACK_PATTERN), len(used))
        return Call(self._count, uc.reg_read(self._ret), sp + 4 * len(stacked) - (self.stack_bottom + low))

    def _set_hook(self, on: bool) -> None:
        """Install or remove the counting hook. Unicorn instruments code when it translates it, so the cache of
        translated blocks is flushed whenever the hook changes: else blocks translated without the hook
        would run uncounted (or blocks translated with it would keep calling it)."""
        if on == (self._hook is not None):
            return
        if on:
            self._hook = self.uc.hook_add(self._unicorn.UC_HOOK_CODE, self._on_code)
        else:
            self.uc.hook_del(self._hook)
            self._hook = None
        self.uc.ctl_flush_tb()

    def _on_code(self, uc: object, address: int, size: int, user: object) -> None:
        self._count += 1

    def symbol_at(self, address: int) -> str:
        """The function symbol at or before address, for error messages."""
        best, name = -1, "?"
        for sym, value in self.symbols.items():
            if best < value <= address:
                best, name = value, sym
        return f"{name}+0x{address - best:x}" if best >= 0 else name


def _symbols(elf: ELFFile) -> dict[str, int]:
    out: dict[str, int] = {}
    for sec in elf.iter_sections():
        if isinstance(sec, SymbolTableSection):
            for sym in sec.iter_symbols():
                if sym.name and not sym.name.startswith("$") and \
                        sym["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE"):
                    value = sym["st_value"]
                    if sym["st_info"]["type"] == "STT_FUNC":
                        value &= ~1  # the Thumb bit: addresses, not branch targets
                    out.setdefault(sym.name, value)
    return out
