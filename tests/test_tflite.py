"""int8 .tflite models: onward's reader and integer kernels (onward.tflite) against LiteRT's interpreter, bit for
bit on 1000 inputs per model, for every supported operator with per-tensor and per-channel quantisation; the
requantisation arithmetic against exact rational arithmetic; malformed files refused with one line."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from onward.tflite import graph, interpret, runtime, write
from onward.tflite.graph import TfliteError
from onward.tflite.quantization import (
    INT32_MAX,
    INT32_MIN,
    multiply_double,
    multiply_double_half_up,
    multiply_single,
    quantize_multiplier,
)

INPUTS = 1000


def litert(model: bytes, x: np.ndarray) -> np.ndarray:
    """LiteRT's built-in kernels (not the XNNPACK delegate, which requantises in float: docs/tflite.md)."""
    return runtime.run(model, x)


def quantised_inputs(g: graph.Graph, shape: tuple[int, ...], rng: np.random.Generator, n: int = INPUTS) -> np.ndarray:
    """n inputs spread over the whole int8 range: the calibration's distribution, plus saturated extremes."""
    t = g.tensor(g.inputs[0])
    x = np.round(rng.normal(size=(n, *shape)) * 1.5 / t.scale) + t.zero_point
    x[: n // 20] = rng.choice([-128, 127], size=(n // 20, *shape))
    return np.clip(x, -128, 127).astype(np.int64)


def w(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.normal(size=shape) * 0.3


MODELS: dict[str, Any] = {
    "fc": (lambda r: [write.Layer("fc", w(r, 24, 10), w(r, 24), "relu"), write.Layer("fc", w(r, 7, 24), w(r, 7))],
           (10,)),
    "fc_relu6": (lambda r: [write.Layer("fc", w(r, 16, 12), w(r, 16), "relu6")], (12,)),
    "conv_same": (lambda r: [write.Layer("conv", w(r, 5, 3, 3, 2), w(r, 5))], (8, 8, 2)),
    "conv_valid_stride2_relu6": (lambda r: [write.Layer("conv", w(r, 4, 3, 3, 3), w(r, 4), "relu6", stride=2,
                                                        padding="valid")], (9, 9, 3)),
    "conv_1d": (lambda r: [write.Layer("conv", w(r, 6, 1, 5, 1), w(r, 6), "relu")], (1, 40, 1)),
    "depthwise": (lambda r: [write.Layer("depthwise", w(r, 1, 3, 3, 3), w(r, 3))], (8, 8, 3)),
    "conv_dilated": (lambda r: [write.Layer("conv", w(r, 4, 3, 3, 2), w(r, 4), options={"dilation": 2})], (9, 9, 2)),
    "depthwise_dilated": (lambda r: [write.Layer("depthwise", w(r, 1, 3, 3, 2), w(r, 2), "relu",
                                                 options={"dilation": 2})], (8, 8, 2)),
    "depthwise_multiplier2": (lambda r: [write.Layer("depthwise", w(r, 1, 3, 3, 4), w(r, 4), "relu",
                                                     options={"multiplier": 2})], (7, 7, 2)),
    "average_pool": (lambda r: [write.Layer("conv", w(r, 4, 3, 3, 2), w(r, 4)), write.Layer("avgpool", pool=2)],
                     (8, 8, 2)),
    "average_pool_3_stride2_same": (lambda r: [write.Layer("conv", w(r, 4, 3, 3, 2), w(r, 4)),
                                               write.Layer("avgpool", pool=3, stride=2)], (7, 7, 2)),
    "max_pool": (lambda r: [write.Layer("conv", w(r, 4, 3, 3, 2), w(r, 4)), write.Layer("maxpool", pool=2)],
                 (8, 8, 2)),
    "cnn": (lambda r: [write.Layer("conv", w(r, 8, 3, 3, 1), w(r, 8), "relu"), write.Layer("maxpool", pool=2),
                       write.Layer("depthwise", w(r, 1, 3, 3, 8), w(r, 8), "relu6"),
                       write.Layer("avgpool", pool=2), write.Layer("reshape", shape=(32,)),
                       write.Layer("fc", w(r, 10, 32), w(r, 10))], (8, 8, 1)),
}


@pytest.mark.parametrize("per_channel", [True, False], ids=["per_channel", "per_tensor"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_onwards_int8_kernels_equal_litert_bit_for_bit(name: str, per_channel: bool) -> None:
    rng = np.random.default_rng([7, len(name)])
    layers, shape = MODELS[name]
    layers = layers(rng)
    model = write.build(layers, rng.normal(size=(256, *shape)), per_channel=per_channel)
    g = graph.parse(model, name)
    weights = g.tensor(g.operators[0].inputs[1])
    assert weights.quantization is not None and weights.quantization.per_channel == per_channel
    x = quantised_inputs(g, shape, rng)
    ours = interpret.run(g, x)
    theirs = litert(model, x)
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs), f"{int((ours != theirs).sum())} of {ours.size} outputs differ"
    assert len(np.unique(ours)) > 20  # the outputs use the int8 range: not a degenerate model


def test_the_cut_point_stops_at_any_tensor() -> None:
    rng = np.random.default_rng(3)
    layers, shape = MODELS["cnn"]
    g = graph.parse(write.build(layers(rng), rng.normal(size=(64, *shape))))
    x = quantised_inputs(g, shape, rng, n=8)
    features = interpret.run(g, x, stop=g.operators[4].outputs[0])  # after the reshape: the feature vector
    assert features.shape == (8, 32) and features.min() >= -128 and features.max() <= 127


# --- the requantisation arithmetic ----------------------------------------------------------------------------


def exact(acc: int, q: int, shift: int) -> Fraction:
    return Fraction(acc * q) * Fraction(2) ** (shift - 31)


def round_half_away(f: Fraction) -> int:
    n = abs(f) + Fraction(1, 2)
    return (1 if f >= 0 else -1) * (n.numerator // n.denominator)


def round_half_up(f: Fraction) -> int:
    n = f + Fraction(1, 2)
    return n.numerator // n.denominator


def test_quantize_multiplier_is_within_half_an_lsb() -> None:
    rng = np.random.default_rng(0)
    for real in [*rng.uniform(1e-6, 2.0, 2000), 0.5, 1.0 - 2**-40, 2**-31, 1e-12]:
        q, shift = quantize_multiplier(float(real))
        if q == 0:
            assert real < 2**-31
            continue
        assert 2**30 <= q < 2**31
        assert abs(Fraction(q) * Fraction(2) ** (shift - 31) - Fraction(real)) <= Fraction(2) ** (shift - 32)


def test_the_three_roundings_against_exact_arithmetic() -> None:
    """single: one rounding half up; double: half up at bit 31 (gemmlowp's nudge rounds a negative tie toward
    zero), then half away from zero at the shift; double_half_up: half up at both. Random and extreme
    accumulators and multipliers."""
    rng = np.random.default_rng(1)
    accs = np.concatenate([rng.integers(-2**24, 2**24, 3000), [0, 1, -1, 2**24, -2**24, 12345, -12345]])
    multipliers = [quantize_multiplier(float(r)) for r in rng.uniform(1e-4, 0.99, 40)]
    for q, shift in [*multipliers, (2**30, -1), (2**31 - 1, 0)]:
        s, d, h = multiply_single(accs, q, shift), multiply_double(accs, q, shift), \
            multiply_double_half_up(accs, q, shift)
        for acc, si, di, hi in zip(accs.tolist(), s.tolist(), d.tolist(), h.tolist(), strict=True):
            assert si == round_half_up(exact(acc, q, shift))
            high = round_half_up(Fraction(acc * q, 2**31))
            assert di == round_half_away(Fraction(high, 2 ** -shift))
            assert hi == round_half_up(Fraction(high, 2 ** -shift))
    extreme = np.array([INT32_MIN, INT32_MAX])
    assert multiply_double(extreme, INT32_MIN, 0).tolist() == [INT32_MAX, -INT32_MAX]  # the one saturation


# --- malformed files --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model() -> bytes:
    rng = np.random.default_rng(2)
    return write.build([write.Layer("fc", w(rng, 4, 3), w(rng, 4))], rng.normal(size=(32, 3)))


def error_of(data: bytes) -> str:
    with pytest.raises(TfliteError) as exc:
        graph.parse(data, "m.tflite")
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_truncated_files_and_a_wrong_identifier_are_refused(small_model: bytes) -> None:
    assert "not a .tflite file: 5 bytes" in error_of(small_model[:5])
    assert "bytes 4-7 are b'ABCD', expected b'TFL3'" in error_of(small_model[:4] + b"ABCD" + small_model[8:])
    for cut in (12, 40, len(small_model) // 2, len(small_model) - 9):
        assert "m.tflite: truncated or corrupt .tflite file" in error_of(small_model[:cut])


def test_an_unsupported_operator_is_named_with_its_index(small_model: bytes) -> None:
    s = graph.schema()
    model = s.ModelT.InitFromPackedBuf(bytearray(small_model), 0)
    model.operatorCodes[0].builtinCode = model.operatorCodes[0].deprecatedBuiltinCode = s.BuiltinOperator.LOGISTIC
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=graph.IDENTIFIER)
    assert "operator 0 is LOGISTIC (builtin code 14), which onward does not import" in error_of(bytes(b.Output()))


def test_a_float_model_is_refused(small_model: bytes) -> None:
    s = graph.schema()
    model = s.ModelT.InitFromPackedBuf(bytearray(small_model), 0)
    sub = model.subgraphs[0]
    sub.tensors[sub.inputs[0]].type = s.TensorType.FLOAT32
    sub.tensors[sub.inputs[0]].quantization = None
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=graph.IDENTIFIER)
    msg = error_of(bytes(b.Output()))
    assert "input tensor 0 ('input') is float32, not quantised: onward imports int8 models" in msg


def test_running_into_a_softmax_is_an_error() -> None:
    rng = np.random.default_rng(4)
    g = graph.parse(write.build([write.Layer("fc", w(rng, 4, 3)), write.Layer("softmax")], rng.normal(size=(8, 3))))
    with pytest.raises(TfliteError, match="operator 1 is SOFTMAX: onward runs a model up to the classifier's"):
        interpret.run(g, np.zeros((1, 3), dtype=np.int64))
    assert interpret.run(g, np.zeros((1, 3), dtype=np.int64), stop=g.operators[0].outputs[0]).shape == (1, 4)
