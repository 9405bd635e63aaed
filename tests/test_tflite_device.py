"""A frozen .tflite extractor on the device (`[frozen]`, firmware/src/tflite_*.c and frontend.c): its features
equal LiteRT's interpreter bit for bit on 1000 inputs (the C called in the qemu-m4 and qemu-m0 ELFs under
unicorn), the head learns on them bit-exact with the reference on native and the emulated boards, the C's
operator table matches its Python layout, and a bad [frozen] table or model is one line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from test_tflite import litert

from helpers import kernel_emulators, make_spec
from onward import fixed
from onward.cli import main
from onward.data import load_dataset
from onward.model import device_inputs, init_model
from onward.paths import ROOT
from onward.session import run_on_target
from onward.tflite import write
from onward.tflite.frontend import FIELDS
from onward.tflite.quantization import multiply_double_half_up

SHAPE = (8, 8, 1)  # the digits, as images


def cnn_layers(rng: np.random.Generator) -> list[write.Layer]:
    """Every operator the extractor runs: conv, max-pool, depthwise (ReLU6), average-pool, reshape, then the
    classifier the head replaces."""
    def w(*shape: int) -> np.ndarray:
        return rng.normal(size=shape) * 0.3

    return [write.Layer("conv", w(8, 3, 3, 1), w(8), "relu"), write.Layer("maxpool", pool=2),
            write.Layer("depthwise", w(1, 3, 3, 8), w(8), "relu6"), write.Layer("avgpool", pool=2),
            write.Layer("reshape", shape=(32,)), write.Layer("fc", w(16, 32), w(16), "relu"),
            write.Layer("fc", w(10, 16), w(10))]


@pytest.fixture(scope="module", params=[True, False], ids=["per_channel", "per_tensor"])
def frozen_spec(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A digits spec whose frozen model is cnn_layers, cut before the last FULLY_CONNECTED (16 features)."""
    folder = tmp_path_factory.mktemp("frozen")
    rng = np.random.default_rng(5)
    data = load_dataset(make_spec(data={"set": "digits"}))
    model = write.build(cnn_layers(rng), data.x_train[:300].reshape(-1, *SHAPE), per_channel=request.param)
    (folder / "cnn.tflite").write_bytes(model)
    spec = make_spec(name=f"frozen_{request.param}", data={"set": "digits"}, model={"hidden": [12]},
                     rule={"name": "pepita",
                     "learning_rate": 0.05}, frozen={"tflite": str(folder / "cnn.tflite")},
                     format={"activation_frac": 12, "weight_frac": 12})
    return spec, model, folder


def test_the_c_operator_table_is_laid_out_as_the_python_one() -> None:
    header = (ROOT / "firmware" / "include" / "onward" / "tflite.h").read_text()
    fields = {m[0].lower(): int(m[1]) for m in re.findall(r"#define ONW_TFL_F_(\w+) (\d+)", header)}
    assert fields == {name: i for i, name in enumerate(FIELDS)}


BACKENDS = (("m4", "qemu-m4", False), ("m0", "qemu-m0", False), ("host", "native", False))


@pytest.mark.parametrize("backend", BACKENDS, ids=[b[0] for b in BACKENDS])
def test_the_firmwares_features_equal_litert_on_1000_inputs(frozen_spec, backend, tmp_path: Path) -> None:
    """onw_frontend of the firmware (the qemu-m4 and qemu-m0 ELFs under unicorn, the native build as a shared
    library): the cut tensor (the second FULLY_CONNECTED's input) of 1000 digits, rescaled to Q12, equals
    LiteRT's rescaled the same way; the reference extractor's int8 values equal LiteRT's too."""
    spec, model_bytes, _ = frozen_spec
    check_features(spec, model_bytes, backend, tmp_path, 1000)


@pytest.mark.parametrize("backend", BACKENDS, ids=[b[0] for b in BACKENDS])
def test_dilated_convolutions_on_the_device(backend, tmp_path: Path) -> None:
    """The kernels' dilated paths (no window row is contiguous), conv and depthwise, against LiteRT."""
    rng = np.random.default_rng(11)
    data = load_dataset(make_spec(data={"set": "digits"}))

    def w(*shape: int) -> np.ndarray:
        return rng.normal(size=shape) * 0.3

    layers = [write.Layer("conv", w(4, 3, 3, 1), w(4), "relu", options={"dilation": 2}),
              write.Layer("depthwise", w(1, 3, 3, 4), w(4), "relu6", options={"dilation": 2}),
              write.Layer("reshape", shape=(256,)), write.Layer("fc", w(10, 256), w(10))]
    model_bytes = write.build(layers, data.x_train[:300].reshape(-1, *SHAPE))
    (tmp_path / "dilated.tflite").write_bytes(model_bytes)
    spec = make_spec(name="dilated", data={"set": "digits"}, model={"hidden": []},
                     frozen={"tflite": str(tmp_path / "dilated.tflite")}, format={"activation_frac": 9})
    check_features(spec, model_bytes, backend, tmp_path, 300)


