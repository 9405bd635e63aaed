"""`onward import MODEL.tflite -o SPEC.toml`: a spec that keeps the imported model frozen up to a cut and learns a
head on its features, forward-only. The spec is ordinary TOML, to read and edit: `[frozen]` names the model
(relative to the spec's folder) and the cut; `[model] hidden` the head's hidden layers; `[format]
activation_frac` is chosen so that Q(15 - af).af holds the features measured on the data set."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from onward.data import load_dataset
from onward.spec import SpecError, parse_spec
from onward.tflite.frontend import Frontend, classifier_input
from onward.tflite.graph import read


def import_spec(model_path: Path, output: Path, hidden: tuple[int, ...] = (), rule: str = "pepita", cut: int = -1,
                data_set: str = "digits", shift: str = "none", learning_rate: float = 0.02, epochs: int = 10,
                ) -> str:
    """Write the spec; return a summary of what was imported."""
    graph = read(model_path)
    cut = classifier_input(graph) if cut < 0 else cut
    name = "".join(c if c.isalnum() else "_" for c in model_path.stem) + "_head"
    relative = os.path.relpath(Path(model_path).resolve(), Path(output).resolve().parent)
    if relative.startswith(".."):  # not beside or below the spec: an absolute path reads better
        relative = str(Path(model_path).resolve())
    raw = {"name": name, "seed": 0, "data": {"set": data_set, "shift": shift}, "model": {"hidden": list(hidden)},
           "rule": {"name": rule, "learning_rate": learning_rate, "epochs": epochs},
           "format": {"activation_frac": 12, "weight_frac": 12}, "frozen": {"tflite": str(model_path), "cut": cut}}
    spec = parse_spec(raw, str(output))
    frontend = Frontend.load(model_path, cut, 12)
    data = load_dataset(spec)
    peak = max(float(np.abs(frontend.features_float(frontend.encode(x))).max()) for x in (data.x_train, data.x_test))
    af = max(0, min(14, 14 - math.floor(math.log2(max(peak, 1e-9)))))  # the finest with peak < 2**(15 - af)
    if peak >= 2.0 ** (15 - af):
        af -= 1
    raw["format"]["activation_frac"] = af  # type: ignore[index]
    parse_spec({**raw, "frozen": {"tflite": str(model_path), "cut": cut}}, str(output))  # the rule's own checks
    t = graph.tensor(cut)
    ops = [op.kind for op, _ in frontend.ops]
    text = "\n".join([
        f"# Imported by `onward import {model_path.name}`: {len(ops)} operators run frozen on the device",
        f"# ({', '.join(ops)}), cut at tensor {cut} ({t.name!r}, {frontend.features} features, scale {t.scale:.6g},",
        f"# zero point {t.zero_point}); a `{rule}` head learns on them.",
        f"name = {name!r}".replace("'", '"'),
        "seed = 0", "",
        "[data]", f'set = "{data_set}"', *([f'shift = "{shift}"'] if shift != "none" else []), "",
        "[model]", f"hidden = {list(hidden)}             # the head's hidden layers", "",
        "[rule]", f'name = "{rule}"', f"learning_rate = {learning_rate}", f"epochs = {epochs}", "",
        "[format]", f"activation_frac = {af}     # the features reach {peak:.3g}", "weight_frac = 12", "",
        "[frozen]", f'tflite = "{relative}"', f"cut = {cut}", "",
    ])
    try:
        output.write_text(text)
    except OSError as exc:
        raise SpecError(f"{output}: cannot write the spec ({exc.strerror})") from None
    return (f"{model_path}: {len(graph.operators)} operators; frozen up to tensor {cut} ({t.name!r}): "
            f"{' > '.join(ops)}; {frontend.features} features for a {rule} head {list(hidden) or '(linear)'}\n"
            f"wrote {output}")
