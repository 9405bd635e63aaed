"""Emit the model-specific C for one initialised model: model.h (dimensions, formats, hyper-parameters,
buffer sizes as macros) and model.c (layer table, initial weights in flash, no malloc).

The output is deterministic: the same spec gives the same bytes (and so the same model hash)."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

import numpy as np

from onward.model import InitialModel
from onward.reference import STATE_HEADER
from onward.rules import rule_id, rule_names

CHUNK = 256  # bytes of state per LOAD/DUMP frame
# TRAIN_BATCH: the samples of one request take at most this many bytes, and their outputs and digests at most
# BATCH_REPLY_BYTES, so that batching adds a few KB of RAM at most (qemu-m0 has 16 KB in all). A board with less
# room gets a smaller batch (targets.build.fit_batch); a batch of 1 always fits wherever single TRAIN does.
BATCH_REQUEST_BYTES = 2048
BATCH_REPLY_BYTES = 1024
MAX_BATCH_CAP = 64
BOARD_NAME_ALLOWANCE = 32  # HELLO carries "<model>@<board>"


MACRO_NOTES = {
    "SAMPLE_DIM": "int16 values of a sample on the wire (INPUT_DIM, or the frozen model's input)",
    "FRONTEND": "1: a frozen .tflite feature extractor runs before the head (onward/tflite.h)",
    "NUM_WEIGHTS": "int16 parameters of all layers, row-major",
    "NUM_OUTPUTS": "int16 outputs of TRAIN and INFER", "NUM_STAGES": "layers trained one after another (or 1)",
    "SUM_WIDTHS": "outputs of all layers (a store of every activation)",
    "MAX_WIDTH": "widest layer output", "MAX_HIDDEN": "widest hidden layer (1 if none)",
    "CHUNK": "state bytes per LOAD/DUMP frame", "RX_MAX": "largest encoded request frame",
    "MAX_REPLY_BODY": "largest reply body", "MAX_BATCH": "samples per TRAIN_BATCH frame (HELLO reports it)",
    "REGRESSION": "1: TRAIN's target is a Q(ACT_FRAC) value",
    "NUM_CLASSES": "TRAIN's target is a class index below this (1 for regression)",
    "ACT_FRAC": "inputs/activations/errors: Q(15-f).f",
    "WEIGHT_FRAC": "weights", "FEEDBACK_FRAC": "a rule's feedback matrix", "LR_FRAC": "lr_q = lr * 2^LR_FRAC",
    "UPDATE_SHIFT": "2*ACT_FRAC + LR_FRAC - WEIGHT_FRAC", "FEEDBACK_BOUND": "F ~ U[-bound, bound] LSB",
    "MODEL_HASH": "HELLO reports it; verify checks it",
    "PERSIST": "1: the state is kept in flash (SAVE, RESTORE, restored at boot)",
    "PERSIST_EVERY": "save after every this many steps (0: on SAVE only)",
    "QUERY_BYTES": "a rule that queries the host's instrument: QUERY's body (0: none)",
    "ANSWER_BYTES": "ANSWER's body", "ANSWER_RX_MAX": "largest encoded ANSWER frame",
}


@dataclass(frozen=True)
class GeneratedC:
    header: str
    source: str
    model_hash: int


def cobs_max(n: int) -> int:
    """Largest COBS encoding of n bytes (without the delimiter)."""
    return n + n // 254 + 1


def model_hash(model: InitialModel) -> int:
    """CRC-32 of everything that makes two builds behave differently; HELLO reports it."""
    spec = model.spec
    desc = json.dumps({
        "dims": model.dims, "rule": spec.rule.name, "seed": spec.seed,
        "format": [spec.format.activation_frac, spec.format.weight_frac, spec.format.feedback_frac,
                   spec.format.lr_frac],
        "lr_q": spec.lr_q(spec.rule.learning_rate), "outputs": model.outputs, "stages": model.stages,
        "macros": model.macros, "shapes": [list(w.shape) for w in model.weights_q],
        **({"persist": spec.persist.every} if spec.persist.enabled else {}),  # absent: the hashes stay as they were
    }, sort_keys=True).encode()
    blobs = [w.astype("<i2").tobytes() for w in model.weights_q]
    blobs += [c.name.encode() + np.asarray(c.values, dtype="<i8").tobytes() for c in model.constants]
    return zlib.crc32(b"".join(blobs), zlib.crc32(desc))


def sample_bytes(model: InitialModel) -> int:
    """One TRAIN sample on the wire: target int16, x int16[sample] (the head's inputs, or the frozen model's)."""
    return 2 + 2 * model.sample_dim


def result_bytes(model: InitialModel) -> int:
    """One training step's reply: outputs int16[outputs], digest u32."""
    return 2 * model.outputs + 4


