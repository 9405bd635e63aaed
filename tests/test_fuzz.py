"""The firmware under libFuzzer with AddressSanitizer and UndefinedBehaviorSanitizer (onward.fuzz): every rule's
frames, commands and state-image harnesses for a few seconds each with no finding, and the harness's checks shown to
catch bugs planted in a copy of app.c. Longer runs: bench/fuzz.py (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_spec
from onward import fuzz
from onward.data import load_dataset
from onward.model import init_model
from onward.paths import FIRMWARE_SRC
from onward.rules import rule_names

SECONDS = 2


def small_model(rule: str) -> object:
    # the photonic controller has no hidden layers (its chip's meshes are its layers); its steps ask the host for
    # chip queries, so the fuzzed byte stream answers them too
    hidden = [] if rule == "photonic" else [9, 6]
    spec = make_spec(name=f"fz_{rule}", rule={"name": rule, "learning_rate": 0.5}, model={"hidden": hidden})
    return init_model(spec, load_dataset(spec))


@pytest.mark.parametrize("rule", rule_names())
def test_every_rule_survives_fuzzing(rule: str, tmp_path: Path) -> None:
    model = small_model(rule)
    for harness in fuzz.HARNESSES:
        binary = fuzz.build_harness(model, harness, tmp_path / "bin")  # type: ignore[arg-type]
        corpus = fuzz.seed_corpus(model, tmp_path / f"corpus-{harness}")  # type: ignore[arg-type]
        run = fuzz.run_harness(binary, corpus, SECONDS, tmp_path / f"artifacts-{harness}")
        assert not run.crashes, f"{rule} {harness}: {run.crashes}\n{run.log[-4000:]}"
        assert run.executions > 1000 and run.coverage > 50, run.log[-2000:]


PLANTED = {
    # no reply to any well-formed frame: "every frame is answered" must catch it
    "no reply": ("    reply((uint8_t)(cmd | ONW_REPLY), out);\n", "    (void)out;\n"),
    # DUMP moves the step counter: "the state changes only by a state-changing command" must catch it
    "dump writes": ("        for (i = 0; i < count; i++) {\n            *out++ = onw_state_get_byte(offset + i);",
                    "        onw_state.steps++;\n        for (i = 0; i < count; i++) {\n"
                    "            *out++ = onw_state_get_byte(offset + i);"),
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_the_harness_finds_a_planted_bug(bug: str, tmp_path: Path) -> None:
    old, new = PLANTED[bug]
    app = (FIRMWARE_SRC / "app.c").read_text()
    assert old in app, "the planted bug no longer applies to app.c: update PLANTED"
    broken = tmp_path / "app.c"
    broken.write_text(app.replace(old, new))
    model = small_model("pepita")
    binary = fuzz.build_harness(model, "frames", tmp_path / "bin", overrides={"app.c": broken})  # type: ignore[arg-type]
    run = fuzz.run_harness(binary, fuzz.seed_corpus(model, tmp_path / "corpus"), 10,  # type: ignore[arg-type]
                           tmp_path / "artifacts")
    assert run.crashes, f"the harness missed '{bug}'\n{run.log[-2000:]}"
