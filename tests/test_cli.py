"""The `onward` command end to end: verify on a target, over a serial port, and its errors."""

from pathlib import Path

import pytest

from onward.cli import main
from onward.paths import EXAMPLES
from onward.session import prepare
from onward.spec import load_spec
from onward.targets.build import build_firmware
from onward.targets.run import start_qemu

SMALL = """
name = "cli_small"
seed = 5
[data]
set = "synthetic"
features = 10
classes = 3
samples = 90
[model]
hidden = [8]
[rule]
name = "mempepita"
learning_rate = 0.05
[format]
activation_frac = 11
"""


@pytest.fixture
def small_spec(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_verify_native_exits_zero(small_spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(small_spec), "--target", "native", "--steps", "100",
                 "--build-dir", str(tmp_path / "b")]) == 0
    assert "100 training steps" in capsys.readouterr().out


def test_verify_over_a_serial_port(small_spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A board that is already running (here QEMU, reached as socket://) is verified without building."""
    _, model = prepare(load_spec(small_spec))
    process, link = start_qemu(build_firmware(model, "qemu-m4", tmp_path))
    url = link.port.port  # type: ignore[attr-defined]
    link.close()  # QEMU's server accepts the next client
    try:
        assert main(["verify", str(small_spec), "--port", url, "--steps", "40",
                     "--build-dir", str(tmp_path / "unused")]) == 0
    finally:
        process.kill()
        process.wait()
    assert f"on {url}: 40 training steps" in capsys.readouterr().out
    assert not (tmp_path / "unused").exists()


def test_verify_reports_another_model(small_spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, model = prepare(load_spec(EXAMPLES / "digits_pepita.toml"))
    process, link = start_qemu(build_firmware(model, "qemu-m4", tmp_path))
    url = link.port.port  # type: ignore[attr-defined]
    link.close()
    try:
        assert main(["verify", str(small_spec), "--port", url, "--steps", "5"]) == 1
    finally:
        process.kill()
        process.wait()
    assert "the target runs another model: digits_pepita@qemu-m4" in capsys.readouterr().err


def test_bad_spec_exits_two_with_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(SMALL.replace("hidden = [8]", "hidden = [8, 0]"))
    assert main(["verify", str(bad), "--steps", "5"]) == 2
    assert "`model.hidden[1]` must be in [1, 4096], got 0" in capsys.readouterr().err


def test_generate_writes_deterministic_c(small_spec: Path, tmp_path: Path) -> None:
    for out in ("a", "b"):
        assert main(["generate", str(small_spec), "-o", str(tmp_path / out)]) == 0
    for name in ("model.h", "model.c"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
