"""`onward sweep SWEEP.toml`: every run of a sweep is a task on Dask distributed: a LocalCluster on this machine by
default (one single-threaded worker process per core), or an existing cluster with --scheduler tcp://HOST:8786.
Results are written as runs finish; a rerun runs only what is missing; a run that fails is recorded with its error.
Dask retries a task whose worker died on another worker, so a lost worker loses no result."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from onward.sweep.plan import Run, Sweep
from onward.sweep.store import done_ids, read_results, write_results
from onward.sweep.task import execute


def cluster_client(scheduler: str | None, workers: int | None) -> Any:
    """A dask.distributed Client: to `scheduler`, or to a new LocalCluster of `workers` processes (default: one per
    core), one thread each (the runs are CPU-bound Python and numpy: processes, not threads, share out the cores)."""
    import logging

    from dask.distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)  # the progress bar and the run lines are the output
    if scheduler is not None:
        return Client(scheduler, timeout="30s")
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    return Client(cluster)


def run_sweep(sweep: Sweep, scheduler: str | None = None, workers: int | None = None,
              build_root: Path | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Run every missing run of `sweep`; return all its rows (those found and those made now)."""
    from dask.distributed import as_completed
    from tqdm import tqdm

    previous = read_results(sweep.output)
    rows: list[dict[str, Any]] = previous.to_dict("records") if not previous.empty else []
    done = done_ids(previous)
    todo: list[Run] = [r for r in sweep.runs if r.run_id not in done]
    say = print if progress else (lambda *a, **k: None)
    say(f"sweep {sweep.path.name}: {len(sweep.runs)} runs, {len(sweep.runs) - len(todo)} already in "
        f"{sweep.output}, {len(todo)} to run", file=sys.stderr)
    if todo:
        build = Path(build_root or Path("build") / "sweeps" / sweep.path.stem).resolve()
        with cluster_client(scheduler, workers) as client:
            say(f"Dask scheduler {client.scheduler.address}, dashboard {client.dashboard_link}, "
                f"{len(client.scheduler_info()['workers'])} workers", file=sys.stderr)
            futures = {client.submit(execute, run, str(build), key=f"run-{run.run_id}", pure=False): run
                       for run in todo}
            bar = tqdm(total=len(todo), desc="runs", file=sys.stderr, disable=not progress)
            for future in as_completed(futures):
                row = future.result()
                rows.append(row)
                write_results(sweep.output, rows)
                bar.update(1)
                what = "ok" if row["status"] == "ok" else f"error: {row['error']}"
                if progress:
                    bar.write(f"{row['name']} [{row['target']}] {row['settings']}: {what} "
                              f"({row['seconds']:.0f} s)", file=sys.stderr)
            bar.close()
    latest = {r["run_id"]: r for r in rows}  # a run measured again (it had failed) replaces its old row
    results = [latest[r.run_id] for r in sweep.runs if r.run_id in latest]
    failed = [r for r in results if r["status"] != "ok"]
    say(f"{len(results) - len(failed)} runs ok, {len(failed)} failed; results in {sweep.output}", file=sys.stderr)
    return results