def default_batch(model: InitialModel) -> int:
    """The most samples per TRAIN_BATCH frame within the byte budgets (at least 1)."""
    return max(1, min(MAX_BATCH_CAP, BATCH_REQUEST_BYTES // sample_bytes(model),
                      BATCH_REPLY_BYTES // result_bytes(model)))


def layout(model: InitialModel, max_batch: int | None = None) -> dict[str, int]:
    """Sizes the runtime's static buffers are declared with; `max_batch` defaults to default_batch(model)."""
    d, spec = model.dims, model.spec
    input_dim, hidden = d[0], d[1:-1]
    regression = spec.data.task == "regression"
    batch = default_batch(model) if max_batch is None else max_batch
    if batch < 1:
        raise ValueError(f"max_batch must be at least 1, got {batch}")
    request_body = max(2 * model.sample_dim, 4 + CHUNK, 6, 2 + batch * sample_bytes(model))
    reply_body = max(24 + 2 * len(d) + len(spec.name) + 1 + BOARD_NAME_ALLOWANCE, result_bytes(model), CHUNK, 24,
                     batch * result_bytes(model))
    return {
        "NUM_LAYERS": len(d) - 1, "INPUT_DIM": input_dim, "SAMPLE_DIM": model.sample_dim,
        "FRONTEND": int(model.frontend is not None),
        "NUM_CLASSES": 1 if regression else model.outputs, "REGRESSION": int(regression),
        "NUM_OUTPUTS": model.outputs, "NUM_STAGES": model.stages,
        "NUM_WEIGHTS": model.num_weights,
        "SUM_WIDTHS": int(sum(d[1:])), "MAX_WIDTH": max(d[1:]), "MAX_HIDDEN": max(hidden, default=1),
        "CHUNK": CHUNK, "RX_MAX": cobs_max(7 + request_body), "MAX_REPLY_BODY": reply_body, "MAX_BATCH": batch,
        "QUERY_BYTES": model.query_bytes, "ANSWER_BYTES": model.answer_bytes,
        "ANSWER_RX_MAX": cobs_max(7 + model.answer_bytes) if model.answer_bytes else 0,
    }


def static_ram(model: InitialModel, max_batch: int | None = None) -> dict[str, int]:
    """Bytes of every static buffer the runtime declares for this model (firmware/src/*.c), so that a model
    can be refused before it is built. tests/test_size.py holds this against the linked ELF."""
    sizes = layout(model, max_batch)
    return {
        "onw_state": (STATE_HEADER.size + 2 * sizes["NUM_WEIGHTS"] + 3) // 4 * 4,  # a struct of uint32s: padded to 4
        "rx": sizes["RX_MAX"], "tx": 3 + sizes["MAX_REPLY_BODY"] + 4,
        "sample": 2 * sizes["SAMPLE_DIM"], "outputs": 2 * sizes["NUM_OUTPUTS"],
        **({"answer_rx": sizes["ANSWER_RX_MAX"]} if sizes["ANSWER_RX_MAX"] else {}),
        **model.ram,  # the rule's own buffers
    }


def _c_array(values: np.ndarray, per_line: int = 12) -> str:
    items = [str(int(v)) for v in values]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "\n".join(f"    {line}," for line in lines)


def generate_c(model: InitialModel, max_batch: int | None = None) -> GeneratedC:
    """`max_batch` (default: default_batch) sizes only the receive and reply buffers: the model hash ignores it."""
    spec, fmt = model.spec, model.spec.format
    mhash = model_hash(model)
    sizes = layout(model, max_batch)
    macros = {
        **{f"RULE_{name.upper()}": str(rule_id(name)) for name in rule_names()},  # every rule file's guard
        "RULE": f"{rule_id(spec.rule.name)} /* {spec.rule.name} */",
        **{k: str(v) for k, v in sizes.items()},
        "ACT_FRAC": str(fmt.activation_frac), "WEIGHT_FRAC": str(fmt.weight_frac),
        "FEEDBACK_FRAC": str(fmt.feedback_frac), "LR_FRAC": str(fmt.lr_frac),
        "UPDATE_SHIFT": str(fmt.update_shift),
        **model.macros,
        "PERSIST": "1" if spec.persist.enabled else "0",
        "PERSIST_EVERY": f"{spec.persist.every}u",
        "LR_Q": f"{spec.lr_q(spec.rule.learning_rate)}u /* {spec.rule.learning_rate:g} * 2^{fmt.lr_frac} */",
        "SEED": f"{spec.seed}u", "MODEL_HASH": f"0x{mhash:08X}u", "MODEL_NAME": json.dumps(spec.name),
    }
    width = max(len(k) for k in macros) + 5
    lines = []
    for key, value in macros.items():
        note = MACRO_NOTES.get(key)
        if note and "/*" not in value:
            value = f"{value:<12} /* {note} */"
        lines.append(f"#define {'ONW_' + key:<{width}} {value}")
    header = "\n".join([
        f"/* Generated by onward.codegen from {spec.name}: do not edit. */",
        "#ifndef ONWARD_MODEL_H", "#define ONWARD_MODEL_H", "",
        *lines,
        "", "#endif", "",
    ])
    rows, offset, act = [], 0, 0
    for (fan_in, fan_out), w in zip(model.layer_shapes, model.weights_q, strict=True):
        rows.append(f"    {{{fan_in}, {fan_out}, {offset}u, {act}u}},")
        offset += w.size
        act += fan_out
    blocks = []
    for i, w in enumerate(model.weights_q):
        shape = " x ".join(str(n) for n in w.shape)
        blocks.append(f"    /* layer {i}: {shape}, Q{15 - fmt.weight_frac}.{fmt.weight_frac} */")
        blocks.append(_c_array(w.ravel()))
    constants = []
    for c in model.constants:
        values = np.asarray(c.values).ravel()
        constants += [f"/* {c.note} */" if c.note else f"/* {c.name} */",
                      f"const {c.ctype} {c.name}[{values.size}] = {{", _c_array(values), "};", ""]
    source = "\n".join([
        f"/* Generated by onward.codegen from {spec.name}: do not edit. */",
        '#include "onward/runtime.h"', "",
        "const onw_layer_t onw_layers[ONW_NUM_LAYERS] = {", *rows, "};", "",
        "/* Initial weights (flash); RESET copies them into onw_state.weights (RAM). */",
        "const int16_t onw_weights_init[ONW_NUM_WEIGHTS] = {", *blocks, "};", "",
        *constants,
    ])
    return GeneratedC(header, source, mhash)
