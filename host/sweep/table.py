"""What a sweep's results file shows: the Markdown table of docs/results.md (`onward sweep FILE --table`) and PNG
plots (`--plot DIR`): score vs epoch, score vs forward evaluations, and fixed point minus float per row.

A table row is a run name with its settings; seeds (a `seed` in the grid) are folded into mean ± sd over the
seeds. Each run shows its latest successful result, whichever code version made it (its `code` column says
which). The float column is the float reference, the fixed-point column the `fixed` target (or, without one, the
reference that trained in lockstep with the device), the device column the first device target of the row."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from onward.sweep.plan import HOST_TARGETS, Sweep, SweepError

NO_VALUE = "—"


def _groups(sweep: Sweep, results: pd.DataFrame) -> list[tuple[tuple[str, str, str], pd.DataFrame]]:
    """Rows of `results` that belong to the sweep, grouped by (name, kind, settings less the seed), in the sweep
    file's order."""
    ok = results[results["status"] == "ok"] if not results.empty else results
    if not ok.empty:  # the latest successful row of each run of the sweep, from whichever code version made it
        ok = ok[ok["run_key"].isin({r.run_key for r in sweep.runs})].drop_duplicates("run_key", keep="last")
    order: list[tuple[str, str, str]] = []
    for run in sweep.runs:
        key = (run.name, run.kind, json.dumps({k: v for k, v in run.settings.items() if k != "seed"}))
        if key not in order:
            order.append(key)
    if ok.empty:
        return [(key, ok) for key in order]
    settings = ok["settings"].map(lambda s: json.dumps({k: v for k, v in json.loads(s).items() if k != "seed"}))
    return [(key, ok[(ok["name"] == key[0]) & (ok["kind"] == key[1]) & (settings == key[2])]) for key in order]


def _stat(values: Iterable[float], task: str) -> str:
    v = np.array([x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))], float)
    if v.size == 0:
        return NO_VALUE
    scale, unit, digits = (1.0, "", 3) if task == "regression" else (100.0, " %", 1)
    if v.size == 1:
        return f"{scale * v[0]:.{digits}f}{unit}"
    return f"{scale * v.mean():.{digits}f} ± {scale * v.std(ddof=1):.{digits}f}{unit}"


def _column(group: pd.DataFrame, target: str, field: str = "score") -> list[float]:
    rows = group[group["target"] == target]
    return [] if rows.empty or field not in rows else list(rows[field])


def device_target(results: pd.DataFrame) -> str | None:
    targets = [t for t in results.get("target", pd.Series(dtype=str)).unique() if t not in HOST_TARGETS]
    return sorted(targets)[0] if targets else None


def fixed_scores(group: pd.DataFrame, device: str | None) -> list[float]:
    return _column(group, "fixed") or (_column(group, device, "reference_score") if device else [])


