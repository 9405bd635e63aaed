"""Static RAM of PEPITA vs MEMPEPITA firmware for MLPs of growing depth, read from the qemu-m4 ELF.

    python bench/memory.py

`activations` = the rule's training buffers (nm -S); RAM = .data + .bss; flash = text + rodata + data."""

from __future__ import annotations

import tempfile
from pathlib import Path

from onward.data import load_dataset
from onward.model import init_model
from onward.size import size_report
from onward.spec import parse_spec
from onward.targets.build import build_firmware


def main() -> None:
    print("| hidden layers | rule | activations (B) | weights in RAM (B) | RAM total (B) | flash (B) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for depth in (1, 2, 3, 4):
            for rule in ("pepita", "mempepita"):
                spec = parse_spec({"name": f"{rule}{depth}", "seed": 1, "model": {"hidden": [128] * depth},
                                   "data": {"set": "digits"}, "rule": {"name": rule},
                                   "format": {"activation_frac": 10, "weight_frac": 12}})
                model = init_model(spec, load_dataset(spec))
                report = size_report(build_firmware(model, "qemu-m4", Path(tmp)))
                print(f"| {'x'.join(['128'] * depth)} | {rule} | {report.training_activations} | "
                      f"{report.symbols['onw_state']} | {report.ram} | {report.flash} |")


if __name__ == "__main__":
    main()
