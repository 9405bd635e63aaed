"""Scores every rule and baseline reports: R² for regression (accuracy is a mean of equal predictions)."""

from __future__ import annotations

import numpy as np

from onward.nn.dense import F64


def r2_score(y: F64, pred: F64) -> float:
    """The coefficient of determination 1 - SS_res / SS_tot (scikit-learn's r2_score for one output)."""
    return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
