"""`onward sweep`: sweep files expand into runs and bad ones are named; runs go through real Dask (a LocalCluster,
and a `dask scheduler` with two `dask worker` processes, one of them killed mid-sweep), every result equals the
same run made alone, failures are recorded, and a rerun runs only what is missing."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from onward.cli import main
from onward.paths import EXAMPLES
from onward.sweep.plan import load_sweep
from onward.sweep.runner import run_sweep
from onward.sweep.store import read_results, write_results
from onward.sweep.table import markdown_table, plot
from onward.sweep.task import execute

SPEC = EXAMPLES / "digits_pepita.toml"
COMPARED = ("status", "score", "reference_score", "saturations", "evals", "curve")


def write(folder: Path, text: str, name: str = "sweep.toml") -> Path:
    path = folder / name
    path.write_text(text.replace("SPEC", str(SPEC)))
    return path


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if hasattr(a, "tolist"):
        a = a.tolist()
    if hasattr(b, "tolist"):
        b = b.tolist()
    return bool(a == b)


def check_against_one_by_one(rows: list[dict[str, Any]], sweep_path: Path, build: Path) -> None:
    """Every row equals the same run executed alone, in this process."""
    by_id = {r["run_id"]: r for r in rows}
    for run in load_sweep(sweep_path).runs:
        alone = execute(run, str(build))
        got = by_id[run.run_id]
        for key in COMPARED:
            if key in alone:
                assert same(got[key], alone[key]), (run.name, run.target, run.settings, key, got[key], alone[key])


def test_a_sweep_file_expands_into_runs(tmp_path: Path) -> None:
    path = write(tmp_path, """
base = "SPEC"
targets = ["float", "native"]
[grid]
seed = [1, 2]
"rule.learning_rate" = [0.1, 0.05]
[[run]]
name = "pepita"
[[run]]
name = "ll"
kind = "last_layer"
""")
    sweep = load_sweep(path)
    assert len(sweep.runs) == 2 * 2 * (2 + 1)  # grid points x (pepita on float and native, ll on float)
    assert len({r.run_id for r in sweep.runs}) == len(sweep.runs)
    lrs = {(r.settings["seed"], r.spec["rule"]["learning_rate"]) for r in sweep.runs}
    assert lrs == {(1, 0.1), (1, 0.05), (2, 0.1), (2, 0.05)}
    assert {r.target for r in sweep.runs if r.kind == "last_layer"} == {"float"}
    run = sweep.runs[0]
    assert dataclasses.replace(run, code="another").run_id != run.run_id  # new code: measured again
    assert dataclasses.replace(run, target="fixed").run_id != run.run_id
    assert sweep.output == Path("build") / "sweeps" / "sweep.parquet"


@pytest.mark.parametrize(("text", "named"), [
    ('base = "SPEC"\nworkers = 3\n', "unknown key `workers`"),
    ('base = "SPEC"\n[[run]]\nnme = "x"\n', "run 1: unknown key `nme`"),
    ('base = "SPEC"\ntargets = ["qemu-m9"]\n', "target 'qemu-m9'"),
    ('base = "SPEC"\n[[run]]\nkind = "magic"\n', "`kind` 'magic'"),
    ('base = "SPEC"\n[grid]\nseed = 3\n', "`grid` must map spec keys to non-empty lists"),
    ('base = "SPEC"\n[grid]\n"rule.threshold" = [1.0]\n', "unknown key `rule.threshold` for rule `pepita`"),
    ('[[run]]\nname = "x"\n', "no `base` spec"),
    ('base = "SPEC"\nrecord = ["everything"]\n', "`record` item 'everything'"),
    ('base = "SPEC"\n[grid\n', "not valid TOML"),
])
def test_a_bad_sweep_file_is_one_line_naming_the_key(text: str, named: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", str(write(tmp_path, text)), "--table"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err, err


SMALL = """
base = "SPEC"
targets = ["float", "fixed", "native", "qemu-m4"]
record = ["curve"]
[grid]
seed = [1, 2]
"rule.epochs" = [1]
[[run]]
name = "pepita"
[[run]]
name = "too-big"
targets = ["qemu-m0"]
set = { "model.hidden" = [1500] }
"""


def test_local_cluster_equals_one_by_one_records_failures_and_resumes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, SMALL)
    sweep = load_sweep(path, tmp_path / "results.parquet")
    rows = run_sweep(sweep, workers=2, build_root=tmp_path / "build", progress=True)
    assert len(rows) == len(sweep.runs) == 2 * 4 + 2
    failed = [r for r in rows if r["status"] != "ok"]
    assert len(failed) == 2 and all(r["name"] == "too-big" and "does not fit qemu-m0" in r["error"] for r in failed)
    device = [r for r in rows if r["target"] == "qemu-m4"]
    assert all(r["verify"] == "bit-exact" and r["score"] == r["reference_score"] for r in device)
    check_against_one_by_one(rows, path, tmp_path / "alone")
    err = capsys.readouterr().err
    assert "Dask scheduler tcp://" in err and "dashboard http" in err

    # a rerun runs nothing that succeeded (the two failed runs are tried again)
    again = run_sweep(sweep, workers=1, build_root=tmp_path / "build")
    assert "8 already in" in capsys.readouterr().err and len(again) == len(rows)

    # an interrupted sweep (only 3 results written) runs only the 5 missing successful runs, plus the failed ones
    kept = read_results(sweep.output).query("status == 'ok'").head(3).to_dict("records")
    write_results(sweep.output, kept)
    resumed = run_sweep(sweep, workers=2, build_root=tmp_path / "build")
    assert "3 already in" in capsys.readouterr().err
    assert sorted(r["run_id"] for r in resumed if r["status"] == "ok") == sorted(
        r["run_id"] for r in rows if r["status"] == "ok")

    # the table folds the seeds; the plots are PNGs
    table = markdown_table(sweep, read_results(sweep.output))
    assert "| pepita | digits | 64-64-10 | 1 |" in table and "± " in table and "device (native)" in table
    for png in plot(sweep, read_results(sweep.output), tmp_path / "plots"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A Dask command in a session of its own: killing its process group takes its children (a worker's nanny and
    process, the QEMU a run started) with it."""
    return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.mark.qemu