def markdown_table(sweep: Sweep, results: pd.DataFrame) -> str:
    device = device_target(results) if not results.empty else None
    header = ["rule", "data set", "network", "epochs", "forward evals / sample", "float", "fixed point",
              f"device ({device})" if device else "device", "fixed - float"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    seeds = set()
    for (name, _kind, _settings), group in _groups(sweep, results):
        if group.empty:
            lines.append(f"| {name} | " + " | ".join([NO_VALUE] * (len(header) - 1)) + " |")
            continue
        first = group.iloc[0]
        task = str(first["task"])
        seeds.add(len(group["seed"].unique()))
        network = str(first["network"])
        if first["kind"] in ("rule", "fgrad_projection") and int(first["directions"]) > 1:
            network += f", K = {int(first['directions'])}"
        variant = first.get("variant")
        if isinstance(variant, str) and variant:
            network += f", {variant}"
        stages = int(first["stages"]) if first["kind"] == "rule" else 1  # bp_dd: its epochs are over the whole net
        epochs = f"{int(first['epochs'])}" + (f" x {stages} layers" if stages > 1 else "")
        evals = first["evals"]
        floats, fixeds = _column(group, "float"), fixed_scores(group, device)
        gap = NO_VALUE
        if floats and fixeds:
            d = float(np.mean(fixeds) - np.mean(floats))
            gap = f"{d:+.3f}" if task == "regression" else f"{100 * d:+.1f} pp"
        lines.append(" | ".join([
            f"| {first['rule']}", str(first["data"]), network, epochs,
            NO_VALUE if evals is None or math.isnan(evals) else f"{evals:.0f}",
            _stat(floats, task), _stat(fixeds, task),
            _stat(_column(group, device) if device else [], task), gap]) + " |")
    folded = max(seeds, default=1)
    note = ("\nScores: test accuracy, or R² on the test set (regression)"
            + (f"; mean ± sd over {folded} seeds." if folded > 1 else "; one seed (the spec's)."))
    return "\n".join(lines) + "\n" + note


def plot(sweep: Sweep, results: pd.DataFrame, folder: Path) -> list[Path]:
    """Three PNGs in `folder`, named after the sweep file: <stem>_epochs.png, <stem>_evals.png, <stem>_gap.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(key, g) for key, g in _groups(sweep, results) if not g.empty]
    if not groups:
        raise SweepError(f"no results of {sweep.path.name} in {sweep.output}: run the sweep first")
    folder.mkdir(parents=True, exist_ok=True)
    device = device_target(results) if not results.empty else None
    data_sets = sorted({str(g.iloc[0]["data"]) for _, g in groups})
    paths = []
    for axis, stem in (("epoch", "epochs"), ("forward evaluations per sample", "evals")):
        cols = min(2, len(data_sets))
        rows = -(-len(data_sets) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(7.5 * cols, 4.8 * rows), squeeze=False)
        for ax in axes.flat[len(data_sets):]:
            ax.set_visible(False)
        for ax, data_set in zip(axes.flat, data_sets, strict=False):
            for (name, _, _), group in groups:
                if str(group.iloc[0]["data"]) != data_set:
                    continue
                for target, style in (("float", "-"), ("fixed", "--")):
                    rows = group[group["target"] == target]
                    if rows.empty or "curve" not in rows:
                        continue
                    curve = np.mean([np.asarray(c, float) for c in rows["curve"]], axis=0)
                    if stem == "epochs":
                        x = np.arange(1, len(curve) + 1)
                    else:
                        evals = rows.iloc[0].get("evals_curve")
                        if evals is None or len(evals) != len(curve):
                            continue
                        x = np.asarray(evals, float)
                    ax.plot(x, curve, style, label=f"{name} ({target})")
            ax.set_title(data_set)
            ax.set_xlabel(axis)
            if stem == "evals":  # budgets span three decades (one pass per step to K = 16 tangents)
                ax.set_xscale("log")
            ax.set_ylabel("test score (accuracy or R²)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"{sweep.path.name}: test score vs {axis} (solid: float; dashed: fixed point, for the runs "
                     "with a `fixed` target)")
        fig.tight_layout()
        path = folder / f"{sweep.path.stem}_{stem}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    labels, gaps = [], []
    for (name, _, _), group in groups:
        floats, fixeds = _column(group, "float"), fixed_scores(group, device)
        if floats and fixeds:
            labels.append(name)
            gaps.append(float(np.mean(fixeds) - np.mean(floats)))
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(len(labels), 3) + 1.2))
    ax.barh(labels, gaps, color=["tab:green" if g >= 0 else "tab:red" for g in gaps])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("fixed point - float (test score)")
    ax.invert_yaxis()
    fig.suptitle(f"{sweep.path.name}: what fixed point costs, per row")
    fig.tight_layout()
    path = folder / f"{sweep.path.stem}_gap.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [*paths, path]


def rows_as_records(results: pd.DataFrame) -> list[dict[str, Any]]:
    """The results as JSON-ready records (--json): lists for the curves, None for NaN."""
    out = []
    for record in results.to_dict("records"):
        clean = {}
        for k, v in record.items():
            if isinstance(v, np.ndarray):
                v = v.tolist()
            elif isinstance(v, float) and math.isnan(v):
                v = None
            elif isinstance(v, np.generic):
                v = v.item()
            clean[k] = v
        out.append(clean)
    return out
