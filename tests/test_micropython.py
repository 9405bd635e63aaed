"""The MicroPython target: firmware/micropython/onward_rt.py against onward.fixed and the layers on random and extreme
inputs, run by the MicroPython unix port; every supported rule verified bit for bit through the protocol; the
generated module type-checked and cross-compiled for the boards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import make_spec
from onward import fixed
from onward.cli import main
from onward.codegen.micropython import RULES, RUNTIME, MicroPythonError, generate_micropython
from onward.data import load_dataset
from onward.deploy import compile_mpy
from onward.model import init_model
from onward.nn.dense import dense_fixed, update_fixed
from onward.paths import EXAMPLES, ROOT
from onward.rules import rule_names
from onward.rules.ffzero import fixed as ffzero
from onward.rules.pepita import feedback_matrix

# One MicroPython process evaluates every case: {"fn": name, "args": [...]} -> the result, as JSON.
HARNESS = """
import json, sys
import onward_rt as rt
assert rt.VIPER, "this port has no viper: the kernels would not be tested"
rt.VIPER = VIPER_ON

class Model:
    pass

def dense_case(a):
    m = Model()
    m.DIMS = (a["n_in"], a["n_out"])
    m.WEIGHT_FRAC = a["wf"]
    st = Holder(a["w"], m)
    return [rt.dense(st, 0, a["x"], a["relu"]), st.saturations]

def update_case(a):
    m = Model()
    m.DIMS = (a["n_in"], a["n_out"])
    m.UPDATE_SHIFT = a["shift"]
    st = Holder(a["w"], m)
    st.lr_q = a["lr_q"]
    st.seed, st.steps = a["seed"], a["steps"]
    rt.update(st, 0, a["delta"], a["x"])
    return [list(st.weights), st.saturations]

class Holder:
    def __init__(self, w, m):
        from array import array
        self.weights = array("h", w)
        self.model = m
        self.offsets = [0]
        self.strides = (m.DIMS[0],) if hasattr(m, "DIMS") else ()
        self.saturations = 0

def sat_case(fn, args):
    st = Holder([], Model())
    if fn == "sat16":
        return [rt.sat16(st, args[0]), st.saturations]
    return [rt.requant(st, *args), st.saturations]

def feedback_case(a):
    m = Model()
    m.DIMS = (a["n_in"], a["classes"])
    m.FEEDBACK_BOUND = a["bound"]
    st = Holder([], m)
    st.seed = a["seed"]
    return [rt.feedback_row(st, i) for i in range(a["n_in"])]

out = []
for case in json.loads(open("cases.json").read()):
    fn, args = case["fn"], case["args"]
    if fn in ("sat16", "requant"):
        out.append(sat_case(fn, args))
    elif fn == "dense":
        out.append(dense_case(args))
    elif fn == "update":
        out.append(update_case(args))
    elif fn == "feedback":
        out.append(feedback_case(args))
    elif fn == "direction":
        out.append([rt.direction_row(args[0], o, args[1], args[2]) for o in range(args[2])])
    else:
        out.append(getattr(rt, fn)(*args))