def test_a_real_scheduler_two_workers_and_one_killed_mid_sweep(tmp_path: Path) -> None:
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1; the sweep goes through --scheduler; one worker
    is killed (SIGKILL, its whole process group) once the first result is in. The sweep completes, no run is lost,
    and every result equals the same run made alone."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [start(["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                       tmp_path / "scheduler.log")]
    try:
        for i in range(2):
            processes.append(start(["worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                                    "--host", "127.0.0.1", "--name", f"w{i}"], tmp_path / f"worker{i}.log"))
        path = write(tmp_path, SMALL.split("[[run]]")[0].replace("seed = [1, 2]", "seed = [1, 2, 3]")
                     .replace('"rule.epochs" = [1]', '"rule.epochs" = [2]'))
        results = tmp_path / "results.parquet"
        sweep = subprocess.Popen([sys.executable, "-m", "onward", "sweep", str(path), "--scheduler", address,
                                  "--output", str(results)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not (results.exists() and len(read_results(results)) >= 1):
            assert sweep.poll() is None, sweep.communicate()
            assert time.monotonic() < deadline, "no result within 120 s"
            time.sleep(0.2)
        os.killpg(processes[1].pid, signal.SIGKILL)
        out, err = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, err.decode()
        rows = read_results(results).to_dict("records")
        assert len(rows) == 3 * 4 and all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
        assert processes[1].wait(timeout=10) == -signal.SIGKILL
        check_against_one_by_one(rows, path, tmp_path / "alone")
        assert "| digits_pepita |" in out.decode() or "| pepita |" in out.decode()
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_table_and_json_from_a_results_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--table (and with it --json) reads the results file and runs nothing (a missing file: rows without values)."""
    path = write(tmp_path, 'base = "SPEC"\ntargets = ["float"]\n')
    assert main(["sweep", str(path), "--table", "--output", str(tmp_path / "none.parquet")]) == 0
    assert "| digits_pepita | — |" in capsys.readouterr().out
    assert main(["sweep", str(path), "--table", "--json", "--output", str(tmp_path / "none.parquet")]) == 0
    assert json.loads(capsys.readouterr().out) == []
