"""Small builders shared by the tests."""

from __future__ import annotations

from typing import Any

from onward.spec import Spec, parse_spec


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
