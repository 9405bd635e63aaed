"""Self-configuration of Haar-random targets on Clements meshes with splitter errors σ = 0.05 rad, through codes
and detectors only (onward.photonic.selfconfig), against the nominal deployment (mesh.decompose + codes_for_phases).
Each seed is another chip (its couplers) and another target; the budget is 10·N² queries. The Device's true matrix
is read only here, at the algorithm's callbacks, to compute the fidelity F = (mean_k |(U U_t^†)_kk|)².

    python3 bench/photonic_selfconfig.py [--sizes 16 64] [--seeds 0 1 2] [--methods model jacobian sweep]
                                         [--budget 10] [--rounds 1] [--workers 2] [--plot docs/photonic_selfconfig.png]
                                         [--ceiling 8000] [--json results.json] [--load a.json b.json]

Prints the command and a Markdown table: N, MZIs, method, nominal F, F at the end of the budget (mean ± sd over
the seeds), the chips' ceiling (with --ceiling: L-BFGS on the Device's own phases, host only), queries to reach
F >= 0.99 (per seed), queries used, wall time."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small complex products: threads only contend on 2 cores

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import unitary_group
from tqdm import tqdm

from onward.photonic.device import Chip, Device, Flaws, codes_for_phases
from onward.photonic.mesh import Layout, decompose, layout
from onward.photonic.mzi import C128, F64, coupler, mzi
from onward.photonic.selfconfig import METHODS, column_apply, fidelity, self_configure

GOAL = 0.99


def overlap_and_gradient(p: F64, lay: Layout, eps1: F64, eps2: F64, w: C128) -> tuple[float, F64]:
    """Σ_k |M_kk| (M = U W, W = U_t^†, U the flawed mesh without its screen, which F ignores) and its gradient in
    the MZIs' (θ, φ), by the adjoint: with U = A_c L_c B_c, d Σ|M_kk| = Re Tr(B_c W C A_c dL_c), C = diag(M̄_kk /
    |M_kk|), and only L_c's 2x2 blocks move. Two sweeps of the columns: the ceiling's optimiser is host-only."""
    n, k = lay.n, lay.size
    theta, phi = p[:k], p[k:]
    t = mzi(theta, phi, eps1, eps2)
    b1, b2 = coupler(eps1), coupler(eps2)
    outer = b1.copy()
    outer[:, :, 0] *= np.exp(1j * phi)[:, None]
    d_theta = 1j * np.exp(1j * theta)[:, None, None] * b2[:, :, 0:1] * outer[:, 0:1, :]
    d_phi = np.zeros_like(t)
    d_phi[:, :, 0] = 1j * t[:, :, 0]
    slices = lay.column_slices()
    before = [np.eye(n, dtype=np.complex128)]  # L_{c-1} ⋯ L_0
    for cols in slices[:-1]:
        before.append(column_apply(before[-1], lay.modes[cols], t[cols], right=False))
    u = column_apply(before[-1], lay.modes[slices[-1]], t[slices[-1]], right=False)
    after = [np.eye(n, dtype=np.complex128)]  # L_{N-1} ⋯ L_{c+1}
    for cols in reversed(slices[1:]):
        after.append(column_apply(after[-1], lay.modes[cols], t[cols], right=True))
    after.reverse()
    diag = np.einsum("kj,jk->k", u, w)
    p_mat = w * (np.conj(diag) / np.abs(diag))[None, :]
    grad = np.zeros(2 * k)
    pair = np.array([0, 1])
    for c, cols in enumerate(slices):
        q = before[c] @ p_mat @ after[c]
        idx = lay.modes[cols][:, None] + pair[None, :]
        block = np.transpose(q[idx[:, :, None], idx[:, None, :]], (0, 2, 1))
        grad[cols] = np.real(np.sum(block * d_theta[cols], axis=(1, 2)))
        grad[k + cols.start:k + cols.stop] = np.real(np.sum(block * d_phi[cols], axis=(1, 2)))
    return float(np.abs(diag).sum()), grad


def ceiling(device: Device, target: C128, codes: np.ndarray, iterations: int) -> float:
    """The best F this chip can hold for this target, as far as L-BFGS on the Device's own flawed mesh finds it
    from the nominal deployment (host only, never the algorithm): where a coupler pair cannot reach full cross,
    no setting reaches F = 1. A lower bound on the true ceiling (a local optimum, `iterations` at most)."""
    from scipy.optimize import minimize

    k = device.layout.size
    phases = device.phases(codes)
    w = np.conj(target).T

    def loss(p: F64) -> tuple[float, F64]:
        value, grad = overlap_and_gradient(p, device.layout, device.eps1, device.eps2, w)
        return -value, -grad

    best = minimize(loss, phases[:2 * k], jac=True, method="L-BFGS-B",
                    options={"maxiter": iterations, "maxfun": 2 * iterations, "ftol": 1e-15, "gtol": 1e-10})
    phases[:2 * k] = best.x
    return fidelity(device.mesh(phases).unitary(), target)


def run(job: tuple[int, int, str, int, float, int, int]) -> dict:
    """One chip, one target: the true F at every callback of the algorithm, against the queries spent; with
    `ceiling_iterations`, that chip's ceiling too."""
    n, seed, method, budget, sigma, rounds, ceiling_iterations = job
    device = Device(n, Flaws(splitter_sigma=sigma, dac_bits=16, adc_bits=16), seed=seed)
    target = unitary_group.rvs(n, random_state=1000 + seed)
    m = decompose(target)
    codes = codes_for_phases(np.concatenate([m.theta, m.phi, m.screen]), 16)
    curve: list[tuple[int, float]] = []

    def truth(c: np.ndarray, queries: int) -> None:
        curve.append((queries, fidelity(device.mesh(device.phases(c)).unitary(), target)))

    start = time.perf_counter()
    self_configure(Chip(device), target, codes, budget, method=method, callback=truth, every=max(1, n * n // 16),
                   rounds=rounds)
    seconds = time.perf_counter() - start
    reached = next((q for q, f in curve if f >= GOAL), None)
    best = ceiling(device, target, codes, ceiling_iterations) if ceiling_iterations else None
    return {"n": n, "seed": seed, "method": method, "nominal": curve[0][1], "final": curve[-1][1],
            "reached": reached, "queries": device.ledger.queries, "seconds": seconds, "curve": curve,
            "ceiling": best}


def mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}" if len(values) > 1 else f"{values[0]:.4f}"


