"""A .tflite file as onward reads it: the first subgraph's tensors (shape, type, quantisation, constant data) and
operators, through LiteRT's flatbuffers schema (ai_edge_litert.schema_py_generated; no TensorFlow).

`read` refuses with one line (TfliteError, exit status 2) what onward cannot import: a file that is not a .tflite
(too short, wrong identifier, a flatbuffer that does not parse), a float model, an operator outside OPERATORS
(named with its index), a tensor type other than int8 / int32 where one is needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from onward.errors import OnwardError

IDENTIFIER = b"TFL3"  # bytes 4..7 of every .tflite file (the flatbuffer's file identifier)
OPERATORS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "RESHAPE",
             "SOFTMAX")
ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}  # ActivationFunctionType
PADDINGS = {0: "same", 1: "valid"}
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}
TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8"}


class TfliteError(OnwardError, ValueError):
    """A .tflite file onward cannot import; the message names the file and what is wrong with it."""


def schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:  # tflite-runtime has no schema module; LiteRT is a dependency, so this is a broken install
        raise TfliteError("reading .tflite files needs LiteRT's flatbuffers schema: pip install ai-edge-litert "
                          "(scripts/setup.sh installs it)") from None
    return schema_py_generated


@dataclass(frozen=True)
class Quantization:
    scale: NDArray[np.float32]  # one per tensor, or one per channel along `axis`
    zero_point: NDArray[np.int64]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    type: str  # TYPE_NAMES
    quantization: Quantization | None
    data: NDArray[Any] | None = None  # a constant (weights, bias, a shape), else None

    @property
    def scale(self) -> float:
        assert self.quantization is not None
        return float(self.quantization.scale[0])

    @property
    def zero_point(self) -> int:
        assert self.quantization is not None
        return int(self.quantization.zero_point[0])


@dataclass(frozen=True)
class Operator:
    index: int
    kind: str  # one of OPERATORS
    inputs: tuple[int, ...]  # tensor indices (-1: an optional input left out, e.g. no bias)
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    source: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]


def read(path: str | Path) -> Graph:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TfliteError(f"{path}: cannot read the model ({exc.strerror})") from None
    return parse(data, str(path))


def parse(data: bytes, source: str = "<tflite>") -> Graph:
    s = schema()
    if len(data) < 8:
        raise TfliteError(f"{source}: not a .tflite file: {len(data)} bytes, a flatbuffer has at least 8")
    if data[4:8] != IDENTIFIER:
        raise TfliteError(f"{source}: not a .tflite file: bytes 4-7 are {bytes(data[4:8])!r}, expected "
                          f"{IDENTIFIER!r} (the TFLite flatbuffer identifier)")
    try:
        model = s.ModelT.InitFromPackedBuf(bytearray(data), 0)
        graph = _graph(s, model, source)
    except TfliteError:
        raise
    except Exception as exc:  # the flatbuffer runtime reads past the end of a truncated file: any error
        raise TfliteError(f"{source}: truncated or corrupt .tflite file ({len(data)} bytes): "
                          f"{type(exc).__name__}: {exc}") from None
    return graph


def _names(enum: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


def _graph(s: Any, model: Any, source: str) -> Graph:
    if not model.subgraphs:
        raise TfliteError(f"{source}: the model has no subgraph")
    sub = model.subgraphs[0]
    buffers = model.buffers or []
    tensors = tuple(_tensor(i, t, buffers, source) for i, t in enumerate(sub.tensors or []))
    op_names = _names(s.BuiltinOperator)
    codes = model.operatorCodes or []
    operators = []
    for i, op in enumerate(sub.operators or []):
        code = codes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)  # the schema's two fields (old files: the second)
        kind = op_names.get(builtin, f"code {builtin}")
        if kind not in OPERATORS:
            raise TfliteError(f"{source}: operator {i} is {kind} (builtin code {builtin}), which onward does not "
                              f"import; supported: {', '.join(OPERATORS)}")
        operators.append(Operator(i, kind, tuple(int(v) for v in op.inputs), tuple(int(v) for v in op.outputs),
                                  _options(op.builtinOptions)))
    graph = Graph(source, tensors, tuple(operators), tuple(int(v) for v in sub.inputs),
                  tuple(int(v) for v in sub.outputs))
    for index in graph.inputs:
        t = graph.tensor(index)
        if t.type != "int8" or t.quantization is None:
            raise TfliteError(f"{source}: input tensor {index} ({t.name!r}) is {t.type}"
                              f"{'' if t.quantization else ', not quantised'}: onward imports int8 models "
                              f"(full-integer quantisation: inference_input_type = int8)")
    return graph


def _tensor(index: int, t: Any, buffers: list[Any], source: str) -> Tensor:
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name or "")
    shape = tuple(int(v) for v in (t.shape if t.shape is not None else ()))
    type_name = TYPE_NAMES.get(t.type, f"type {t.type}")
    q = t.quantization
    quant = None
    if q is not None and q.scale is not None and len(q.scale):
        zp = q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else [0] * len(q.scale)
        quant = Quantization(np.asarray(q.scale, dtype=np.float32), np.asarray(zp, dtype=np.int64),
                             int(q.quantizedDimension))
    data = None
    if 0 < t.buffer < len(buffers) and buffers[t.buffer].data is not None and len(buffers[t.buffer].data):
        if t.type not in DTYPES:
            raise TfliteError(f"{source}: constant tensor {index} ({name!r}) has {type_name}, which onward does "
                              f"not read")
        raw = np.asarray(buffers[t.buffer].data, dtype=np.uint8).tobytes()
        values = np.frombuffer(raw, dtype=np.dtype(DTYPES[t.type]).newbyteorder("<"))
        if values.size != int(np.prod(shape)):
            raise TfliteError(f"{source}: constant tensor {index} ({name!r}) holds {values.size} values, its shape "
                              f"{list(shape)} needs {int(np.prod(shape))}")
        data = values.reshape(shape).astype(values.dtype.newbyteorder("="))
    return Tensor(index, name, shape, type_name, quant, data)


def _options(options: Any) -> dict[str, Any]:
    """An operator's builtin options as a plain dict (activation and padding by name)."""
    if options is None:
        return {}
    out: dict[str, Any] = {}
    for key, value in vars(options).items():
        if key == "fusedActivationFunction":
            out["activation"] = ACTIVATIONS.get(value, f"activation {value}")
        elif key == "padding":
            out["padding"] = PADDINGS.get(value, f"padding {value}")
        elif isinstance(value, int | float | bool):
            out[key] = value
    return out
