"""Firmware against the fixed-point reference, bit for bit: random specs on native and on qemu-m4,
and a deliberately corrupted device that verify must catch and name."""

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import make_spec
from onward import fixed
from onward.codegen.micropython import RULES as MICROPYTHON_RULES
from onward.data import load_dataset
from onward.model import init_model
from onward.protocol import Hello, ProtocolError
from onward.reference import STATE_HEADER, make_fixed, training_stream
from onward.rules import pepita, rule_module, rule_names
from onward.session import run_on_target
from onward.targets.build import build_firmware
from onward.targets.device import Device
from onward.targets.link import Link
from onward.targets.run import open_device
from onward.verify import Mismatch, check_build, lockstep

# The rules' own keys at random (a rule without an entry runs with its defaults).
OWN_KEYS: dict[str, dict[str, st.SearchStrategy]] = {
    "pepita": {"feedback_scale": st.sampled_from([0.05, 0.5])},
    "mempepita": {"feedback_scale": st.sampled_from([0.05, 0.5])},
    "ffzero": {"learning_rate": st.sampled_from([0.001, 0.01, 0.1]), "directions": st.sampled_from([1, 2, 4]),
               "perturbation": st.integers(0, 2), "activation": st.sampled_from(["linear", "relu"]),
               "margin": st.sampled_from([0.1, 0.3])},
    "ff": {"threshold": st.sampled_from([1.0, 2.0, 8.0])},
    "fgrad": {"mode": st.sampled_from(["activity", "weight"]), "directions": st.sampled_from([1, 2, 4])},
    "photonic": {"learning_rate": st.sampled_from([0.0005, 0.005, 0.05]), "directions": st.sampled_from([1, 2, 3]),
                 "perturbation": st.integers(1, 3), "margin": st.sampled_from([0.02, 0.1, 0.5])},
}
# A rule's own top-level table at random (the photonic controller's chip: flaws, meshes, converters).
OWN_TABLES: dict[str, dict[str, st.SearchStrategy]] = {
    "photonic": {"preset": st.sampled_from(["ideal", "l2ight", "pai2023", "typical"]), "layers": st.integers(1, 2),
                 "layout": st.sampled_from(["clements", "reck"]), "dac_bits": st.sampled_from([6, 8, 12]),
                 "adc_bits": st.sampled_from([8, 12, 15]), "drift": st.sampled_from([0.0, 0.01])},
}


@st.composite
def random_specs(draw: st.DrawFn) -> dict:
    """A valid spec of any rule: widths, depths, data shapes, formats and the rule's own keys at random."""
    rule = draw(st.sampled_from(rule_names()))  # every registered rule: a new one is drawn without editing this
    regression = "regression" in rule_module(rule).TASKS and draw(st.booleans())
    classes = 1 if regression else draw(st.integers(2, 10))
    # FFzero's layers hold one prototype per class: no layer narrower than the classes
    hidden = draw(st.lists(st.integers(max(1, classes if rule == "ffzero" else 1), 128),
                           min_size=0 if rule == "fgrad" else 1, max_size=4)) if rule != "photonic" else []
    data = ({"set": draw(st.sampled_from(["f1", "f2"])), "samples": 120} if regression else
            {"set": "synthetic", "features": draw(st.integers(1, 48)), "classes": classes, "samples": 120})
    keys: dict = {"name": rule, "learning_rate": draw(st.sampled_from([0.01, 0.05, 0.2]))}
    keys.update({key: draw(values) for key, values in OWN_KEYS.get(rule, {}).items()})
    tables = {rule: {key: draw(values) for key, values in OWN_TABLES[rule].items()}} if rule in OWN_TABLES else {}
    return {
        **tables,
        "seed": draw(st.integers(0, 2**32 - 1)),
        "model": {"hidden": hidden},
        "data": data,
        "rule": keys,
        "format": {"activation_frac": draw(st.integers(8, 13)), "weight_frac": draw(st.integers(9, 13)),
                   "feedback_frac": draw(st.sampled_from([13, 15])), "lr_frac": draw(st.sampled_from([20, 24]))},
    }