def table(results: list[dict], args: argparse.Namespace) -> None:
    print(f"$ python3 bench/photonic_selfconfig.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"\nClements meshes, splitter error σ = {args.sigma:g} rad, 16-bit DAC and ADC, budget {args.budget:g}·N² "
          f"queries; a seed is a chip and a target; F mean ± sd over the seeds\n")
    print("| N | MZIs | method | seeds | nominal F | F at the end | ceiling F | queries to F ≥ 0.99 (per seed) "
          "| queries used | queries used / N² | seconds per chip |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sorted({r["n"] for r in results}):
        for method in METHODS:
            rows = [r for r in results if r["n"] == n and r["method"] == method]
            if not rows:
                continue
            reached = ", ".join("—" if r["reached"] is None else str(r["reached"]) for r in rows)
            used = [r["queries"] for r in rows]
            seeds = " ".join(str(r["seed"]) for r in rows)
            ceilings = [r["ceiling"] for r in rows if r.get("ceiling") is not None]
            best = mean_sd(ceilings) if len(ceilings) == len(rows) else "—"
            print(f"| {n} | {layout(n).size} | {method} | {seeds} | {mean_sd([r['nominal'] for r in rows])} "
                  f"| {mean_sd([r['final'] for r in rows])} | {best} | {reached} | {int(np.mean(used))} "
                  f"| {np.mean(used) / n**2:.2f} | {np.mean([r['seconds'] for r in rows]):.0f} |")


def plot(results: list[dict], path: Path, budget: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    keys = sorted({(r["n"], r["method"]) for r in results})
    for i, (n, method) in enumerate(keys):
        for j, r in enumerate(x for x in results if (x["n"], x["method"]) == (n, method)):
            q, f = np.array(r["curve"]).T
            ax.step(q / n**2, np.maximum(1 - f, 1e-7), where="post", color=colours[i % len(colours)],
                    linestyle={"model": "-", "jacobian": "-."}.get(method, "--"), alpha=0.8,
                    label=f"N = {n}, {method}" if j == 0 else None)
    ax.axhline(1 - GOAL, color="grey", linewidth=0.8, linestyle=":", label="F = 0.99")
    ax.set_xscale("symlog", linthresh=0.01, linscale=0.3)  # the model's steps take hundredths of N²
    ax.set_xlim(0, budget)
    ax.set_yscale("log")
    ax.set_xlabel("queries / N²")
    ax.set_ylabel("1 − F (true matrix)")
    ax.set_title("Self-configuration, Clements mesh, splitter σ = 0.05 rad")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--budget", type=float, default=10.0, help="queries per N² (default 10)")
    parser.add_argument("--sigma", type=float, default=0.05, help="splitter error σ, rad")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", type=Path, help="write every run's curve here")
    parser.add_argument("--load", nargs="+", type=Path, help="no runs: merge these --json files, print, plot")
    parser.add_argument("--rounds", type=int, default=0,
                        help="at most this many measured Jacobians (model, jacobian) or sweeps (sweep); 0: until "
                             "the budget")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--ceiling", type=int, default=0, metavar="ITERATIONS",
                        help="also optimise each chip's true phases on the host (L-BFGS, this many iterations at "
                             "most): the best F the chip can hold; 0: off")
    args = parser.parse_args()
    if args.load:  # tables and the figure from earlier runs' --json, merged
        results = [r for path in args.load for r in json.loads(path.read_text())]
        if args.plot:
            plot(results, args.plot, args.budget)
        table(results, args)
        return 0
    jobs = [(n, seed, method, int(args.budget * n * n), args.sigma, args.rounds, args.ceiling)
            for n in args.sizes for method in args.methods for seed in args.seeds]
    results = []
    with multiprocessing.Pool(args.workers) as pool:  # every job is seeded: the results do not depend on workers
        for result in tqdm(pool.imap(run, jobs), total=len(jobs), desc="chips", file=sys.stderr):
            results.append(result)
            if args.json:  # as they come: a long run leaves what it has measured
                args.json.write_text(json.dumps(results))
    if args.plot:
        plot(results, args.plot, args.budget)
    table(results, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
