"""Small builders shared by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from onward.spec import Spec, parse_spec

if TYPE_CHECKING:
    from onward.counting import Emulator

# (name, target, portable kernels): the builds the kernel tests compare
DSP_AND_PORTABLE = (("dsp", "qemu-m4", False), ("portable", "qemu-m4", True), ("m7", "qemu-m7", False))


def make_spec(**overrides: Any) -> Spec:
    """A small valid spec on synthetic data; keyword arguments override sections (`rule={...}`)."""
    raw: dict[str, Any] = {
        "name": "t", "seed": 3, "model": {"hidden": [16]},
        "data": {"set": "synthetic", "features": 12, "classes": 4, "samples": 200},
        "rule": {"name": "pepita", "learning_rate": 0.05, "epochs": 2},
        "format": {"activation_frac": 11, "weight_frac": 12},
    }
    for key, value in overrides.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and key in raw else value
    return parse_spec(raw, "test.toml")


def kernel_emulators(spec: Spec, folder: Path,
                     variants: tuple[tuple[str, str, bool], ...] = DSP_AND_PORTABLE) -> dict[str, Emulator]:
    """The spec's firmware built for each (name, target, portable) variant without link-time optimisation, loaded in
    the instruction-counting emulator: the kernel tests call its functions directly, with any argument."""
    from onward.counting import Emulator
    from onward.data import load_dataset
    from onward.model import init_model
    from onward.report import board_cpu, build_variant

    model = init_model(spec, load_dataset(spec))
    out = {}
    for name, target, portable in variants:
        firmware = build_variant(model, target, folder, portable=portable, lto=False)
        out[name] = Emulator(firmware.path, board_cpu(firmware))
    return out
