"""How fast the emulated chip answers a query: DAC codes in, ADC codes out, for a batch of 1024 inputs, with every
flaw on (the mesh rebuilt with that query's phase noise and drift), on Clements meshes of N = 16, 64 and 256
modes; against a plain per-MZI loop (the same physics, one MZI at a time) in the same run.

    python3 bench/photonic_speed.py [--sizes 16 64 256] [--batch 1024] [--repeats 20] [--json]

Prints the command and a Markdown table (median ms per query over the repeats)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from onward.photonic.device import Device, Flaws
from onward.photonic.mzi import mzi

EVERY_FLAW = Flaws(splitter_sigma=0.05, loss_db=0.2, loss_db_sigma=0.05, gamma_sigma=0.002, phase_bias=1.0,
                   crosstalk=0.005, phase_noise=0.01, drift=0.001, shot_noise=0.02, thermal_noise=0.01,
                   dac_bits=8, adc_bits=12)


def per_mzi_loop(dev: Device, x: np.ndarray) -> np.ndarray:
    """The baseline: the same mesh applied one MZI at a time (each a 2x2 on two rows of the field)."""
    phase = dev.phases()
    k = dev.layout.size
    e = np.asarray(x, dtype=np.complex128).T.copy()
    for j in range(k):
        m = int(dev.layout.modes[j])
        t = mzi(phase[j], phase[k + j], dev.eps1[j], dev.eps2[j]) * dev.transmission[j]
        e[[m, m + 1]] = t @ e[[m, m + 1]]
    e *= np.exp(1j * phase[2 * k:])[:, None]
    return np.abs(e.T) ** 2


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[16, 64, 256])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        dev = Device(n, EVERY_FLAW, seed=1)
        rng = np.random.default_rng(0)
        codes = rng.integers(0, dev.dac_max + 1, dev.n_codes)
        x = rng.normal(size=(args.batch, n))
        x /= np.linalg.norm(x, axis=1, keepdims=True)

        fast = timed(lambda dev=dev, codes=codes, x=x: (dev.set_codes(codes), dev.measure(x)), args.repeats)
        loop = timed(lambda dev=dev, x=x: per_mzi_loop(dev, x), max(3, args.repeats // 5))
        rows.append({"modes": n, "mzis": dev.layout.size, "batch": args.batch, "ms_per_query": round(fast, 2),
                     "ms_per_mzi_loop": round(loop, 2), "speedup": round(loop / fast, 1)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"$ python3 bench/photonic_speed.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    print("| modes | MZIs | batch | ms per query (codes in, ADC codes out, every flaw) | ms, per-MZI loop | ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['modes']} | {r['mzis']} | {r['batch']} | {r['ms_per_query']} | {r['ms_per_mzi_loop']} "
              f"| {r['speedup']}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
