"""The calibration plots (matplotlib, PNG): every method's error over the sensor's life, with the ±50 Pa band, the
reference readings, the stress events and, for a device run, the power cuts marked; and a close-up of the
largest stress event and the readings that bring each method back."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from onward.calibration.metrics import BAND_PA
from onward.calibration.sensor import DAY, Trace

F64 = NDArray[np.float64]
COLOURS = {"factory": "0.6", "one-point": "tab:orange", "RLS": "tab:green"}
ONWARD_COLOURS = ("tab:blue", "tab:purple", "tab:red", "tab:brown")
CLOSE_UP_DAYS = (-0.5, 3.0)  # around the largest stress event


def _colour(method: str, i: int) -> str:
    return COLOURS.get(method, ONWARD_COLOURS[i % len(ONWARD_COLOURS)])


def _panel(ax, tr: Trace, series: dict[str, F64], days: F64, span: slice, cuts_s: Sequence[float]) -> None:
    onward = 0
    for method, s in series.items():
        colour = _colour(method, onward)
        onward += method not in COLOURS
        width = 0.6 if method in ("factory", "one-point", "RLS") else 0.9
        ax.plot(days[span], (s - tr.p_true_pa)[span], lw=width, color=colour, label=method)
    ax.axhspan(-BAND_PA, BAND_PA, color="0.9", zorder=0, label="±50 Pa")
    lo, hi = days[span][0], days[span][-1]
    refs = tr.t_s[tr.ref_index] / DAY
    refs = refs[(refs >= lo) & (refs <= hi)]
    ax.plot(refs, np.full(refs.size, 0.04), "|", color="k", ms=6, transform=ax.get_xaxis_transform(),
            label="reference readings")
    for t, shift in zip(tr.stress_t_s / DAY, tr.stress_pa, strict=True):
        if lo <= t <= hi:
            ax.axvline(t, color="tab:red", ls="--", lw=0.8)
            ax.annotate(f"stress {shift / 100:+.1f} hPa", (t, 0.97), xycoords=("data", "axes fraction"),
                        fontsize=7, color="tab:red", ha="left", va="top", rotation=90)
    cuts = np.asarray(cuts_s) / DAY
    cuts = cuts[(cuts >= lo) & (cuts <= hi)]
    if cuts.size:
        ax.plot(cuts, np.full(cuts.size, 0.93), "v", color="k", ms=4, transform=ax.get_xaxis_transform(),
                label="power cuts")
    ax.set_xlim(lo, hi)
    ax.set_ylabel("error (Pa)")


def plot_life(tr: Trace, series: dict[str, F64], path: str | Path, title: str = "",
              cuts_s: Sequence[float] = ()) -> None:
    """Two panels: the whole life (errors clipped to ±300 Pa) and a close-up of the largest stress event."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = tr.t_s / DAY
    fig, (whole, close) = plt.subplots(2, 1, figsize=(11, 7.5), gridspec_kw={"height_ratios": [3, 2]})
    _panel(whole, tr, series, days, slice(None), cuts_s)
    whole.set_ylim(-300, 300)
    whole.set_title(title or "calibration error over the sensor's life")
    whole.legend(loc="lower left", bbox_to_anchor=(0.0, 0.08), fontsize=7, ncol=4)
    if tr.stress_t_s.size:
        t0 = tr.stress_t_s[np.argmax(np.abs(tr.stress_pa))] / DAY
        span = slice(*np.searchsorted(days, [t0 + CLOSE_UP_DAYS[0], t0 + CLOSE_UP_DAYS[1]]))
        _panel(close, tr, series, days, span, cuts_s)
        close.set_ylim(-250, 250)
        close.set_title("the largest stress event, close up", fontsize=9)
    close.set_xlabel("days since soldering")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
