"""Flash and RAM of a firmware image, read from the ELF (`size -A`, `nm -S`), and the training buffers."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from onward.targets.build import Firmware

FLASH_SECTIONS = (".isr_vector", ".text", ".rodata", ".ARM.exidx", ".data")
RAM_SECTIONS = (".data", ".bss")


@dataclass(frozen=True)
class SizeReport:
    sections: dict[str, int]
    symbols: dict[str, int]  # every static buffer of the runtime (codegen.static_ram names them): bytes
    rule_buffers: tuple[str, ...] = ()  # the learning rule's buffers among them

    @property
    def flash(self) -> int:
        return sum(self.sections.get(s, 0) for s in FLASH_SECTIONS)

    @property
    def ram(self) -> int:
        return sum(self.sections.get(s, 0) for s in RAM_SECTIONS)

    @property
    def training_activations(self) -> int:
        """RAM the learning rule needs beyond inference: its activation buffers."""
        return sum(self.symbols.get(s, 0) for s in self.rule_buffers)


def _tool(firmware: Firmware, name: str) -> str:
    cc = firmware.board.cc
    return cc[: -len("gcc")] + name if cc.endswith("gcc") else name


def size_report(firmware: Firmware) -> SizeReport:
    out = subprocess.run([_tool(firmware, "size"), "-A", str(firmware.path)], check=True,
                         capture_output=True, text=True).stdout
    sections = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    out = subprocess.run([_tool(firmware, "nm"), "-S", str(firmware.path)], check=True,
                         capture_output=True, text=True).stdout
    symbols = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] in firmware.buffers:
            symbols[parts[3]] = int(parts[1], 16)
    return SizeReport(sections, symbols, firmware.rule_buffers)
