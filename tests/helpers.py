"""Small builders shared by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from onward.spec import Spec, parse_spec

if TYPE_CHECKING:
    from onward.counting import Emulator

# (name, target, portable kernels): the builds the kernel tests compare. Every backend (TFLM's pattern: the same
# cases everywhere): the SMLALD paths (Cortex-M4, M7), the portable C on the M4, on Armv6-M (M0, no 64-bit multiply
# instruction), on RV32 and on the host (x86-64 or whatever runs the tests, through ctypes).
DSP_AND_PORTABLE = (("dsp", "qemu-m4", False), ("portable", "qemu-m4", True), ("m7", "qemu-m7", False))
EVERY_BACKEND = (*DSP_AND_PORTABLE, ("m0", "qemu-m0", False), ("rv32", "qemu-rv32", False), ("host", "native", False))


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
                     variants: tuple[tuple[str, str, bool], ...] = EVERY_BACKEND) -> dict[str, Emulator]:
    """The spec's firmware built for each (name, target, portable) variant without link-time optimisation, loaded in
    the instruction-counting emulator (the native target: built as a shared library, called through ctypes): the
    kernel tests call its functions directly, with any argument."""
    from onward.counting import Emulator
    from onward.data import load_dataset
    from onward.model import init_model
    from onward.report import board_cpu, build_variant
    from onward.targets.build import build_firmware

    model = init_model(spec, load_dataset(spec))
    out: dict[str, Any] = {}
    for name, target, portable in variants:
        if target == "native":
            library = build_firmware(model, target, folder, variant="lib", extra_cflags=NATIVE_LIBRARY_FLAGS)
            out[name] = NativeKernels(library.path)
            continue
        firmware = build_variant(model, target, folder, portable=portable, lto=False)
        out[name] = Emulator(firmware.path, board_cpu(firmware))
    return out


NATIVE_LIBRARY_FLAGS = ("-shared", "-fPIC", "-DONW_NO_MAIN")


class NativeKernels:
    """The kernels of the native build, as a shared library in this process, behind Emulator's interface (alloc,
    write, read, address, call, reset_scratch, symbols): the kernel tests' cases run on the host's CPU too.
    Pointers are the host's (64-bit), so each function's C signature is spelled out (SIGNATURES)."""

    SIZE = 1 << 20

    def __init__(self, path: Path) -> None:
        import ctypes

        self.path = Path(path)
        self.lib = ctypes.CDLL(str(self.path))
        self.memory = ctypes.create_string_buffer(self.SIZE)
        self.base = ctypes.addressof(self.memory)
        self.symbols = _LibrarySymbols(self.lib)
        self.reset_scratch()

    def reset_scratch(self) -> None:
        self._next = self.base

    def alloc(self, data: bytes | int, align: int = 8, offset: int = 0) -> int:
        blob = bytes(data)
        address = -(-self._next // align) * align + offset
        assert address + len(blob) <= self.base + self.SIZE, "scratch memory exhausted"
        self.write(address, blob)
        self._next = address + len(blob)
        return address

    def write(self, address: int, data: bytes) -> None:
        import ctypes

        ctypes.memmove(address, bytes(data), len(data))

    def read(self, address: int, size: int) -> bytes:
        import ctypes

        return ctypes.string_at(address, size)

    def address(self, name: str) -> int:
        import ctypes

        return ctypes.addressof(ctypes.c_char.in_dll(self.lib, name))

    def call(self, function: str, args: list[int] = (), count: bool = False) -> Any:  # type: ignore[assignment]
        from onward.counting import Call

        assert not count, "the host build counts no instructions: count them on an emulated target"
        f = getattr(self.lib, function)
        f.argtypes, f.restype = SIGNATURES[function]
        result = f(*args)
        return Call(0, 0 if result is None else int(result), 0)


def _signatures() -> dict[str, tuple[list[Any], Any]]:
    import ctypes as c

    p, u16, u32, i32 = c.c_void_p, c.c_uint16, c.c_uint32, c.c_int
    return {
        "onw_dense": ([p, p, u16, u16, i32, i32, p, p], None),
        "onw_dense_acc": ([p, u32, p, u16, u16, p], None),
        "onw_dense_update": ([p, p, p, p, u16, u16, u32, i32, u32, p], None),
        "onw_reset": ([u32], None),
        "onw_conv_acc": ([p, u16, u16, u16, p, u16, c.c_uint8, c.c_uint8, p], None),
        "onw_conv_response": ([p, u16, u16, u16, c.c_uint8, c.c_uint8, u32, u32, p], None),
        "onw_conv_normalise": ([p, u32, i32, c.c_int16, p, p], None),
        "onw_conv_normalise_wide": ([p, u32, i32, c.c_int32, p], None),
        "onw_relu_maxpool": ([p, u16, u16, u16, c.c_uint8, c.c_uint8, p], None),
        "onw_conv_project": ([p, p, u32, u16, p], None),
        "onw_frontend": ([p, p], None),
        "onw_calib_features": ([p, c.c_int32, p, p], None),
    }


SIGNATURES = _signatures()


class _LibrarySymbols:
    """`name in emulator.symbols` for a shared library: does it export the name."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and hasattr(self.lib, name)
