"""`onward export SPEC --tflite OUT`: the learned model back as an int8 .tflite that LiteRT runs.

The frozen part is copied from the imported model as it is, up to the cut tensor (its operators, tensors and
buffers unchanged). The learned head follows as FULLY_CONNECTED operators: each layer's weights (Q(weight_frac)
int16, from the reference trained per the spec or from a device's state image) as float, requantised to int8 per
output channel; no bias (the head's layers have none); ReLU fused between layers; each layer's output quantised
from its range on the training features (the converter's calibration). The head is thus quantised a second time
(int16 -> int8): the exported model's accuracy is the device's within the rounding of that step (docs/tflite.md
measures it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from onward.data import Dataset
from onward.fixed import I64
from onward.model import InitialModel, device_inputs, features_dataset
from onward.tflite.graph import TfliteError, schema
from onward.tflite.write import Builder, Layer, activation_quantization, options


def export(model: InitialModel, weights_q: list[I64], data: Dataset) -> bytes:
    fe = model.frontend
    spec = model.spec
    if fe is None:
        raise TfliteError(f"{spec.source}: `onward export` writes a model imported with `[frozen]`; this spec has "
                          f"no frozen .tflite")
    shapes = [tuple(w.shape) for w in weights_q]
    if shapes != [(o, i) for i, o in model.layer_shapes]:
        raise TfliteError(f"{spec.source}: rule `{spec.rule.name}` keeps parameter blocks of shapes {shapes}; the "
                          f"export writes bias-free dense layers (out, in): PEPITA, MEMPEPITA, forward gradients")
    s = schema()
    with open(spec.frozen.tflite, "rb") as f:
        original = s.ModelT.InitFromPackedBuf(bytearray(f.read()), 0)
    b = Builder(original)
    keep = next(i for i, op in enumerate(b.sub.operators) if op.outputs[0] == fe.cut) + 1
    b.sub.operators = b.sub.operators[:keep]
    b.model.description = f"onward export of {spec.name}: {spec.rule.name} head on {fe.graph.source}"
    current = fe.cut
    x = features_dataset(fe, data).x_train
    last = len(weights_q) - 1
    for i, w_q in enumerate(weights_q):
        w = np.asarray(w_q, dtype=np.float64) / 2.0**spec.format.weight_frac
        y = x @ w.T
        if i < last:
            y = np.maximum(y, 0.0)
        layer = Layer("fc", w, None, "relu" if i < last else "none")
        inputs = b.weighted(len(b.sub.operators), "fc", w, None, current, per_channel=True)
        scale, zp = activation_quantization(y)
        out = b.tensor(f"head{i}", (1, w.shape[0]), s.TensorType.INT8, np.float32(scale), zp)
        b.operator("FULLY_CONNECTED", inputs, [out], options(s, layer, (1, w.shape[0])))
        current, x = out, y
    b.sub.outputs = [current]
    return b.bytes()


def export_spec(spec_path: Path, out: Path, state: Path | None = None) -> str:
    """Train (or load) the spec's head, write the .tflite, and say how the round trip scores on the test set:
    the exported model under onward's int8 reference (= LiteRT) against the device's fixed-point model."""
    from onward.reference import apply_step, make_fixed, parse_state, training_stream
    from onward.session import prepare
    from onward.spec import load_spec
    from onward.tflite import graph, interpret

    spec = load_spec(spec_path)
    data, model = prepare(spec)
    ref = make_fixed(model)
    if state is None:
        for step in training_stream(model, data, spec.rule.epochs):
            apply_step(ref, step)
        source = f"the fixed-point reference trained as {spec_path} says ({ref.steps} steps)"
    else:
        try:
            image = Path(state).read_bytes()
        except OSError as exc:
            raise TfliteError(f"{state}: cannot read the state image ({exc.strerror})") from None
        if len(image) != len(ref.state_bytes()):
            raise TfliteError(f"{state}: a state image of {len(image)} bytes; this spec's model has "
                              f"{len(ref.state_bytes())} (DUMP of a device running it)")
        ref.restore(parse_state(model, image), 0)
        source = f"the state image {state}"
    blob = export(model, ref.weights, data)
    try:
        Path(out).write_bytes(blob)
    except OSError as exc:
        raise TfliteError(f"{out}: cannot write the model ({exc.strerror})") from None
    x = device_inputs(model, data.x_test)
    device = ref.score(x, data.y_test)
    g = graph.parse(blob, str(out))
    exported = np.mean(interpret.run(g, x.reshape(-1, *g.tensor(g.inputs[0]).shape[1:])).argmax(axis=1)
                       == data.y_test)
    return (f"wrote {out} ({len(blob)} bytes) from {source}\n"
            f"test accuracy: the device's fixed-point model {100 * device:.2f} %, the exported int8 model "
            f"{100 * exported:.2f} % (onward's int8 reference, which LiteRT's interpreter equals)")
