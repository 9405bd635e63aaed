"""`onward import` and `onward export`: a spec from a .tflite model, and the learned model back as one. The
exported model runs in LiteRT bit for bit as onward's int8 reference, scores within a point of the device's
fixed-point model, and a device's state image exports the same bytes as the reference it equals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_tflite import litert

from onward.cli import main
from onward.data import load_dataset
from onward.model import device_inputs, init_model
from onward.paths import EXAMPLES
from onward.reference import apply_step, make_fixed, training_stream
from onward.spec import load_spec
from onward.targets.device import Device
from onward.targets.link import PipeLink
from onward.tflite import graph, interpret
from onward.tflite.export import export

MODEL = EXAMPLES / "tflite" / "digits_cnn.tflite"


@pytest.fixture(scope="module")
def quick_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The inverted-digits example, 3 epochs (the model beside it)."""
    folder = tmp_path_factory.mktemp("quick")
    text = (EXAMPLES / "tflite" / "digits_inverted_head.toml").read_text().replace("epochs = 10", "epochs = 3")
    path = folder / "quick.toml"
    path.write_text(text.replace('tflite = "digits_cnn.tflite"', f'tflite = "{MODEL}"'))
    return path


def test_import_writes_a_spec_that_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "head.toml"
    assert main(["import", str(MODEL), "-o", str(out), "--head", "16", "--shift", "rotate"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    spec = load_spec(out)
    assert spec.hidden == (16,) and spec.data.shift == "rotate" and spec.frozen.cut == 9  # the classifier's input
    model = init_model(spec, load_dataset(spec))
    from onward.model import head_dataset

    features = head_dataset(model, load_dataset(spec))
    peak = float(max(np.abs(features.x_train).max(), np.abs(features.x_test).max()))
    af = spec.format.activation_frac
    assert 2.0 ** (14 - af) <= peak < 2.0 ** (15 - af)  # the finest format that holds the features
    assert main(["verify", str(out), "--target", "native", "--steps", "100", "--build-dir", str(tmp_path)]) == 0


@pytest.mark.parametrize(("args", "message"), [
    (["nope.tflite"], "nope.tflite: cannot read the model"),
    ([str(EXAMPLES / "digits_pepita.toml")], "not a .tflite file: bytes 4-7 are"),
    ([str(MODEL), "--cut", "77"], "`frozen.cut` = 77 is not a tensor index"),
    ([str(MODEL), "--data", "mnist1d"], "the model's input holds 64 values ([8, 8, 1]), the data set's samples 40"),
    ([str(MODEL), "--shift", "upside-down"], "`data.shift` must be one of ('none', 'invert', 'rotate', 'noise')"),
])
def test_import_errors_are_one_line(args: list[str], message: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", *args, "-o", str(tmp_path / "x.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err


def test_export_round_trips_through_litert_bit_for_bit(quick_spec: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "adapted.tflite"
    assert main(["export", str(quick_spec), "--tflite", str(out)]) == 0
    report = capsys.readouterr().out
    device, exported = (float(v) for v in
                        report.split("fixed-point model ")[1].replace(" %, the exported int8 model", " ").split()[:2])
    assert abs(device - exported) <= 1.0 and device > 90.0
    spec = load_spec(quick_spec)
    data = load_dataset(spec)
    x = device_inputs(init_model(spec, data), np.concatenate([data.x_test, data.x_train])[:1000]).reshape(-1, 8, 8, 1)
    blob = out.read_bytes()
    g = graph.parse(blob)
    assert [op.kind for op in g.operators] == ["CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED"]
    assert np.array_equal(interpret.run(g, x), litert(blob, x))
    frozen = graph.read(MODEL)  # the frozen part is the imported one, bit for bit
    assert np.array_equal(g.tensor(g.operators[0].inputs[1]).data, frozen.tensor(frozen.operators[0].inputs[1]).data)


def test_a_devices_state_image_exports_as_the_reference(quick_spec: Path, tmp_path: Path) -> None:
    """Train on the native device, DUMP its state, export it: the same bytes as exporting the reference."""
    spec = load_spec(quick_spec)
    data = load_dataset(spec)
    model = init_model(spec, data)
    from onward.targets.build import build_firmware

    firmware = build_firmware(model, "native", tmp_path)
    import subprocess

    process = subprocess.Popen([str(firmware.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    device = Device(PipeLink(process))
    ref = make_fixed(model)
    try:
        device.connect()
        steps = [s for s in training_stream(model, data, 1) if s.kind == "train"][:300]
        for step in steps:
            device.train(step.x, step.target)
            apply_step(ref, step)
        image = device.dump_state(len(ref.state_bytes()), device.chunk)
    finally:
        device.close()
        process.kill()
        process.wait()
    assert image == ref.state_bytes()
    state = tmp_path / "state.bin"
    state.write_bytes(image)
    out = tmp_path / "from_device.tflite"
    assert main(["export", str(quick_spec), "--tflite", str(out), "--state", str(state)]) == 0
    assert out.read_bytes() == export(model, ref.weights, data)


def test_export_errors_are_one_line(quick_spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "short.bin"
    state.write_bytes(b"\x00" * 10)
    cases = [
        (["export", str(EXAMPLES / "digits_pepita.toml"), "--tflite", str(tmp_path / "a.tflite")],
         "`onward export` writes a model imported with `[frozen]`"),
        (["export", str(quick_spec), "--tflite", str(tmp_path / "a.tflite"), "--state", str(state)],
         "short.bin: a state image of 10 bytes; this spec's model has"),
        (["export", str(quick_spec), "--tflite", str(tmp_path / "a.tflite"), "--state", str(tmp_path / "none")],
         "cannot read the state image"),
    ]
    for args, message in cases:
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err
