"""The results of a sweep: one tidy table, a row per run, in a Parquet file.

Parquet (pandas with pyarrow) rather than CSV: the per-epoch curves are lists and stay lists, the columns keep
their types (an integer count, a float score, NaN where a figure does not apply) without a parsing convention, and
pandas, polars, DuckDB and Spark read it as it is. The file is rewritten whole after every finished run, through a
temporary file and an atomic rename, so an interrupted sweep leaves the runs finished so far and never a torn file;
a rerun skips the runs whose run_id (spec, kind, target, what is recorded, code version) has a row with status ok.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from onward.errors import OnwardError


class StoreError(OnwardError, RuntimeError):
    pass


def read_results(path: Path) -> pd.DataFrame:
    """The results table (empty without a file)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame()
    try:
        return pd.read_parquet(path)
    except Exception as exc:
        raise StoreError(f"{path}: not a results file ({type(exc).__name__}: {exc})") from None


def done_ids(results: pd.DataFrame) -> set[str]:
    if results.empty:
        return set()
    return set(results.loc[results["status"] == "ok", "run_id"])


def write_results(path: Path, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Write every row (the latest row of a run_id wins: a failed run measured again replaces its error)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.drop_duplicates("run_id", keep="last").reset_index(drop=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return frame
