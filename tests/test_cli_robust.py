"""No traceback, ever, from the `onward` command (#16): generated spec documents (valid TOML with wrong or extreme
types and values, unknown keys, every rule; and raw bytes in any encoding) and arguments, run through the CLI in
process. Every run ends with exit status 0, or 2 and exactly one line on stderr naming what was wrong; an exception
escaping cli.main fails the test. The four inputs that once gave tracebacks are regression cases."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onward.cli import main
from onward.paths import EXAMPLES
from onward.rules import rule_names
from onward.spec import SpecError

# --- a small TOML writer (the standard library reads TOML only) ------------------------------------------------


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def toml_document(doc: dict[str, Any]) -> str:
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for section, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{json.dumps(section)}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


# --- generated documents ----------------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.sampled_from([0, 1, -1, 2, 3, 8, 10, 12, 16, 24, 64, 200, 4097, 2**31, -(2**63), 2**63 - 1]),
    st.sampled_from([0.0, 0.05, 0.5, 1.0, -1.0, 1e-300, 1e300, math.inf, -math.inf, math.nan]),
    st.sampled_from(["", "x", "digits", "synthetic", "mnist1d", "f1", "f2", "diabetes", "relu", "linear",
                     "weight", "activity", "é", "a b", *rule_names()]),
    st.booleans(),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4), st.lists(st.sampled_from([1, 3, 8, 16]), max_size=3))
KEYS = {
    "model": ["hidden", "conv", "width"],
    "data": ["set", "features", "classes", "samples", "scale", "test_fraction", "colour"],
    "rule": ["name", "learning_rate", "epochs", "lr_decay", "lr_decay_epochs", "batch_size", "momentum",
             "feedback_scale", "directions", "perturbation", "margin", "activation", "threshold", "mode", "speed"],
    "format": ["activation_frac", "weight_frac", "feedback_frac", "lr_frac", "bits"],
}
SMALL = {"name": "r", "model": {"hidden": [8]}, "data": {"set": "synthetic", "features": 6, "classes": 3,
                                                          "samples": 60},
         "rule": {"name": "pepita", "epochs": 1}, "format": {"activation_frac": 11}}


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A small valid spec with some keys changed, added or dropped: most cases fail late, in the validation."""
    doc: dict[str, Any] = json.loads(json.dumps(SMALL))
    doc["rule"]["name"] = draw(st.sampled_from(rule_names()))
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from([*KEYS, "top", "extra"]))
        if section == "top":
            doc[draw(st.sampled_from(["name", "seed", "bogus"]))] = draw(VALUES)
        elif section == "extra":
            doc[draw(st.sampled_from(["model", "data", "rule", "format"]))] = draw(VALUES)  # a section not a table
        elif isinstance(doc.get(section), dict):
            if draw(st.booleans()):
                doc[section][draw(st.sampled_from(KEYS[section]))] = draw(VALUES)
            elif doc[section]:
                doc[section].pop(draw(st.sampled_from(sorted(doc[section]))))
    return toml_document(doc)


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def assert_one_line(code: int, err: str) -> None:
    assert code in (0, 2), (code, err)
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=documents())
def test_generated_specs_never_give_a_traceback(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(text, encoding="utf-8")
    assert_one_line(*run_cli(capsys, ["generate", str(spec), "-o", str(tmp_path / "out")]))


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-16")),
                      st.text(max_size=200).map(lambda t: t.encode("utf-8"))))
def test_any_bytes_never_give_a_traceback(data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_bytes(data)
    code, err = run_cli(capsys, ["generate", str(spec), "-o", str(tmp_path / "out")])
    assert code == 2  # no byte string of up to 200 bytes is a whole valid spec
    assert_one_line(code, err)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["verify", "demo", "report", "build", "generate", "flash"]),
       flag=st.sampled_from(["--steps", "--epochs", "--target", "--transport", "--batch", "--board", "--nope"]),
       value=st.sampled_from(["-3", "0", "1.5", "x", "", "qemu-z80", "99999999999999999999"]))
