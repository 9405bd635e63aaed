"""verify over a bad link (onward.targets.mangle: bytes dropped, duplicated and flipped, frames lost, replies late,
both ways, between the host and the real native firmware): it reports a link error, and never a false "bit-exact"
nor a false mismatch, nor waits past its timeout. 120 sessions here; bench/mangle.py runs 1000 and more."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from helpers import make_spec
from onward.data import load_dataset
from onward.model import init_model
from onward.targets.mangle import mangled_session


def test_a_bad_link_is_a_link_error_never_a_false_verdict(tmp_path: Path) -> None:
    spec = make_spec(name="mangled", model={"hidden": [9, 6]})
    data = load_dataset(spec)
    model = init_model(spec, data)
    rng = np.random.default_rng(2026)
    outcomes: collections.Counter[str] = collections.Counter()
    for i in range(120):
        session = mangled_session(model, data, tmp_path, rng, rate=(0.01, 0.05, 0.2)[i % 3],
                                  batch=None if i % 2 else 1)
        outcomes[session.outcome] += 1
        assert session.outcome in ("bit-exact", "link error"), session
    assert outcomes["link error"] >= 40 and outcomes["bit-exact"] >= 10, outcomes  # both paths were taken