def verify_random(raw: dict, target: str, tmp: Path, steps: int) -> None:
    spec = make_spec(**raw)
    data = load_dataset(spec)
    run = run_on_target(init_model(spec, data), data, target, tmp, steps=steps)
    assert run.train_steps == steps


@settings(max_examples=60, deadline=None, derandomize=True)
@given(raw=random_specs())
def test_random_specs_bit_exact_native(raw: dict, tmp_path_factory: pytest.TempPathFactory) -> None:
    verify_random(raw, "native", tmp_path_factory.getbasetemp() / "native", steps=120)


@pytest.mark.qemu
@settings(max_examples=12, deadline=None, derandomize=True)
@given(raw=random_specs())
def test_random_specs_bit_exact_qemu_m4(raw: dict, tmp_path_factory: pytest.TempPathFactory) -> None:
    verify_random(raw, "qemu-m4", tmp_path_factory.getbasetemp() / "qemu", steps=60)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(raw=random_specs().filter(lambda raw: raw["rule"]["name"] in MICROPYTHON_RULES))
def test_random_specs_bit_exact_micropython(raw: dict, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The MicroPython unix port, on the rules it has (onward.codegen.micropython.RULES)."""
    verify_random(raw, "micropython", tmp_path_factory.getbasetemp() / "micropython", steps=60)


def test_verify_names_the_first_difference(tmp_path: Path) -> None:
    spec = make_spec(model={"hidden": [9, 6]})
    data = load_dataset(spec)
    model = init_model(spec, data)
    firmware = build_firmware(model, "native", tmp_path)
    ref = make_fixed(model)
    with open_device(model, "native", tmp_path) as device:
        check_build(model, device, firmware.generated.model_hash)
        image = bytearray(ref.state_bytes())
        offset = STATE_HEADER.size + 2 * (model.dims[0] * 9 + 2 * 9 + 4)  # layer 1 (6 x 9), row 2, column 4
        image[offset] ^= 1  # one LSB off on the device
        device.load_state(bytes(image), device.chunk)
        probes, _ = fixed.to_q(data.x_test[:4], spec.format.activation_frac)
        with pytest.raises(Mismatch) as exc:
            lockstep(ref, device, training_stream(model, data, 1), probes, tmp_path / "mm")
    msg = str(exc.value)
    assert msg.startswith("step 0:")
    assert "tensor weights[1], index [2, 4]" in msg
    device_state = np.load(tmp_path / "mm" / "state-device.npz")
    ref_state = np.load(tmp_path / "mm" / "state-reference.npz")
    assert device_state["weights1"][2, 4] != ref_state["weights1"][2, 4]
    assert (device_state["weights0"] == ref_state["weights0"]).all()


def test_reset_with_another_seed_stays_bit_exact(tmp_path: Path) -> None:
    """RESET(seed) changes F and the rounding stream on both sides alike."""
    spec = make_spec()
    data = load_dataset(spec)
    model = init_model(spec, data)
    ref = make_fixed(model)
    with open_device(model, "native", tmp_path) as device:
        device.hello()
        device.reset(seed=77)
        ref.reset(seed=77)
        assert (ref.feedback_q != pepita.feedback_q(model, spec.seed)).any()
        probes, _ = fixed.to_q(data.x_test[:4], spec.format.activation_frac)
        result = lockstep(ref, device, training_stream(model, data, 1), probes, tmp_path / "mm")
        assert result.train_steps == len(data.y_train) and device.stats().digest == ref.digest()


class CountingDevice(Device):
    """Counts the TRAIN_BATCH frames lockstep sends; optionally corrupts one sample on the way (both frames)."""

    def __init__(self, link: Link, corrupt: np.ndarray | None = None) -> None:
        super().__init__(link)
        self.batches, self.corrupt = 0, corrupt

    def send_train_batch(self, xs: Sequence[np.ndarray], targets: Sequence[int]) -> int:
        self.batches += 1
        return super().send_train_batch(xs, targets)

    def encode_sample(self, x: np.ndarray, target: int) -> bytes:
        if self.corrupt is not None and np.array_equal(x, self.corrupt):
            x = x.copy()
            x[0] += 500
        return super().encode_sample(x, target)


@pytest.mark.parametrize("batch", [1, None])
def test_lockstep_in_single_and_batch_frames(batch: int | None, tmp_path: Path) -> None:
    spec = make_spec()
    data = load_dataset(spec)
    model = init_model(spec, data)
    ref = make_fixed(model)
    with open_device(model, "native", tmp_path) as plain:
        device = CountingDevice(plain.link)
        device.hello()
        probes, _ = fixed.to_q(data.x_test[:4], spec.format.activation_frac)
        result = lockstep(ref, device, training_stream(model, data, 1), probes, tmp_path / "mm", batch=batch)
        assert result.train_steps == len(data.y_train) and device.stats().digest == ref.digest()
    assert device.max_batch == 64
    # batch 1: TRAIN frames only; else step 0 alone, then up to 64 a frame, cut at every probe (each 50 steps)
    assert device.batches == (0 if batch == 1 else 3)


def test_a_mismatch_inside_a_batch_names_its_step_and_saves_that_step(tmp_path: Path) -> None:
    spec = make_spec()
    data = load_dataset(spec)
    model = init_model(spec, data)
    ref = make_fixed(model)
    stream = list(training_stream(model, data, 1))
    with open_device(model, "native", tmp_path) as plain:
        device = CountingDevice(plain.link, corrupt=stream[7].x)  # step 7: the 7th sample of the second frame
        device.hello()
        with pytest.raises(Mismatch) as exc:
            lockstep(ref, device, stream, np.zeros((0, model.dims[0]), dtype=np.int64), tmp_path / "mm")
    assert device.batches == 1
    msg = str(exc.value)
    assert msg.startswith("step 7: ") and "first state difference: tensor weights[" in msg
    device_state = np.load(tmp_path / "mm" / "state-device.npz")
    ref_state = np.load(tmp_path / "mm" / "state-reference.npz")
    assert device_state["steps"] == ref_state["steps"] == 8  # both just after step 7, not at the end of the frame


def test_hello_is_checked_against_the_spec_field_by_field(tmp_path: Path) -> None:
    """A board flashed with another spec (here: the same network learned by another rule, other formats) is named
    with every HELLO field that differs; a firmware speaking an unknown protocol version is refused."""
    spec = make_spec(model={"hidden": [9, 6]})
    other = make_spec(model={"hidden": [9, 6]}, rule={"name": "last_layer"}, format={"weight_frac": 11})
    data = load_dataset(spec)
    model, other_model = init_model(spec, data), init_model(other, data)
    with open_device(other_model, "native", tmp_path) as device:
        with pytest.raises(Mismatch) as exc:
            check_build(model, device, build_firmware(model, "native", tmp_path).generated.model_hash)
        hello = device.hello()
    msg = str(exc.value)
    assert msg.startswith("the target runs another model: t@native; rule 6, expected 1 (pepita); formats")
    assert "(11, 11, 15, 24), expected (11, 12, 15, 24)" in msg and "model hash 0x" in msg
    assert "dims" not in msg and "state size" not in msg  # the same network: those agree

    class OldFirmware:
        def connect(self) -> Hello:
            return replace(hello, version=1)

    with pytest.raises(ProtocolError, match="the target speaks protocol version 1; this host speaks 2 to 5"):
        check_build(model, OldFirmware(), 0)  # type: ignore[arg-type]
