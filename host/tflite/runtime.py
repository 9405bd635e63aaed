"""The .tflite interpreter onward compares with: LiteRT (ai-edge-litert, a dependency), with tflite-runtime
accepted as a fallback import where LiteRT is missing (it is frozen at 2.14, has wheels for CPython <= 3.11 only
and fails to create an Interpreter under numpy 2; docs/tflite.md). Either runs TFLite's built-in kernels, not the
XNNPACK delegate, which requantises in float."""

from __future__ import annotations

from typing import Any

import numpy as np

from onward.tflite.graph import TfliteError


def interpreter(model: bytes) -> Any:
    """An allocated interpreter of the model on the built-in kernels."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter, OpResolverType  # type: ignore[no-redef]
        except ImportError:
            raise TfliteError("running a .tflite model needs LiteRT: pip install ai-edge-litert (scripts/setup.sh "
                              "installs it)") from None
    it = Interpreter(model_content=model,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return it


def run(model: bytes, x: np.ndarray) -> np.ndarray:
    """The model's int8 output for each int8 input sample (one invoke per sample, batch 1 as the model is)."""
    it = interpreter(model)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    results = []
    for sample in x:
        it.set_tensor(inp["index"], np.asarray(sample)[None].astype(np.int8))
        it.invoke()
        results.append(it.get_tensor(out["index"])[0].copy())
    return np.asarray(results, dtype=np.int64)
