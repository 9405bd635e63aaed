import ctypes
import subprocess
from pathlib import Path

import pytest

from onward.paths import FIRMWARE_INCLUDE, FIRMWARE_SRC


@pytest.fixture(scope="session")
def cfixed(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    """firmware/src/fixed.c compiled natively as a shared library, with typed ctypes signatures."""
    out: Path = tmp_path_factory.mktemp("cfixed") / "libfixed.so"
    subprocess.run(
        ["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
         "-I", str(FIRMWARE_INCLUDE), str(FIRMWARE_SRC / "fixed.c"), "-o", str(out)],
        check=True,
    )
    lib = ctypes.CDLL(str(out))
    c = ctypes
    sigs = {
        "onw_sat16": (c.c_int16, [c.c_int64, c.POINTER(c.c_uint32)]),
        "onw_round_shift": (c.c_int64, [c.c_int64, c.c_int]),
        "onw_requant": (c.c_int16, [c.c_int64, c.c_int, c.c_int, c.POINTER(c.c_uint32)]),
        "onw_div_trunc": (c.c_int64, [c.c_int64, c.c_int64]),
        "onw_stochastic_shift": (c.c_int64, [c.c_int64, c.c_int, c.c_uint32]),
        "onw_isqrt": (c.c_uint32, [c.c_uint64]),
        "onw_dither_update": (c.c_int64, [c.c_int16, c.c_int64, c.c_uint32]),
        "onw_dither_next_word": (c.c_uint32, [c.c_uint32]),
        "onw_mix32": (c.c_uint32, [c.c_uint32]),
        "onw_derive": (c.c_uint32, [c.c_uint32, c.c_uint32]),
        "onw_rand": (c.c_uint32, [c.c_uint32, c.c_uint32]),
        "onw_uniform_int": (c.c_int32, [c.c_uint32, c.c_uint32, c.c_int32]),
        "onw_exp2_q15": (c.c_int32, [c.c_int32, c.c_int]),
        "onw_softmax_q15": (None, [c.POINTER(c.c_int16), c.c_int, c.c_int, c.POINTER(c.c_int32)]),
        "onw_softmax_error": (None, [c.POINTER(c.c_int16), c.c_int, c.c_int, c.c_int32, c.POINTER(c.c_int32),
                                     c.POINTER(c.c_int16), c.POINTER(c.c_uint32)]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib
