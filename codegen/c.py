"""Emit the model-specific C for one initialised model: model.h (dimensions, formats, hyper-parameters,
buffer sizes as macros) and model.c (layer table, initial weights in flash, no malloc).

The output is deterministic: the same spec gives the same bytes (and so the same model hash)."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

import numpy as np

from onward.model import InitialModel
from onward.spec import RULES, feedback_bound

CHUNK = 256  # bytes of state per LOAD/DUMP frame
BOARD_NAME_ALLOWANCE = 32  # HELLO carries "<model>@<board>"
RULE_IDS = {name: i + 1 for i, name in enumerate(RULES)}  # as ONW_RULE_* in runtime.h


MACRO_NOTES = {
    "NUM_WEIGHTS": "int16 weights of all layers, row-major (out x in)",
    "SUM_WIDTHS": "outputs of all layers (PEPITA's pass-1 store)",
    "MAX_WIDTH": "widest layer output", "MAX_HIDDEN": "widest hidden layer (1 if none)",
    "CHUNK": "state bytes per LOAD/DUMP frame", "RX_MAX": "largest encoded request frame",
    "MAX_REPLY_BODY": "largest reply body", "ACT_FRAC": "inputs/activations/errors: Q(15-f).f",
    "WEIGHT_FRAC": "weights", "FEEDBACK_FRAC": "PEPITA's F", "LR_FRAC": "lr_q = lr * 2^LR_FRAC",
    "UPDATE_SHIFT": "2*ACT_FRAC + LR_FRAC - WEIGHT_FRAC", "FEEDBACK_BOUND": "F ~ U[-bound, bound] LSB",
    "MODEL_HASH": "HELLO reports it; verify checks it",
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
        "lr_q": spec.lr_q(spec.rule.learning_rate), "bound": feedback_bound(spec, model.dims[0]),
    }, sort_keys=True).encode()
    weights = b"".join(w.astype("<i2").tobytes() for w in model.weights_q)
    return zlib.crc32(weights, zlib.crc32(desc))


def layout(model: InitialModel) -> dict[str, int]:
    """Sizes the runtime's static buffers are declared with."""
    d, spec = model.dims, model.spec
    input_dim, classes, hidden = d[0], d[-1], d[1:-1]
    request_body = max(1 + 2 * input_dim, 4 + CHUNK, 6)
    reply_body = max(22 + 2 * len(d) + len(spec.name) + 1 + BOARD_NAME_ALLOWANCE, 2 * classes + 4, CHUNK, 24)
    return {
        "NUM_LAYERS": len(d) - 1, "INPUT_DIM": input_dim, "NUM_CLASSES": classes,
        "NUM_WEIGHTS": model.num_weights,
        "SUM_WIDTHS": int(sum(d[1:])), "MAX_WIDTH": max(d[1:]), "MAX_HIDDEN": max(hidden, default=1),
        "CHUNK": CHUNK, "RX_MAX": cobs_max(7 + request_body), "MAX_REPLY_BODY": reply_body,
    }


def static_ram(model: InitialModel) -> dict[str, int]:
    """Bytes of every static buffer the runtime declares for this model (firmware/src/*.c), so that a model
    can be refused before it is built. tests/test_size.py holds this against the linked ELF."""
    sizes = layout(model)
    h = sizes["MAX_HIDDEN"]
    ram = {
        "onw_state": (12 + 2 * sizes["NUM_WEIGHTS"] + 3) // 4 * 4,  # a struct of uint32s: padded to 4
        "error_q": 2 * sizes["NUM_CLASSES"],
        "modulated": 2 * 2 * h, "rx": sizes["RX_MAX"], "tx": 3 + sizes["MAX_REPLY_BODY"] + 4,
        "sample": 2 * sizes["INPUT_DIM"], "logits": 2 * sizes["NUM_CLASSES"],
    }
    if model.spec.rule.name == "pepita":
        ram["activations"] = 2 * sizes["SUM_WIDTHS"]
    else:
        ram["clean"] = 2 * 2 * sizes["MAX_WIDTH"]
        ram["x_modulated"] = 2 * sizes["INPUT_DIM"]
    return ram


def _c_array(values: np.ndarray, per_line: int = 12) -> str:
    items = [str(int(v)) for v in values]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "\n".join(f"    {line}," for line in lines)


def generate_c(model: InitialModel) -> GeneratedC:
    spec, fmt = model.spec, model.spec.format
    mhash = model_hash(model)
    sizes = layout(model)
    macros = {
        "RULE": f"{RULE_IDS[spec.rule.name]} /* {spec.rule.name} */",
        **{k: str(v) for k, v in sizes.items()},
        "ACT_FRAC": str(fmt.activation_frac), "WEIGHT_FRAC": str(fmt.weight_frac),
        "FEEDBACK_FRAC": str(fmt.feedback_frac), "LR_FRAC": str(fmt.lr_frac),
        "UPDATE_SHIFT": str(fmt.update_shift),
        "FEEDBACK_BOUND": str(feedback_bound(spec, model.dims[0])),
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
    for fan_in, fan_out in model.layer_shapes:
        rows.append(f"    {{{fan_in}, {fan_out}, {offset}u, {act}u}},")
        offset += fan_in * fan_out
        act += fan_out
    blocks = []
    for i, w in enumerate(model.weights_q):
        blocks.append(f"    /* layer {i}: {w.shape[0]} x {w.shape[1]}, Q{15 - fmt.weight_frac}.{fmt.weight_frac} */")
        blocks.append(_c_array(w.ravel()))
    source = "\n".join([
        f"/* Generated by onward.codegen from {spec.name}: do not edit. */",
        '#include "onward/runtime.h"', "",
        "const onw_layer_t onw_layers[ONW_NUM_LAYERS] = {", *rows, "};", "",
        "/* Initial weights (flash); RESET copies them into onw_state.weights (RAM). */",
        "const int16_t onw_weights_init[ONW_NUM_WEIGHTS] = {", *blocks, "};", "",
    ])
    return GeneratedC(header, source, mhash)
