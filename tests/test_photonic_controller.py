"""The photonic chip's controller (rule `photonic`, docs/photonic_controller.md): the firmware learns the chip's phase
codes asking the host for every chip query (QUERY / ANSWER), bit-exact with its fixed-point reference, which the
shared tape feeds the same ADC codes; a bad answer abandons the step and keeps the state."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import onward.rules.photonic as photonic
from helpers import make_spec
from onward.cli import main
from onward.data import load_dataset
from onward.instrument import Tape
from onward.model import device_inputs, init_model
from onward.paths import ROOT
from onward.protocol import Cmd, DeviceError, decode_frame, encode_frame
from onward.reference import apply_step, make_fixed, share_instrument, training_stream
from onward.report import collect
from onward.session import run_on_target
from onward.spec import SpecError, load_spec
from onward.targets.run import open_device
from onward.verify import Mismatch

EXAMPLE = ROOT / "examples" / "photonic_iris.toml"


def small(**table: object) -> object:
    spec = make_spec(name="ph", model={"hidden": []}, data={"set": "iris"},
                     rule={"name": "photonic", "learning_rate": 0.002, "directions": 2}, photonic=table)
    return spec


@pytest.mark.parametrize("target", ["native", "qemu-m4"])
def test_verify_500_steps_bit_exact(target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's check: every step's outputs, every query's DAC codes and sample, every state digest."""
    assert main(["verify", str(EXAMPLE), "--target", target, "--steps", "500", "--build-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "500 training steps" in out and "0 mismatches" in out
    assert "2510 instrument queries (QUERY/ANSWER) compared byte for byte" in out  # 5 a step, 1 per inference


def test_extreme_answers_are_bit_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers the emulated chip never gives: any u16 (the outputs wrap to int16 as in C, the hinge runs on the
    full range), from an instrument that hashes the request."""
    def wild(model: object) -> object:
        def answer(request: bytes) -> bytes:
            rng = np.random.default_rng(zlib.crc32(request))
            values = rng.choice([0, 1, 0x7FFF, 0x8000, 0xFFFF, *rng.integers(0, 0x10000, 8)], size=8)
            return np.asarray(values, dtype="<u2").tobytes()
        return answer

    monkeypatch.setattr(photonic, "instrument", wild)
    spec = make_spec(name="wild", model={"hidden": []}, data={"set": "iris"},
                     rule={"name": "photonic", "learning_rate": 0.05, "margin": 1.0}, photonic={"modes": 8})
    data = load_dataset(spec)
    run = run_on_target(init_model(spec, data), data, "native", tmp_path, steps=150)
    assert run.train_steps == 150 and run.saturations > 0


def test_the_tape_feeds_both_sides_the_same_answers_and_names_a_different_request() -> None:
    asked: list[bytes] = []

    def chip(request: bytes) -> bytes:
        asked.append(request)
        return bytes([len(asked)])

    tape = Tape(chip)
    ref, dev = tape.side("reference"), tape.side("device")
    assert ref(b"ab") == b"\x01" and ref(b"cd") == b"\x02"
    assert dev(b"ab") == b"\x01" and dev(b"cd") == b"\x02"  # the device replays what the reference was answered
    assert tape.check("step 0") is None and len(asked) == 2  # the chip was asked each query once
    tape = Tape(chip)
    assert tape.side("device")(b"xy") == tape.side("reference")(b"xz")
    assert tape.problem is not None and "query 0" in tape.problem and "byte 1" in tape.problem
    uneven = Tape(chip)
    uneven.side("device")(b"x")
    assert "the reference has asked 0 queries, the device 1" in (uneven.check("step 3") or "")


def test_a_different_dac_code_is_a_mismatch_naming_the_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference whose step differs from the firmware's (its perturbation one LSB too large): the first query
    that differs is named by its DAC code index."""
    spec = make_spec(name="off", model={"hidden": []}, data={"set": "iris"}, rule={"name": "photonic"},
                     photonic={"modes": 8})
    data = load_dataset(spec)
    model = init_model(spec, data)
    real = photonic.Fixed.measure

    def skewed(self: photonic.Fixed, words: np.ndarray, x: np.ndarray) -> np.ndarray:
        return real(self, np.minimum(np.asarray(words) + (1 << self.shift), photonic.WORD_MAX) if self.queries % 3
                    else words, x)

    monkeypatch.setattr(photonic.Fixed, "measure", skewed)
    with pytest.raises(Mismatch, match=r"query 1: the .* asked DAC code \d+ = \d+ where the other asked \d+"):
        run_on_target(model, data, "native", tmp_path, steps=5)


@pytest.mark.parametrize("bad", ["command", "length", "crc"])
def test_a_bad_answer_abandons_the_step_and_keeps_the_state(bad: str, tmp_path: Path) -> None:
    spec = small(modes=8)
    data = load_dataset(spec)
    model = init_model(spec, data)
    x = device_inputs(model, data.x_train[:2])
    with open_device(model, "native", tmp_path) as device:
        device.connect()
        device.reset()
        ref = make_fixed(model)
        share_instrument(ref, device)
        device.train(x[0], int(data.y_train[0]))
        before = device.stats()
        answers = {"command": encode_frame(Cmd.HELLO),
                   "length": encode_frame(Cmd.ANSWER, b"\x00" * 3),
                   "crc": encode_frame(Cmd.ANSWER, b"\x00" * 16)[:-3] + b"\x01\x02\x00"}
        device.link.write(encode_frame(Cmd.TRAIN, struct.pack("<h", 1) + np.asarray(x[1], "<i2").tobytes()))
        command, _ = decode_frame(device.link.read_frame(5))
        assert command == Cmd.QUERY
        device.link.write(answers[bad])
        with pytest.raises(DeviceError, match="device rejected"):
            device.reply(Cmd.TRAIN)
        after = device.stats()
        assert (after.steps, after.digest) == (before.steps, before.digest)  # nothing learned, nothing lost
        assert after.frames_bad == before.frames_bad + 1
        device.on_query = ref.query
        outputs, _ = device.train(x[1], 1)  # and it goes on serving
        assert device.stats().steps == before.steps + 1 and len(outputs) == 3


def test_report_fits_a_16kb_cortex_m0(tmp_path: Path) -> None:
    r = collect(EXAMPLE, "qemu-m0", tmp_path)
    queries = 1 + 2 * load_spec(EXAMPLE).rule.options.directions  # type: ignore[attr-defined]
    assert r["queries_per_training_step"] == queries
    assert r["query_bytes_per_training_step"] > queries * (2 * 56 + 8 + 2 * 8)  # codes and sample out, detectors in
    assert r["ram_with_stack_bytes"] < 16 * 1024 and r["flash_bytes"] < 8 * 1024
    assert 0 < r["instructions_per_training_step"] < 50_000


def test_the_fixed_point_controller_learns_iris() -> None:
    """30 epochs of the example's rule in the fixed-point reference: far above chance (1/3) on the training set."""
    spec = small(modes=8)
    data = load_dataset(spec)
    model = init_model(spec, data)
    ref = make_fixed(model)
    x = device_inputs(model, data.x_train)
    start = ref.score(x, data.y_train)
    for step in training_stream(model, data, 30):
        apply_step(ref, step)
    assert ref.score(x, data.y_train) > max(0.75, start + 0.2)
    assert ref.queries > 30 * len(data.y_train) * 5  # 1 + 2K queries a step, K = 2


def test_spec_errors_name_the_key() -> None:
    with pytest.raises(SpecError, match=r"`photonic.preset` must be one of"):
        small(preset="perfect")
    with pytest.raises(SpecError, match=r"`photonic.adc_bits` must be in \[2, 15\], got 16"):
        small(adc_bits=16)
    with pytest.raises(SpecError, match=r"`photonic.modes` = 3: the chip needs a mode per feature and a bias mode"):
        load_dataset(spec := small(modes=3)) and init_model(spec, load_dataset(spec))
    with pytest.raises(SpecError, match=r"`model.hidden` = \[8\]: the photonic controller's layers are"):
        make_spec(model={"hidden": [8]}, data={"set": "iris"}, rule={"name": "photonic"})
    with pytest.raises(SpecError, match=r"`\[photonic\]` is the table of rule `photonic`; this spec's rule is `pep"):
        make_spec(photonic={"modes": 8})


def test_the_loop_under_drift_runs_the_device_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`onward photonic SPEC --target native`: the spec's epochs of training, then a stream; both arms' chips keep
    one clock (one drift realisation), every device step is checked, the PNG is written."""
    png = tmp_path / "drift.png"
    assert main(["photonic", str(EXAMPLE), "--target", "native", "--samples", "300", "--every", "100", "--json",
                 "--plot", str(png), "--build-dir", str(tmp_path)]) == 0
    r = json.loads(capsys.readouterr().out)
    epochs_steps = 30 * 112
    assert r["steps"] == epochs_steps + 300 and r["drift"] == 0.002
    assert len(r["online"]) == len(r["frozen"]) == 4 and r["online"][0] == r["frozen"][0]  # one start
    assert r["queries"][0] == r["train_queries"] and all(np.diff(r["queries"]) > 100 * 5)
    assert png.stat().st_size > 10_000


def test_a_spec_of_another_rule_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["photonic", str(ROOT / "examples" / "digits_pepita.toml"), "--target", "native",
                 "--build-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "runs a spec of rule `photonic`" in err


def test_the_twins_codes_classify_on_an_ideal_chip() -> None:
    """`rule.init = "twin"`: the ideal mesh trained at code generation and written through the heater law. On a
    flawless chip with a fine DAC its codes classify Iris before any step (the host's encoding and the twin's agree);
    on L2ight's flaws they do not, which is what the controller is for."""
    def start(preset: str) -> float:
        spec = make_spec(name="tw", model={"hidden": []}, data={"set": "iris"},
                         rule={"name": "photonic", "init": "twin"},
                         photonic={"modes": 8, "preset": preset, "dac_bits": 15, "adc_bits": 15})
        data = load_dataset(spec)
        model = init_model(spec, data)
        return make_fixed(model).score(device_inputs(model, data.x_train), data.y_train)

    assert start("ideal") > 0.9
    assert start("l2ight") < 0.8
    with pytest.raises(SpecError, match=r"`rule.init` = \"twin\" trains one mesh; `photonic.layers` = 2"):
        small(layers=2) and make_spec(model={"hidden": []}, data={"set": "iris"},
                                      rule={"name": "photonic", "init": "twin"}, photonic={"layers": 2})


def test_a_loaded_state_with_negative_words_writes_valid_codes(tmp_path: Path) -> None:
    """LOAD can set any int16: a negative word is clipped to code 0 before it is written, on both sides."""
    spec = small(modes=8)
    data = load_dataset(spec)
    model = init_model(spec, data)
    ref = make_fixed(model)
    ref.weights[0][0, :5] = [-1, -300, -32768, 0, 32767]
    x = device_inputs(model, data.x_train[:3])
    with open_device(model, "native", tmp_path) as device:
        device.connect()
        device.reset()
        share_instrument(ref, device)
        device.load_state(ref.state_bytes(), device.chunk)
        for i in range(3):
            outputs, digest = device.train(x[i], int(data.y_train[i]))
            assert np.array_equal(outputs, ref.train(x[i], int(data.y_train[i]))) and digest == ref.digest()


def test_queries_cross_the_real_uart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The QUERY/ANSWER exchange over the emulated board's UART (the serial line a lab bench would use)."""
    assert main(["verify", str(EXAMPLE), "--target", "qemu-m4", "--transport", "uart", "--steps", "60",
                 "--build-dir", str(tmp_path)]) == 0
    assert "over the UART" in capsys.readouterr().out


def test_experiment_files_and_model_specs_are_told_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`onward photonic` takes two kinds of file: an experiment ([chip], [train]) or, with --target, a model spec."""
    assert main(["photonic", str(ROOT / "examples" / "photonic" / "iris.toml"), "--target", "native",
                 "--build-dir", str(tmp_path)]) == 2
    assert "an experiment file ([chip], [train]) runs without --target" in capsys.readouterr().err
    assert main(["photonic", str(EXAMPLE), "--build-dir", str(tmp_path)]) == 2
    assert "a model spec (it has [rule]); `onward photonic` runs it with --target" in capsys.readouterr().err