open("results.json", "w").write(json.dumps(out))
"""

RNG = np.random.default_rng(2026)
EXTREME_I64 = [0, 1, -1, 32767, 32768, -32768, -32769, 2**31 - 1, -(2**31), 2**40, -(2**40), 2**62 - 1, -(2**62) + 1]
U32_EDGE = [0, 1, 2**31 - 1, 2**31, 2**32 - 1, 0x9E3779B9]


def micropython_eval(cases: list[dict], folder: Path, viper: bool) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "onward_rt.py").write_text(RUNTIME.read_text())
    (folder / "harness.py").write_text(HARNESS.replace("VIPER_ON", str(viper)))
    (folder / "cases.json").write_text(json.dumps(cases))
    result = subprocess.run([sys.executable, "-m", "micropython_unix", "harness.py"], cwd=folder,
                            capture_output=True, text=True, timeout=600)
    # the unix port's module runner exits 0 even after an uncaught exception: look for the traceback too
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stdout + result.stderr
    return json.loads((folder / "results.json").read_text())


def ints(n: int, lo: int, hi: int, edges: list[int]) -> list[int]:
    values = [int(v) for v in RNG.integers(lo, hi, size=n, endpoint=True)]
    return [*[e for e in edges if lo <= e <= hi], *values]


def test_integer_semantics_equal_the_reference(tmp_path: Path) -> None:
    """Each function of onward_rt.py against its twin in onward.fixed / onward.nn.dense: random and extreme inputs
    (int16 and int32 edges, 2**62, uint32 edges), a few thousand cases in one MicroPython process."""
    cases: list[dict] = []
    expected: list = []

    def case(fn: str, args: object, want: object) -> None:
        cases.append({"fn": fn, "args": args})
        expected.append(want)

    for x in ints(300, -(2**63) + 1, 2**63 - 1, EXTREME_I64):
        v, s = fixed.sat16([x])
        case("sat16", [x], [int(v[0]), s])
    for x in ints(300, -(2**40), 2**40, EXTREME_I64):
        frm, to = int(RNG.integers(0, 31)), int(RNG.integers(0, 16))
        v, s = fixed.requant([x], frm, to)
        case("requant", [x, frm, to], [int(v[0]), s])
    for x in ints(200, -(2**62) + 1, 2**62 - 1, EXTREME_I64):
        shift = int(RNG.integers(0, 63))
        case("round_shift", [x, shift], int(fixed.round_shift([x], shift)[0]))
    for a in ints(200, -(2**62), 2**62, EXTREME_I64):
        b = int(RNG.choice([-7, -2, -1, 1, 2, 3, 32768, 2**40 + 1]))
        case("div_trunc", [a, b], int(fixed.div_trunc([a], [b])[0]))
    for x in ints(200, 0, 2**32 - 1, U32_EDGE):
        case("mix32", [x], int(fixed.mix32([x])[0]))
        key, n = int(RNG.integers(0, 2**32)), int(RNG.integers(0, 2**32))
        case("derive", [key, n], fixed.derive(key, n))
        case("rand", [key, x], int(fixed.rand(key, [x])[0]))
    for x in ints(200, -(2**40), 2**40, EXTREME_I64):
        shift, r = int(RNG.integers(0, 48)), int(RNG.integers(0, 2**32))
        case("stochastic_shift", [x, shift, r], int(fixed.stochastic_shift([x], shift, [r])[0]))
    for t in ints(200, -(2**24), 0, [0, -1, -(2**24)]):
        frac = int(RNG.integers(8, 16))
        case("exp2_q15", [t, frac], int(fixed.exp2_q15([t], frac)[0]))
    for _ in range(100):
        n, frac = int(RNG.integers(1, 12)), int(RNG.integers(8, 14))
        z = [int(v) for v in RNG.integers(-32768, 32768, size=n)]
        case("softmax_q15", [z, frac], [int(v) for v in fixed.softmax_q15(z, frac)])
    for n in range(60):  # dense layers, saturating ones included (weights and inputs near the int16 edges), and
        # rows longer than the viper kernel's chunk (255 terms) with every term at its extreme
        n_in, n_out, wf = int(RNG.integers(1, 20)), int(RNG.integers(1, 12)), int(RNG.integers(6, 14))
        if n % 10 == 0:
            n_in = int(RNG.choice([255, 256, 511, 600]))
        scale = int(RNG.choice([300, 32767]))
        w = RNG.integers(-scale, scale + 1, size=(n_out, n_in))
        x = RNG.integers(-scale, scale + 1, size=n_in)
        if n % 20 == 0:
            w[:], x[:] = -32768, int(RNG.choice([-32768, 32767, -1]))
        relu = bool(RNG.integers(0, 2))
        y, s = dense_fixed(w, x, wf, relu)
        case("dense", {"n_in": n_in, "n_out": n_out, "wf": wf, "w": w.ravel().tolist(), "x": x.tolist(),
                       "relu": relu}, [y.tolist(), s])
    for _ in range(60):  # the dithered update, with lr and deltas that saturate some weights
        n_in, n_out = int(RNG.integers(1, 20)), int(RNG.integers(1, 12))
        shift, lr_q = int(RNG.integers(16, 40)), int(RNG.choice([1, 1677722, 2**31 - 1]))
        seed, steps = int(RNG.integers(0, 2**32)), int(RNG.integers(0, 2**32))
        w = RNG.integers(-32768, 32768, size=(n_out, n_in))
        delta = RNG.integers(-32768, 32768, size=n_out) * RNG.integers(0, 2, size=n_out)
        if len(cases) % 3 == 0:  # row factors g around the viper kernel's limit 2**15 (and the fallback past it)
            shift = 16 + int(RNG.integers(0, 3))
            lr_q = int(RNG.choice([1 << 16, (1 << 15) - 1, 1 << 15]))
        x = RNG.integers(-32768, 32768, size=n_in)
        key = fixed.derive(fixed.derive(fixed.derive(seed, 2), steps), 0)
        new, s = update_fixed(w, delta, x, lr_q, shift, key)
        case("update", {"n_in": n_in, "n_out": n_out, "shift": shift, "lr_q": lr_q, "seed": seed, "steps": steps,
                        "w": w.ravel().tolist(), "delta": delta.tolist(), "x": x.tolist()},
             [new.ravel().tolist(), s])
    for _ in range(20):
        n_in, classes, bound = int(RNG.integers(1, 40)), int(RNG.integers(1, 11)), int(RNG.integers(0, 32768))
        seed = int(RNG.integers(0, 2**32))
        want = feedback_matrix(seed, n_in, classes, bound)
        case("feedback", {"n_in": n_in, "classes": classes, "bound": bound, "seed": seed}, want.tolist())
    for x in ints(200, 0, 2**62, [0, 1, 2, 3, 4, 2**24 - 1, 2**24, 2**60 - 1, 2**62]):  # FFzero's norms
        case("isqrt", [x], int(fixed.isqrt([x])[0]))
        case("bit_length", [x], x.bit_length())
    for _ in range(40):
        zs = [RNG.integers(-(2**45), 2**45, size=int(RNG.integers(1, 12))) >> int(RNG.integers(0, 45))
              for _ in range(2)]
        zs[1] = zs[1][:len(zs[0])] if len(zs[1]) >= len(zs[0]) else np.resize(zs[1], len(zs[0]))
        case("rescale", [[z.tolist() for z in zs]], [z.tolist() for z in ffzero.rescale(zs)])
    for _ in range(20):
        key, n_in, n_out = int(RNG.integers(0, 2**32)), int(RNG.integers(1, 70)), int(RNG.integers(1, 40))
        r = ffzero.dense_directions(key, n_in, n_out)
        case("direction", [key, n_in, n_out], r[:, :n_in + 1].tolist())
    for viper in (True, False):  # the viper kernels, and the plain loops a port without viper runs
        got = micropython_eval(cases, tmp_path / f"viper-{viper}", viper)
        assert len(got) == len(expected)
        for c, g, want in zip(cases, got, expected, strict=True):
            assert g == want, (viper, c["fn"], c["args"] if len(json.dumps(c["args"])) < 400 else "...", g, want)


@pytest.mark.parametrize("example", ["digits_pepita", "digits_mempepita", "digits_last_layer", "digits_ffzero",
                                     "f1_ffzero_regression", "digits_ff", "digits_fgrad"])
def test_verify_on_the_unix_port(example: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`onward verify examples/<example>.toml --target micropython --steps 500`: 0 mismatches."""
    assert main(["verify", str(EXAMPLES / f"{example}.toml"), "--target", "micropython", "--steps", "500",
                 "--build-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "500 training steps" in out and "0 mismatches" in out


def test_a_rule_without_a_micropython_step_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A rule module without MICROPYTHON = True (every rule has it today: here one is taken out)."""
    import onward.codegen.micropython as codegen

    monkeypatch.setattr(codegen, "RULES", tuple(r for r in RULES if r != "ff"))
    spec = make_spec(rule={"name": "ff"})
    with pytest.raises(MicroPythonError, match="no `ff` rule yet; it has: pepita, mempepita, ffzero, fgrad"):
        generate_micropython(init_model(spec, load_dataset(spec)))
    assert main(["verify", str(EXAMPLES / "digits_ff.toml"), "--target", "micropython",
                 "--build-dir", str(tmp_path)]) == 2
    assert "no `ff` rule yet" in capsys.readouterr().err


def test_generate_writes_the_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", str(EXAMPLES / "digits_pepita.toml"), "--micropython", "-o", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"onward_rt.py", "onward_digits_pepita.py", "main.py"}
    assert (tmp_path / "onward_rt.py").read_text() == RUNTIME.read_text()
    # every rule has its MicroPython step but the photonic controller, whose QUERY exchange the runtime lacks
    assert set(RULES) == set(rule_names()) - {"photonic"}


def test_the_photonic_controller_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(EXAMPLES / "photonic_iris.toml"), "--target", "micropython",
                 "--build-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no `photonic` rule yet" in err


def test_conv_blocks_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(EXAMPLES / "digits_ffzero_cnn.toml"), "--target", "micropython",
                 "--build-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "error: the MicroPython target has dense layers only; `model.conv` needs a C target\n"


TYPINGS = ROOT / ".onward" / "typings"


def pyright(folder: Path, port: str) -> dict:
    stubs = TYPINGS / port
    assert stubs.is_dir(), f"{stubs} is missing: scripts/setup.sh installs micropython-{port}-stubs there"
    (folder / "pyrightconfig.json").write_text(json.dumps({
        "stubPath": str(stubs), "typeCheckingMode": "basic", "pythonVersion": "3.11",
        "reportMissingModuleSource": False}))
    result = subprocess.run([sys.executable, "-m", "pyright", "--outputjson", str(folder)], cwd=folder,
                            capture_output=True, text=True, timeout=300)
    return json.loads(result.stdout)


@pytest.mark.parametrize("port", ["rp2", "stm32"])
def test_pyright_with_the_boards_stubs(port: str, tmp_path: Path) -> None:
    """The generated module against the MicroPython stubs of the board (micropython-<port>-stubs): 0 errors; a
    planted wrong attribute (machine.UARTX) is reported."""
    assert main(["generate", str(EXAMPLES / "digits_pepita.toml"), "--micropython", "-o", str(tmp_path)]) == 0
    report = pyright(tmp_path, port)
    assert report["summary"]["filesAnalyzed"] == 3
    assert report["summary"]["errorCount"] == 0, report["generalDiagnostics"]
    with (tmp_path / "onward_digits_pepita.py").open("a") as f:
        f.write("\nimport machine\n\nmachine.UARTX\n")
    report = pyright(tmp_path, port)
    assert report["summary"]["errorCount"] == 1
    assert '"UARTX" is not a known attribute of module "machine"' in report["generalDiagnostics"][0]["message"]


@pytest.mark.parametrize("arch", ["armv6m", "armv7emsp"])
def test_mpy_cross_compiles_every_module(arch: str, tmp_path: Path) -> None:
    """mpy-cross for the RP2040 (Cortex-M0+) and the STM32F4 (Cortex-M4F): every generated module compiles."""
    for example in ("digits_pepita", "digits_last_layer"):
        folder = tmp_path / example
        assert main(["generate", str(EXAMPLES / f"{example}.toml"), "--micropython", "-o", str(folder)]) == 0
        for source in folder.glob("*.py"):
            mpy = compile_mpy(source, arch)
            header = mpy.read_bytes()[:2]
            assert header[0] == ord("M") and header[1] == 6  # the .mpy magic and version (MicroPython >= 1.22)


def test_deploy_without_a_board_names_what_it_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", lambda *a, **k: [])
    assert main(["deploy", str(EXAMPLES / "digits_pepita.toml"), "--build-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no MicroPython board found" in err and "2e8a (Raspberry Pi)" in err
    assert not any(tmp_path.iterdir())
    assert main(["deploy", str(EXAMPLES / "digits_pepita.toml"), "--arch", "z80", "--port", "/dev/null"]) == 2
    assert "unknown --arch 'z80'" in capsys.readouterr().err
