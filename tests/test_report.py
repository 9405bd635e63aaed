"""`onward report`: exact, repeatable figures measured on the built firmware (onward.report, onward.counting)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from onward.counting import Emulator
from onward.paths import EXAMPLES
from onward.report import ReportError, _machine_frame, build_variant, collect, report
from onward.session import prepare
from onward.spec import load_spec
from onward.targets.build import TARGETS, build_firmware

# A missing cross compiler fails these tests loudly (scripts/setup.sh installs it), never skips them.
assert shutil.which("arm-none-eabi-gcc") is not None, "needs arm-none-eabi-gcc: run scripts/setup.sh"

SPEC = EXAMPLES / "digits_pepita.toml"
KEYS = {
    "spec", "target", "cpu", "kernel", "flash_bytes", "flash_without_weights_bytes", "ram_static_bytes",
    "stack_worst_bytes", "stack_worst_path",
    "stack_interrupt_bytes", "stack_train_bytes", "stack_train_measured_bytes", "ram_with_stack_bytes",
    "instructions_per_inference", "instructions_per_training_step", "instructions_dense_64x64",
    "instructions_per_mac", "instructions_per_inference_portable", "instructions_per_training_step_portable",
    "instructions_dense_64x64_portable", "instructions_per_mac_portable", "macs_per_inference",
    "inference_ram_bytes", "inference_ram", "training_ram_bytes", "training_ram", "part_flash_bytes",
    "part_ram_bytes", "clock_hz", "us_per_inference", "us_per_training_step", "persist_flash_bytes",
    "frontend_flash_bytes", "frontend_ram_bytes", "instructions_frontend", "queries_per_training_step",
    "query_bytes_per_training_step",
}


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report")


@pytest.fixture(scope="module")
def m4(build_dir: Path) -> dict[str, Any]:
    return collect(SPEC, "qemu-m4", build_dir)


def test_figures_are_repeatable(m4: dict[str, Any], build_dir: Path) -> None:
    """A second report (new emulator, cached build) gives every figure again, to the instruction."""
    assert collect(SPEC, "qemu-m4", build_dir) == m4


def test_dsp_kernel_on_the_m4(m4: dict[str, Any]) -> None:
    assert m4["kernel"] == "dsp" and m4["cpu"] == "cortex-m4"
    assert m4["instructions_per_mac"] <= 1.0
    assert m4["instructions_per_mac"] < m4["instructions_per_mac_portable"]
    assert m4["instructions_per_inference"] < m4["instructions_per_inference_portable"]
    assert m4["instructions_per_training_step"] < m4["instructions_per_training_step_portable"]
    assert m4["instructions_per_mac"] == round(m4["instructions_dense_64x64"] / 4096, 4)
    assert m4["macs_per_inference"] == 64 * 64 + 64 * 10


def test_json_has_every_documented_key(m4: dict[str, Any], build_dir: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert report(SPEC, "qemu-m4", build_dir, as_json=True) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == KEYS
    assert printed == json.loads(json.dumps(m4))
    import onward.report as module
    for key in KEYS - {"spec", "target", "cpu", "kernel"}:
        assert key.split("_portable")[0] in (module.__doc__ or ""), f"{key} is not documented"
    assert report(SPEC, "qemu-m4", build_dir, as_json=False) == 0
    table = capsys.readouterr().out
    assert "instructions per MAC" in table and str(m4["instructions_per_training_step"]) in table


def test_flash_without_the_weights(m4: dict[str, Any]) -> None:
    _, model = prepare(load_spec(SPEC))
    assert m4["flash_without_weights_bytes"] == m4["flash_bytes"] - 2 * model.num_weights  # onw_weights_init


def test_ram_figures(m4: dict[str, Any]) -> None:
    _, model = prepare(load_spec(SPEC))
    assert m4["inference_ram_bytes"] < m4["training_ram_bytes"] == m4["ram_static_bytes"]
    assert m4["inference_ram"] == {"weights": 2 * model.num_weights, "input": 128, "activations": 128,
                                   "output": 20}
    assert sum(m4["training_ram"].values()) == m4["training_ram_bytes"]
    assert m4["training_ram"]["state"] == 16 + 2 * model.num_weights
    assert m4["training_ram"]["rule_buffers"] == 2 * (64 + 10) + 2 * 2 * 64 + 2 * 10  # PEPITA's buffers


def test_inference_ram_of_deeper_models() -> None:
    from helpers import make_spec
    from onward.data import load_dataset
    from onward.model import init_model
    from onward.report import inference_ram

    spec = make_spec(model={"hidden": [16, 40, 8, 30]})  # 12 inputs, 4 classes
    ram = inference_ram(init_model(spec, load_dataset(spec)))
    assert ram["activations"] == 2 * (16 + 40)  # odd layers share one buffer (16, 8), even ones the other
    assert ram["input"] == 24 and ram["output"] == 8


def test_stack_bound_holds(m4: dict[str, Any]) -> None:
    """The static worst case covers what the emulated training step used, on the path through the protocol."""
    assert m4["stack_train_bytes"] >= m4["stack_train_measured_bytes"] > 0
    path = m4["stack_worst_path"]
    # from the reset vector to the training step (link-time optimisation inlines main and onw_serve on the way)
    assert path[0] == "Reset_Handler" and "onw_train" in path
    assert m4["stack_worst_bytes"] >= m4["stack_train_bytes"] + m4["stack_interrupt_bytes"]
    assert m4["stack_interrupt_bytes"] == 36  # the mps2 port's SysTick interrupt
    assert m4["ram_with_stack_bytes"] == m4["ram_static_bytes"] + m4["stack_worst_bytes"]


def test_the_measured_build_is_onward_builds(build_dir: Path) -> None:
    """-fstack-usage/-fcallgraph-info change no code: the report measures the firmware `onward build` makes."""
    _, model = prepare(load_spec(SPEC))
    plain = build_firmware(model, "qemu-m4", build_dir / "plain")
    measured = build_variant(model, "qemu-m4", build_dir)

    def image(path: Path) -> dict[str, bytes]:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            return {s.name: s.data() for s in elf.iter_sections() if s.name in (".isr_vector", ".text", ".rodata",
                                                                                ".data")}

    assert image(plain.path) == image(measured.path)


@pytest.mark.parametrize("target", ["qemu-m0", "qemu-m3"])
def test_cores_without_dsp_use_the_portable_kernel(target: str, build_dir: Path) -> None:
    assert target in TARGETS
    r = collect(SPEC, target, build_dir)
    assert r["kernel"] == "portable"
    for key in ("instructions_per_mac", "instructions_per_inference", "instructions_per_training_step"):
        assert r[key] == r[f"{key}_portable"]
    assert r["stack_train_bytes"] >= r["stack_train_measured_bytes"]


def test_rv32(build_dir: Path) -> None:
    assert "qemu-rv32" in TARGETS
    assert shutil.which("riscv64-unknown-elf-gcc") is not None, "no RISC-V compiler: scripts/setup.sh installs it"
    r = collect(SPEC, "qemu-rv32", build_dir)
    assert r["cpu"] == "rv32" and r["kernel"] == "portable"
    assert r["stack_worst_path"][0] == "_start" and r["stack_interrupt_bytes"] == 0
    assert r["stack_train_bytes"] >= r["stack_train_measured_bytes"] > 0


def test_native_is_refused(build_dir: Path) -> None:
    with pytest.raises(ReportError, match="measures bare-metal firmware; native is not"):
        collect(SPEC, "native", build_dir)


def test_counting_does_not_depend_on_what_ran_before(build_dir: Path) -> None:
    """Unicorn instruments code when it translates it: code first run uncounted must be counted later."""
    _, model = prepare(load_spec(SPEC))
    elf = build_variant(model, "qemu-m4", build_dir).path
    fresh = Emulator(elf)
    fresh.call("onw_reset", [1], count=False)
    reference = fresh.call("onw_state_digest").instructions
    warmed = Emulator(elf)
    warmed.call("onw_reset", [1], count=False)
    for _ in range(2):
        warmed.call("onw_state_digest", count=False)
        assert warmed.call("onw_state_digest").instructions == reference > 10000


def test_it_blocks_count_only_executed_instructions(tmp_path: Path) -> None:
    """What the counts mean in an IT block: unicorn reports only the instructions whose condition passes."""
    (tmp_path / "it.s").write_text(
        ".syntax unified\n.thumb\n.global f\n.type f, %function\n.thumb_func\nf:\n"
        "  cmp r0, #0\n  ite eq\n  moveq r1, #1\n  movne r1, #2\n  itt eq\n  addeq r1, r1, #5\n  addeq r1, r1, #5\n"
        "  mov r0, r1\n  bx lr\n")
    subprocess.run(["arm-none-eabi-as", "-mcpu=cortex-m4", "-mthumb", "it.s", "-o", "it.o"], cwd=tmp_path,
                   check=True)
    subprocess.run(["arm-none-eabi-ld", "-Ttext=0x0", "-e", "f", "--defsym=_estack=0x20001000",
                    "--defsym=_sstack=0x20000000", "it.o", "-o", "it.elf"], cwd=tmp_path, check=True)
    emu = Emulator(tmp_path / "it.elf", "cortex-m4")
    taken = emu.call("f", [0])
    skipped = emu.call("f", [1])
    assert (taken.result, skipped.result) == (11, 2)
    assert (taken.instructions, skipped.instructions) == (8, 6)  # of 9 in the code: 1 and 3 skipped


def test_arguments_past_the_fourth_go_on_the_stack(tmp_path: Path) -> None:
    (tmp_path / "args.s").write_text(
        ".syntax unified\n.thumb\n.global f\n.type f, %function\n.thumb_func\nf:\n"
        "  ldr r0, [sp]\n  ldr r1, [sp, #4]\n  add r0, r0, r1, lsl #8\n  add r0, r0, r3, lsl #16\n  bx lr\n")
    subprocess.run(["arm-none-eabi-as", "-mcpu=cortex-m4", "-mthumb", "args.s", "-o", "args.o"], cwd=tmp_path,
                   check=True)
    subprocess.run(["arm-none-eabi-ld", "-Ttext=0x0", "-e", "f", "--defsym=_estack=0x20001000",
                    "args.o", "-o", "args.elf"], cwd=tmp_path, check=True)
    assert Emulator(tmp_path / "args.elf", "cortex-m4").call("f", [0, 0, 0, 3, 1, 2]).result == 0x30201


def test_machine_frames_count_pushes_and_pre_decrementing_stores() -> None:
    # libgcc's __aeabi_ldivmod saves ip and lr with `strd ..., [sp, #-16]!` (FFzero's divisions reach it)
    code = [("sub.w", "ip, sp, #8"), ("strd", "ip, lr, [sp, #-16]!"), ("bl", "1360 <__udivmoddi4>")]
    assert _machine_frame(code, "arm") == 16
    assert _machine_frame([("push", "{r4, r5, r6, lr}"), ("sub", "sp, #8")], "arm") == 24
    assert _machine_frame([("sub", "sp, r3")], "arm") is None