def test_bad_arguments_are_one_line(command: str, flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, str(EXAMPLES / "digits_pepita.toml"), flag, value, "--definitely-not-an-option"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: onward"), err


# --- the four inputs that gave tracebacks -------------------------------------------------------------------------

def test_the_four_former_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    random_bytes = tmp_path / "random.toml"
    random_bytes.write_bytes(bytes([0x80, 0xE4, 0x00, 0xFF, 0x12]) * 8)
    utf16 = tmp_path / "utf16.toml"
    utf16.write_text('name = "x"\n[model]\nhidden = [8]\n[rule]\nname = "pepita"\n', encoding="utf-16")
    code, err = run_cli(capsys, ["generate", str(random_bytes), "-o", str(tmp_path / "a")])
    assert code == 2 and "not UTF-8 text (byte 0 is 0x80)" in err
    code, err = run_cli(capsys, ["generate", str(utf16), "-o", str(tmp_path / "b")])
    assert code == 2 and "not UTF-8 text (byte 0 is 0xFF)" in err
    with pytest.raises(SystemExit) as exc:
        main(["verify", str(EXAMPLES / "digits_pepita.toml"), "--steps", "-3"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == "error: onward verify: argument --steps: must be a whole number of at least 1, " \
                                      "got '-3'\n"
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    code, err = run_cli(capsys, ["generate", str(EXAMPLES / "digits_pepita.toml"), "-o", str(blocked / "c")])
    assert code == 2 and err.startswith(f"error: -o {blocked / 'c'}: cannot write the C there") and err.count("\n") == 1


# --- the other file kinds: photonic specs and sweep files -------------------------------------------------------

PHOTONIC_KEYS = {"data": ["set", "pool", "test_fraction", "split_seed", "bogus"],
                 "chip": ["modes", "preset", "seeds", "phase_noise", "dac_bits", "crosstalk", "adc_bits", "bogus"],
                 "train": ["methods", "queries", "batch", "step", "perturbation", "gaussian_directions",
                           "directional_directions", "twin_steps", "twin_lr", "bogus"]}
PHOTONIC = {"name": "p", "data": {"set": "iris"}, "chip": {"modes": 8, "preset": "l2ight", "seeds": [1]},
            "train": {"methods": ["spsa"], "queries": 10, "twin_steps": 1}}


@st.composite
def photonic_documents(draw: st.DrawFn) -> str:
    doc: dict[str, Any] = json.loads(json.dumps(PHOTONIC))
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from([*PHOTONIC_KEYS, "top"]))
        if section == "top":
            doc[draw(st.sampled_from(["name", "bogus", "data"]))] = draw(VALUES)
        elif isinstance(doc.get(section), dict):
            doc[section][draw(st.sampled_from(PHOTONIC_KEYS[section]))] = draw(VALUES)
    return toml_document(doc)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=photonic_documents())
def test_photonic_specs_never_give_a_traceback(text: str, tmp_path: Path) -> None:
    """A photonic spec is read and checked whole before anything runs: a spec, or one SpecError line."""
    from onward.photonic.experiment import load_photonic_spec

    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_photonic_spec(path)
    except SpecError as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(key=st.sampled_from(["output", "base", "targets", "record", "grid", "run", "bogus"]), value=VALUES,
       run_key=st.sampled_from(["name", "base", "kind", "targets", "set", "bogus"]), run_value=VALUES)
def test_sweep_files_never_give_a_traceback(key: str, value: Any, run_key: str, run_value: Any,
                                            tmp_path: Path) -> None:
    from onward.sweep.plan import SweepError, load_sweep

    doc = {"base": str(EXAMPLES / "digits_pepita.toml"), key: value, "run": [{run_key: run_value}]}
    path = tmp_path / "s.toml"
    path.write_text(toml_document(doc), encoding="utf-8")
    try:
        load_sweep(path)
    except (SweepError, SpecError) as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)
