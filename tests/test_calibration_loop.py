"""The calibration loop (onward.calibration.loop, compare, run): the events of a life, the reference's outputs,
the device streaming a life bit-exact through power cuts on native and the emulated boards, what the learned
correction achieves against the baselines, and `onward calibrate` end to end and on bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from onward import fixed
from onward.calibration import compare, loop
from onward.calibration.features import correction_targets
from onward.calibration.sensor import scenario, simulate
from onward.cli import main
from onward.data import load_dataset
from onward.model import InitialModel, init_model
from onward.paths import EXAMPLES
from onward.spec import Spec, load_spec

SPECS = {"pepita": EXAMPLES / "pressure_calibration.toml", "ffzero": EXAMPLES / "pressure_calibration_ffzero.toml"}


def short(spec: Spec, days: float = 6.0, seed: int = 0) -> Spec:
    return replace(spec, seed=seed, calibration=replace(spec.calibration, days=days))


def model_of(spec: Spec) -> InitialModel:
    return init_model(spec, load_dataset(spec))


def test_a_life_trains_at_each_reference_reading_then_infers_every_sample() -> None:
    spec = short(load_spec(SPECS["pepita"]))
    model, tr = model_of(spec), compare.lifetime(spec)
    lf = loop.life(model, tr, 3)
    assert lf.events == tr.t_s.size + 3 * tr.ref_index.size
    infer = lf.kinds == loop.INFER
    assert np.array_equal(lf.samples[infer], np.arange(tr.t_s.size))  # every sample once, in order
    trains = np.flatnonzero(lf.kinds == loop.TRAIN)
    assert np.array_equal(lf.samples[trains], np.repeat(tr.ref_index, 3))
    for j, k in enumerate(tr.ref_index):  # the three steps come right before the reading's own inference
        first = np.flatnonzero(lf.samples == k)[0]
        assert list(lf.kinds[first:first + 4]) == [loop.TRAIN] * 3 + [loop.INFER]
        assert np.all(lf.targets[first:first + 3] == fixed.to_q(correction_targets(tr)[j], 12)[0])


def test_the_reference_starts_at_the_factory_calibration_and_learns_the_offset() -> None:
    """PEPITA's zero-initialised linear model outputs no correction until the first reading; 10 days later its
    correction is the drifting offset: the error is a fraction of the factory-only one."""
    spec = short(load_spec(SPECS["pepita"]), days=12.0, seed=5)
    model, tr = model_of(spec), compare.lifetime(spec)
    outputs = loop.run_reference(model, loop.life(model, tr, 5))
    assert np.all(outputs[:tr.ref_index[0]] == 0)
    ours = compare.score(tr, "onward", loop.corrected(model, tr, outputs))
    factory = compare.score(tr, "factory", tr.p_reported_pa)
    assert factory.within < 0.2 and ours.within > 0.95 and ours.rms < factory.rms / 4


@pytest.mark.parametrize("rule", sorted(SPECS))
@pytest.mark.parametrize("target", ["native", "qemu-m0", "qemu-m4"])
def test_the_device_lives_the_life_bit_exact_through_power_cuts(rule: str, target: str, tmp_path: Path) -> None:
    """Every inference and training step compared; 8 power failures, half of them also cutting a save; after every
    power-on the board's state is the reference's (run_device raises Mismatch otherwise)."""
    spec = short(load_spec(SPECS[rule]), days=4.0, seed=3)
    model, tr = model_of(spec), compare.lifetime(spec)
    lf = loop.life(model, tr, spec.calibration.steps_per_reference)
    run = loop.run_device(model, lf, target, tmp_path, cuts=8, seed=1)
    assert run.inferences == tr.t_s.size and run.boots >= 9 and run.cuts_between_frames == 8
    assert 0 < run.train_steps <= lf.events - tr.t_s.size
    assert len(run.cut_samples) == 8 + sum(run.cuts_in_saves.values())
    if not run.cut_samples or sum(run.cuts_in_saves.values()) == 0:
        pytest.fail(f"no save was cut on {target}: {run}")
    # without power cuts the device's outputs are the reference's, sample for sample
    clean = loop.run_device(model, lf, target, tmp_path, cuts=0)
    assert np.array_equal(clean.outputs, loop.run_reference(model, lf)) and clean.boots == 1


def test_calibrate_prints_every_method_and_writes_the_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = SPECS["pepita"].read_text().replace('scenario = "outdoor"', 'scenario = "outdoor"\ndays = 5')
    spec_path = tmp_path / "short.toml"
    spec_path.write_text(text)
    png = tmp_path / "life.png"
    assert main(["calibrate", str(spec_path), "--target", "native", "--cuts", "4", "--plot", str(png),
                 "--build-dir", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    methods = [r["method"] for r in out["rows"]]
    assert methods[:4] == ["factory", "one-point", "RLS", "onward pepita (reference)"]
    assert methods[4].startswith("onward pepita on native, ")
    assert out["device"]["inferences"] == 5 * 1440 and out["device"]["cuts_between_frames"] == 4
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["calibrate", str(spec_path), "--target", "native", "--cuts", "2", "--plot", str(png),
                 "--build-dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "| one-point |" in table and "every output and state digest bit-exact" in table


@pytest.mark.parametrize(("edit", "message"), [
    (("[calibration]", "[nothing]"), "unknown key `nothing`"),
    (('scenario = "outdoor"', 'scenario = "moon"'), "`calibration.scenario` must be one of ('indoor', 'outdoor')"),
    (("steps_per_reference = 5", "steps_per_reference = 0"), "`calibration.steps_per_reference` must be in [1, 100]"),
    (("power_cuts = 20", "power_cuts = -1"), "`calibration.power_cuts` must be in [0, 10000], got -1"),
])
def test_calibrate_rejects_a_bad_calibration_table(edit: tuple[str, str], message: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec_path = tmp_path / "bad.toml"
    spec_path.write_text(SPECS["pepita"].read_text().replace(*edit))
    assert main(["calibrate", str(spec_path), "--build-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_calibrate_needs_a_calibration_table_and_persistence(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain.toml"
    plain.write_text(SPECS["pepita"].read_text().split("[calibration]")[0])
    assert main(["calibrate", str(plain), "--build-dir", str(tmp_path)]) == 2
    assert "`onward calibrate` needs a `[calibration]` table" in capsys.readouterr().err
    classify = tmp_path / "digits.toml"
    classify.write_text((EXAMPLES / "digits_pepita.toml").read_text() + "\n[calibration]\n")
    assert main(["calibrate", str(classify), "--build-dir", str(tmp_path)]) == 2
    assert "`[calibration]` needs a regression model" in capsys.readouterr().err
    assert main(["calibrate", str(SPECS["pepita"]), "--cuts", "-3", "--build-dir", str(tmp_path)]) == 2
    assert "--cuts must be in [0, 10000], got -3" in capsys.readouterr().err


def test_simulated_lives_differ_by_seed_and_repeat_by_seed() -> None:
    a, b = simulate(scenario("outdoor", days=3), 1), simulate(scenario("outdoor", days=3), 1)
    assert np.array_equal(a.p_counts, b.p_counts)
    assert not np.array_equal(a.p_counts, simulate(scenario("outdoor", days=3), 2).p_counts)


@pytest.mark.parametrize("rule", sorted(SPECS))
def test_the_calibration_firmware_fits_the_cortex_m0(rule: str, tmp_path: Path) -> None:
    """`onward report` on qemu-m0 (16 KB RAM): static RAM with the worst-case stack within the part, and the saved
    state's two slots of one 1 KiB page each."""
    from onward.report import collect

    r = collect(SPECS[rule], "qemu-m0", tmp_path)
    assert r["ram_with_stack_bytes"] < r["part_ram_bytes"] == 16384
    assert r["persist_flash_bytes"] == 2 * 1024
    assert r["instructions_per_training_step"] > r["instructions_per_inference"] > 0
