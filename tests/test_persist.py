"""The learned state in flash (A/B slots, host/persist.py and firmware/src/persist.c): flash semantics, the record
format bit for bit between the twins, SAVE / RESTORE / restore at boot, and power cuts at random points of saves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from helpers import make_spec
from onward import persist
from onward.data import load_dataset
from onward.model import InitialModel, init_model
from onward.protocol import Cmd, DeviceError, ProtocolError, encode_frame
from onward.reference import make_fixed, parse_state, training_stream
from onward.targets.build import BuildError, Firmware, build_firmware
from onward.targets.device import Device
from onward.targets.run import power_on

# --- the Python twin ------------------------------------------------------------------------------------------------

def test_flash_erases_to_ff_and_programming_only_clears_bits() -> None:
    flash = persist.Flash(page=64, pages=2)
    assert flash.read(0) == persist.ERASED
    flash.program(0, 0x0F0F00FF)
    flash.program(0, 0xFFFF0F0F)  # programming again ANDs: it cannot set a bit back
    assert flash.read(0) == 0x0F0F000F
    flash.erase(0)
    assert flash.read(0) == persist.ERASED and flash.ops == 3


def test_saves_alternate_slots_and_restore_takes_the_newest_valid() -> None:
    flash = persist.Flash(page=64, pages=4)
    assert persist.restore(flash, 70) is None
    states = [bytes(np.random.default_rng(i).integers(0, 256, 70, dtype=np.uint8)) for i in range(3)]
    for i, state in enumerate(states):
        assert persist.save(flash, state) == i + 1
        assert persist.restore(flash, 70) == (i + 1, state)
    assert persist.newest(flash, 70)[0] == 0  # saves 1 and 3 in slot A, 2 in B
    flash.data[persist.HEADER + 5] ^= 0x01  # a flipped bit in the newest record: its CRC fails
    assert persist.restore(flash, 70) == (2, states[1])
    assert persist.restore(flash, 71) is None  # a record of another state size is not ours


def test_every_cut_of_a_save_leaves_the_previous_or_the_new_state() -> None:
    """Exhaustive on the twin: a cut at each operation of a save (each erase and program) of a 3-page record."""
    size = 150
    old, new = b"\x11" * size, bytes(range(size))
    clean = persist.Flash(page=64, pages=2 * persist.slot_pages(size, 64))
    persist.save(clean, old)
    ops = clean.ops
    persist.save(clean, new)
    per_save = clean.ops - ops
    for cut in range(1, per_save + 1):
        flash = persist.Flash(page=64, pages=clean.pages, seed=cut)
        persist.save(flash, old)
        flash.cut_at = flash.ops + cut
        with pytest.raises(persist.PowerCut):
            persist.save(flash, new)
        got = persist.restore(flash, size)
        assert got in ((1, old), (2, new)), cut
        if cut < per_save:  # only the last operation, the magic, commits (whole or torn: the twin's seed decides)
            assert got == (1, old), cut


# --- the firmware -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[InitialModel, Firmware, list]:
    spec = make_spec(persist={"every": 0})
    data = load_dataset(spec)
    model = init_model(spec, data)
    firmware = build_firmware(model, "native", Path(tmp_path_factory.mktemp("build")))
    steps = [s for s in training_stream(model, data, 2) if s.kind == "train"]
    return model, firmware, steps


@contextmanager
def boot(firmware: Firmware, flash: Path, cut: int = 0, seed: int = 1) -> Iterator[Device]:
    """Power the board on with this flash file (and a power cut at the cut-th flash operation): native, or an
    emulated board with its semihosting flash file."""
    with power_on(firmware, flash, cut=cut, cut_seed=seed) as device:
        yield device


EMULATED = ["qemu-m0", "qemu-m4", "qemu-rv32"]  # a Cortex-M0 (1 KiB pages, 16 KB RAM), an M4, a RISC-V


@pytest.fixture(scope="module", params=EMULATED)
def emulated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             ) -> tuple[InitialModel, Firmware, list]:
    spec = make_spec(persist={"every": 0})
    data = load_dataset(spec)
    model = init_model(spec, data)
    firmware = build_firmware(model, request.param, Path(tmp_path_factory.mktemp("build")), transport="semihost")
    steps = [s for s in training_stream(model, data, 2) if s.kind == "train"]
    return model, firmware, steps


def state_size(model: InitialModel) -> int:
    return len(make_fixed(model).state_bytes())


def test_save_writes_the_twins_record_and_a_reboot_restores_it(build, tmp_path: Path) -> None:
    save_and_reboot(*build, tmp_path)


def test_an_emulated_board_keeps_the_twins_record_in_its_flash_file(emulated, tmp_path: Path) -> None:
    save_and_reboot(*emulated, tmp_path)


def save_and_reboot(model: InitialModel, firmware: Firmware, steps: list, tmp_path: Path) -> None:
    page = int(firmware.board.config["flash_page"])
    ref = make_fixed(model)
    flash_file = tmp_path / "flash.bin"
    twin = persist.Flash(page=page, pages=2 * persist.slot_pages(state_size(model), page))
    with boot(firmware, flash_file) as device:
        device.connect()
        with pytest.raises(DeviceError) as exc:
            device.restore()
        assert exc.value.kind == "nothing saved"
        for step in steps[:15]:
            ref.train(step.x, step.target)
            device.train(step.x, step.target)
        seq, digest = device.save()
        assert (seq, digest) == (1, ref.digest())
        assert persist.save(twin, ref.state_bytes()) == 1
        for step in steps[15:30]:  # learning goes on after a save; these steps are not saved
            device.train(step.x, step.target)
    assert flash_file.read_bytes() == bytes(twin.data)  # the record, bit for bit
    with boot(firmware, flash_file) as device:  # power on: the saved state, not the initial one nor the later
        device.connect()
        assert device.stats().digest == ref.digest() and device.stats().steps == 15
        for step in steps[15:40]:  # and learning continues bit-exact from it
            outputs, digest = device.train(step.x, step.target)
            assert np.array_equal(outputs, ref.train(step.x, step.target)) and digest == ref.digest()
        assert device.save() == (2, ref.digest())
        assert device.restore() == (2, ref.digest())
    persist.save(twin, ref.state_bytes())
    assert flash_file.read_bytes() == bytes(twin.data)


def test_save_and_restore_reject_a_body_and_keep_the_state(build, tmp_path: Path) -> None:
    _, firmware, steps = build
    with boot(firmware, tmp_path / "flash.bin") as device:
        device.connect()
        device.train(steps[0].x, steps[0].target)
        before = device.stats().digest
        for command in (Cmd.SAVE, Cmd.RESTORE):
            with pytest.raises(DeviceError) as exc:
                device.request(command, b"\x00")
            assert exc.value.kind == "body" and "expected 0 bytes, got 1" in str(exc.value)
        assert device.stats().digest == before


def test_a_spec_without_persist_has_no_save_and_a_board_without_flash_is_refused(build, tmp_path: Path) -> None:
    spec = make_spec()
    model = init_model(spec, load_dataset(spec))
    plain = build_firmware(model, "native", tmp_path)
    with boot(plain, tmp_path / "flash.bin") as device:
        device.connect()
        with pytest.raises(DeviceError) as exc:
            device.save()
        assert exc.value.kind == "command"
    with pytest.raises(BuildError, match=r"\[persist\] needs a board with a flash driver; qemu-stm32f4 has none"):
        build_firmware(build[0], "qemu-stm32f4", tmp_path)


def test_persist_every_saves_after_every_nth_step(tmp_path: Path) -> None:
    """[persist] every = 4: 10 steps save at steps 4 and 8; after a power cut the board is back at step 8."""
    spec = make_spec(persist={"every": 4})
    data = load_dataset(spec)
    model = init_model(spec, data)
    firmware = build_firmware(model, "native", tmp_path)
    steps = [s for s in training_stream(model, data, 1) if s.kind == "train"]
    ref = make_fixed(model)
    with boot(firmware, tmp_path / "flash.bin") as device:
        device.connect()
        for i, step in enumerate(steps[:10]):
            device.train(step.x, step.target)
            ref.train(step.x, step.target)
            if i == 7:
                at_eight = ref.digest()
    with boot(firmware, tmp_path / "flash.bin") as device:
        device.connect()
        stats = device.stats()
        assert (stats.steps, stats.digest) == (8, at_eight)
        assert device.restore()[0] == 2


CUTS = int(os.environ.get("ONWARD_POWER_CUTS", "1000"))
EMULATED_CUTS = 40  # a QEMU power-on costs ~0.1 s: the 1000 run on native, where the driver logic is the same


def test_power_cuts_at_random_points_of_saves_never_corrupt_the_state(build, tmp_path: Path) -> None:
    """CUTS times (default 1000): power on with a flash holding a saved state, train a few steps, SAVE, with the
    power cut at a random erase or program of that save; power on again: the state is exactly the previous save or
    the new one (digest and image compared), and learning continues bit-exact with the reference from there."""
    power_cuts(*build, tmp_path, CUTS)


def test_power_cuts_on_an_emulated_board(emulated, tmp_path: Path) -> None:
    power_cuts(*emulated, tmp_path, EMULATED_CUTS)


def power_cuts(model: InitialModel, firmware: Firmware, steps: list, tmp_path: Path, cuts: int) -> None:
    page = int(firmware.board.config["flash_page"])
    size = state_size(model)
    rng = np.random.default_rng(7)
    base = tmp_path / "base.bin"
    ref_old = make_fixed(model)
    with boot(firmware, base) as device:
        device.connect()
        for step in steps[:5]:
            ref_old.train(step.x, step.target)
            device.train(step.x, step.target)
        device.save()
        device.save()  # both slots hold records: a save now overwrites an older valid one
    ops = persist.ops_per_save(size, page)  # a save: its erases, the state words, the header
    new_images: dict[int, bytes] = {}
    seen = dict.fromkeys(("old", "new", "mid-erase", "mid-program", "completed"), 0)
    for trial in range(cuts):
        k = int(rng.integers(1, 4))  # steps before the save
        cut = int(rng.integers(1, ops + ops // 10 + 1))  # past `ops`: the save completes (no cut)
        flash = tmp_path / "flash.bin"
        flash.write_bytes(base.read_bytes())
        with boot(firmware, flash, cut=cut, seed=trial + 1) as device:
            device.connect()
            for step in steps[5:5 + k]:
                device.train(step.x, step.target)
            if cut > ops:
                assert device.save()[0] == 3
            else:
                device.link.write(encode_frame(Cmd.SAVE))
                with pytest.raises(ProtocolError):  # the process dies mid-save: no reply, the pipe closes
                    device.reply(Cmd.SAVE)
        if k not in new_images:
            ref = make_fixed(model)
            for step in steps[:5 + k]:
                ref.train(step.x, step.target)
            new_images[k] = ref.state_bytes()
        image = persist.Flash(page=page, pages=len(flash.read_bytes()) // page)
        image.data[:] = flash.read_bytes()
        found = persist.restore(image, size)
        assert found is not None and found[1] in (ref_old.state_bytes(), new_images[k]), (trial, cut)
        seen["new" if found[1] == new_images[k] and found[1] != ref_old.state_bytes() else "old"] += 1
        erases = persist.slot_pages(size, page)  # a save's first operations are its erases
        seen["mid-erase" if cut <= erases else "mid-program" if cut <= ops else "completed"] += 1
        ref = make_fixed(model)  # the firmware agrees: it boots into that state, and learns on bit-exact from it
        ref.restore(parse_state(model, found[1]), 0)
        with boot(firmware, flash) as device:
            device.connect()
            assert device.stats().digest == ref.digest(), (trial, cut)
            if trial % 50 == 0 or (cuts < 50 and trial % 10 == 0):
                for step in steps[20:23]:
                    outputs, digest = device.train(step.x, step.target)
                    assert np.array_equal(outputs, ref.train(step.x, step.target)) and digest == ref.digest()
    assert all(seen.values()), seen  # cuts in erases and in programs, states before and after the commit