def check_features(spec, model_bytes: bytes, backend, folder: Path, n: int) -> None:
    data = load_dataset(spec)
    model = init_model(spec, data)
    fe = model.frontend
    x = device_inputs(model, np.concatenate([data.x_train, data.x_test])[:n])
    cut_model = write_cut(model_bytes)
    expected_int8 = litert(cut_model, x.reshape(-1, *SHAPE)).reshape(len(x), -1)
    assert np.array_equal(fe.features_int8(x), expected_int8)  # the reference extractor
    zp, q, shift = fe.feature_rescale
    expected = fixed.sat16(multiply_double_half_up(expected_int8 - zp, q, shift))[0]
    emu = kernel_emulators(spec, folder, (backend,))[backend[0]]
    raw, out = emu.alloc(2 * fe.raw_dim), emu.alloc(2 * fe.features)
    for i in range(len(x)):
        emu.write(raw, np.asarray(x[i], dtype="<i2").tobytes())
        emu.call("onw_frontend", [raw, out], count=False)
        got = np.frombuffer(emu.read(out, 2 * fe.features), dtype="<i2")
        assert np.array_equal(got, expected[i]), i


def write_cut(model: bytes) -> bytes:
    """The same model with its output moved to the last FULLY_CONNECTED's input (what LiteRT then returns)."""
    from onward.tflite import graph
    from onward.tflite.frontend import classifier_input

    s = graph.schema()
    m = s.ModelT.InitFromPackedBuf(bytearray(model), 0)
    cut = classifier_input(graph.parse(model))
    sub = m.subgraphs[0]
    sub.operators = sub.operators[:_ops_until(sub, cut)]
    sub.outputs = [cut]
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=graph.IDENTIFIER)
    return bytes(b.Output())


def _ops_until(sub, cut: int) -> int:
    return next(i for i, op in enumerate(sub.operators) if op.outputs[0] == cut) + 1


@pytest.mark.parametrize("target", ["native", "qemu-m4", "qemu-m0", "qemu-rv32"])
def test_the_head_learns_on_the_frozen_features_bit_exact(frozen_spec, target: str, tmp_path: Path) -> None:
    spec, _, _ = frozen_spec
    data = load_dataset(spec)
    run = run_on_target(init_model(spec, data), data, target, tmp_path, steps=200, evaluate_test=True)
    assert run.train_steps == 200 and run.ref_accuracy == run.device_accuracy


def test_a_bad_frozen_table_or_model_is_one_line(frozen_spec, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _, _, folder = frozen_spec
    base = (ROOT / "examples" / "digits_pepita.toml").read_text()
    cases = {
        "[frozen]\ncut = 3\n": "missing required key `frozen.tflite`",
        "[frozen]\ntflite = \"nope.tflite\"\n": "nope.tflite: cannot read the model",
        f"[frozen]\ntflite = \"{folder / 'cnn.tflite'}\"\ncut = 999\n": "`frozen.cut` = 999 is not a tensor index",
        f"[frozen]\ntflite = \"{folder / 'cnn.tflite'}\"\nlayers = 2\n": "unknown key `frozen.layers`",
    }
    for table, message in cases.items():
        spec = tmp_path / "bad.toml"
        spec.write_text(base + "\n" + table)
        assert main(["verify", str(spec), "--build-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err


def test_the_example_cnn_script_is_seeded_and_learns() -> None:
    import importlib.util

    loader = importlib.util.spec_from_file_location("train_digits_cnn", EXAMPLE.parent / "train_digits_cnn.py")
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    first, accuracy = module.build(epochs=4, seed=0)
    assert module.build(epochs=4, seed=0)[0] == first and accuracy > 0.9


EXAMPLE = ROOT / "examples" / "tflite" / "digits_inverted_head.toml"


def test_the_example_relearns_its_head_on_the_device(tmp_path: Path) -> None:
    """The committed digits_cnn.tflite behind the inverted digits: bit-exact on native; the model's own classifier
    is near chance there (the shift the head is relearned for)."""
    from onward.spec import load_spec
    from onward.tflite import graph, interpret

    spec = load_spec(EXAMPLE)
    data = load_dataset(spec)
    model = init_model(spec, data)
    g = graph.read(spec.frozen.tflite)
    x = device_inputs(model, data.x_test).reshape(-1, 8, 8, 1)
    assert np.mean(interpret.run(g, x).argmax(axis=1) == data.y_test) < 0.15
    run = run_on_target(model, data, "native", tmp_path, steps=500)
    assert run.train_steps == 500


def test_the_shifted_digits() -> None:
    from onward.data.digits import digits, shifted

    x, _ = digits()
    assert np.array_equal(shifted(x, "invert", 0), 1.0 - x)
    rotated = shifted(x, "rotate", 0)
    assert np.array_equal(np.sort(rotated, axis=1), np.sort(x, axis=1)) and not np.array_equal(rotated, x)
    noisy = shifted(x, "noise", 0)
    assert noisy.min() >= 0 and noisy.max() <= 1 and np.array_equal(noisy, shifted(x, "noise", 0))
    assert "`data.shift` must be one of ('none', 'invert', 'rotate', 'noise'), got 'flip'" in spec_error(
        data={"set": "digits", "shift": "flip"})
    assert "`data.shift` = 'invert' applies to the digits only, not to 'synthetic'" in spec_error(
        data={"shift": "invert"})


def spec_error(**overrides: object) -> str:
    from onward.spec import SpecError

    with pytest.raises(SpecError) as exc:
        make_spec(**overrides)
    return str(exc.value)
