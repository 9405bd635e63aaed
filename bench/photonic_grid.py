"""Shen-style robustness grid: the digital twin's phases deployed, and SPSA in situ, over a grid of flaw magnitudes
(a static phase error per shifter σ_phase, N(0, σ) as Shen et al. 2017's phase-encoding error, x detector
noise σ_D), on a photonic spec's data and chip (default: Iris, 8 modes).
The twin is trained once, on the ideal model; each cell is a fresh chip (seed 1) with only those two flaws.

    python3 bench/photonic_grid.py [SPEC] [--phase 0 0.05 0.1 0.2] [--detector 0 0.02 0.05 0.1] [--queries 12000]
                                   [--plot docs/photonic_grid.png] [--json]

Prints the command and a Markdown table (test accuracy, deployed / in situ, per cell)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from onward.paths import EXAMPLES
from onward.photonic.device import Chip, Device, preset
from onward.photonic.experiment import load_photonic_spec, train_twin
from onward.photonic.train import chip_intensity, deploy, fit_in_situ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", nargs="?", type=Path, default=EXAMPLES / "photonic" / "iris.toml")
    parser.add_argument("--phase", nargs="+", type=float, default=[0.0, 0.1, 0.2, 0.4])
    parser.add_argument("--detector", nargs="+", type=float, default=[0.0, 0.02, 0.05, 0.1])
    parser.add_argument("--queries", type=int, default=12000)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    spec = load_photonic_spec(args.spec)
    twin = train_twin(spec)
    task, phases, ideal = twin.task, twin.phases, twin.ideal
    x_tr, y_tr, x_te, y_te = twin.x_train, twin.y_train, twin.x_test, twin.y_test
    deployed = np.zeros((len(args.phase), len(args.detector)))
    in_situ = np.zeros_like(deployed)
    cells = [(i, j) for i in range(len(args.phase)) for j in range(len(args.detector))]
    for i, j in tqdm(cells, desc="grid", file=sys.stderr):
        flaws = preset("ideal", phase_error=args.phase[i], thermal_noise=args.detector[j], dac_bits=spec_bits(spec))
        chip = Chip(Device(spec.modes, flaws, seed=1))
        codes = deploy(phases, chip.dac_bits)
        deployed[i, j] = task.accuracy(chip_intensity(chip, codes, task, x_te), y_te)
        _, curve = fit_in_situ(chip, task, codes, x_tr, y_tr, x_te, y_te, kind="spsa", steps=args.queries // 2,
                               batch=spec.batch, lr=spec.step, delta=spec.perturbation, seed=1,
                               every=args.queries // 2)
        in_situ[i, j] = curve.accuracy[-1]
    if args.plot:
        plot(args, deployed, in_situ, ideal, spec.name)
    if args.json:
        print(json.dumps({"ideal": ideal, "phase": args.phase, "detector": args.detector,
                          "deployed": deployed.tolist(), "in_situ": in_situ.tolist()}))
        return 0
    print(f"$ python3 bench/photonic_grid.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"\n{spec.name}: twin on the ideal model {100 * ideal:.1f} %; test accuracy deployed / SPSA in situ "
          f"({args.queries} queries), one chip per cell\n")
    print("| σ_phase \\ σ_D | " + " | ".join(f"{d:g}" for d in args.detector) + " |")
    print("|---|" + "---|" * len(args.detector))
    for i, s in enumerate(args.phase):
        print(f"| {s:g} rad | " + " | ".join(f"{100 * deployed[i, j]:.0f} / {100 * in_situ[i, j]:.0f} %"
                                            for j in range(len(args.detector))) + " |")
    return 0


def spec_bits(spec: object) -> int:
    """The DAC bits of the spec's preset and overrides (the grid keeps the DAC; it varies the two noises)."""
    return preset(spec.preset, **spec.flaws).dac_bits  # type: ignore[attr-defined]


def plot(args: argparse.Namespace, deployed: np.ndarray, in_situ: np.ndarray, ideal: float, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, values, title in ((axes[0], deployed, "twin's phases deployed"), (axes[1], in_situ, "SPSA in situ")):
        image = ax.imshow(values * 100, vmin=0, vmax=100, cmap="viridis", origin="lower")
        ax.set_xticks(range(len(args.detector)), [f"{d:g}" for d in args.detector])
        ax.set_yticks(range(len(args.phase)), [f"{p:g}" for p in args.phase])
        ax.set_xlabel("detector noise σ_D (of full scale)")
        ax.set_ylabel("static phase error σ_phase (rad)")
        ax.set_title(title)
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", color="white", fontsize=9)
    fig.colorbar(image, ax=axes, label="test accuracy (%)")
    fig.suptitle(f"{name}: twin {100 * ideal:.1f} % on the ideal model")
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
