"""`onward calibrate SPEC --target T`: one sensor life, simulated, corrected by every method, and streamed
through the device with the power failing at random points; the device must equal the reference bit for bit.

Prints the summary (per method: within ±50 Pa after 20 reference readings, RMS and worst error, reference readings
used, readings to recover from the largest stress event) and writes the PNG of every method's error over time."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from onward.calibration import compare, loop
from onward.calibration.sensor import Trace
from onward.data import load_dataset
from onward.model import init_model
from onward.spec import SpecError, load_spec
from onward.targets.run import TRANSPORT_NAMES


def calibrate(spec_path: Path, target: str, build_dir: Path, seed: int | None = None, cuts: int | None = None,
              plot: Path | None = None, as_json: bool = False) -> int:
    spec = load_spec(spec_path)
    if not spec.calibration.enabled:
        raise SpecError(f"{spec.source}: `onward calibrate` needs a `[calibration]` table (scenario, "
                        f"steps_per_reference, power_cuts); see examples/pressure_calibration.toml")
    if cuts is not None and not 0 <= cuts <= 10000:
        raise SpecError(f"--cuts must be in [0, 10000], got {cuts}")
    spec = replace(spec, seed=spec.seed if seed is None else seed)
    model = init_model(spec, load_dataset(spec))
    tr = compare.lifetime(spec)
    name = f"onward {spec.rule.name}"
    series = compare.compare(model, tr, f"{name} (reference)")
    lf = loop.life(model, tr, spec.calibration.steps_per_reference)
    with tqdm(total=lf.events, desc=f"{spec.name} on {target}", unit="frame", disable=as_json or None,
              mininterval=1.0) as bar:
        run = loop.run_device(model, lf, target, build_dir, spec.calibration.power_cuts if cuts is None else cuts,
                              seed=spec.seed, progress=lambda i: bar.update(i - bar.n) if i % 4096 == 0 else None)
    series[f"{name} on {target}, {len(run.cut_samples)} power cuts"] = loop.corrected(model, tr, run.outputs)
    rows = compare.rows(tr, series)
    path = plot or Path(build_dir) / "calibration" / f"{spec.name}-seed{spec.seed}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    from onward.calibration.plot import plot_life

    plot_life(tr, series, path, title=f"{spec.name}: scenario {spec.calibration.scenario!r}, seed {spec.seed}",
              cuts_s=[float(tr.t_s[k]) for k in run.cut_samples])
    if as_json:
        print(json.dumps({"spec": spec.name, "seed": spec.seed, "target": target, "rows": [r.as_dict() for r in rows],
                          "device": _device_json(run), "plot": str(path)}, indent=1))
        return 0
    print(_summary(spec.name, tr, rows, run))
    print(f"\nerror over time: {path}")
    return 0


def _device_json(run: loop.DeviceRun) -> dict[str, object]:
    return {"inferences": run.inferences, "train_steps": run.train_steps, "power_ons": run.boots,
            "cuts_between_frames": run.cuts_between_frames, "cuts_in_saves": run.cuts_in_saves,
            "seconds": run.seconds, "mismatches": 0}


def _summary(name: str, tr: Trace, rows: list[compare.Row], run: loop.DeviceRun) -> str:
    days = tr.t_s[-1] / 86400.0
    lines = [f"{name}: {days:.0f} days, {tr.t_s.size} samples, {tr.ref_index.size} reference readings, "
             f"{tr.stress_t_s.size} stress events (largest {max(abs(tr.stress_pa), default=0) / 100:.1f} hPa)\n",
             "| method | within ±50 Pa | RMS error | worst error | reference readings used | readings to recover "
             "from the largest stress |", "|---|---|---|---|---|---|"]
    for r in rows:
        rec = "never" if r.recovery is None else str(r.recovery)
        within = "n/a" if math.isnan(r.within) else f"{100 * r.within:.1f} %"
        lines.append(f"| {r.method} | {within} | {r.rms:.1f} Pa | {r.worst:.1f} Pa | {r.references} | {rec} |")
    channel = TRANSPORT_NAMES["pipe" if run.target == "native" else "semihost"]
    lines.append(f"\n{run.target}: {run.inferences} inferences and {run.train_steps} training steps, every output "
                 f"and state digest bit-exact with the reference (0 mismatches), over {channel}, in "
                 f"{run.seconds:.1f} s; {run.boots} power-ons: {run.cuts_between_frames} cuts between frames (the "
                 f"unsaved steps lost, the last save back), {sum(run.cuts_in_saves.values())} inside a save (the "
                 f"previous save back {run.cuts_in_saves['previous']} times, the new one "
                 f"{run.cuts_in_saves['new']} times), every power-on's state equal to the reference's")
    return "\n".join(lines)
