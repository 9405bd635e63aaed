"""The calibration loop: a sensor's life streamed through a learning model, as the device lives it.

Every sample is inferred: the model's output is the correction (Pa / CORRECTION_SCALE, Q(activation_frac)) of
that sample's reading. At a reference reading the model first trains `steps` times on (the sample's inputs, the
correction that makes the reading equal the reference), then infers the sample: as the baselines, a correction
learned at a reading applies from that sample on, and nothing uses a reading before it is taken.

`run_reference` is the fixed-point reference of a life, the specification of what the device outputs.
`run_device` streams the same life through a target built from the spec, comparing every output and every
training step's state digest, while the power fails at random points: between frames (the state since the last
save is lost: the reference goes back to that save too) and inside saves (a flash erase or program of the next
save cut part way: the board must come back with exactly the previous save or the new one, and which one it is
decides the reference's state). After every power-on the board's state digest must equal the reference's."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from onward import fixed, persist
from onward.calibration.features import CORRECTION_SCALE, correction_targets, inputs
from onward.calibration.sensor import Trace
from onward.fixed import I64
from onward.model import InitialModel
from onward.protocol import ProtocolError
from onward.reference import FixedReference, FixedState, make_fixed
from onward.targets.build import build_firmware, load_board
from onward.targets.run import power_on
from onward.verify import Mismatch

F64 = np.ndarray
INFER, TRAIN = 0, 1


@dataclass(frozen=True)
class Life:
    """A trace as the model meets it: every event in order, (kind, sample, target)."""

    trace: Trace
    x_q: I64  # (samples, inputs): the model's inputs, Q(activation_frac)
    kinds: I64  # per event: INFER or TRAIN
    samples: I64  # per event: the sample it reads
    targets: I64  # per event: the training target, Q(activation_frac) (0 for an inference)

    @property
    def events(self) -> int:
        return int(self.kinds.size)


def life(model: InitialModel, tr: Trace, steps: int) -> Life:
    """The events of a trace: an inference per sample, preceded at each reference reading by `steps` trainings."""
    af = model.spec.format.activation_frac
    x_q, _ = fixed.to_q(inputs(tr), af)
    t_q, _ = fixed.to_q(correction_targets(tr), af)
    per_sample = np.ones(tr.t_s.size, dtype=np.int64)
    per_sample[tr.ref_index] += steps
    samples = np.repeat(np.arange(tr.t_s.size), per_sample)
    kinds = np.full(samples.size, INFER, dtype=np.int64)
    targets = np.zeros(samples.size, dtype=np.int64)
    starts = np.cumsum(per_sample) - per_sample  # each sample's first event
    for j, k in enumerate(tr.ref_index):
        kinds[starts[k]:starts[k] + steps] = TRAIN
        targets[starts[k]:starts[k] + steps] = t_q[j]
    return Life(tr, x_q, kinds, samples, targets)


def corrected(model: InitialModel, tr: Trace, outputs: I64) -> F64:
    """The corrected pressure (Pa) of every sample from the model's outputs."""
    return tr.p_reported_pa + outputs / 2.0**model.spec.format.activation_frac * CORRECTION_SCALE


def _step(ref: FixedReference, lf: Life, i: int) -> int:
    """Event i on the reference: the output (the inference's, or the training step's)."""
    x = lf.x_q[lf.samples[i]]
    out = ref.train(x, int(lf.targets[i])) if lf.kinds[i] == TRAIN else ref.infer(x)
    return int(out[0])


def run_reference(model: InitialModel, lf: Life) -> I64:
    """The fixed-point reference's output at every sample (after that sample's training, if any)."""
    ref = make_fixed(model)
    outputs = np.zeros(lf.trace.t_s.size, dtype=np.int64)
    for i in range(lf.events):
        out = _step(ref, lf, i)
        if lf.kinds[i] == INFER:
            outputs[lf.samples[i]] = out
    return outputs


@dataclass
class DeviceRun:
    target: str
    outputs: I64  # the device's output at every sample (equal to the reference's with the same power cuts)
    train_steps: int = 0
    inferences: int = 0
    boots: int = 0
    cuts_between_frames: int = 0  # the power failed between two frames: the unsaved steps are lost
    cuts_in_saves: dict[str, int] = field(default_factory=lambda: {"previous": 0, "new": 0})  # what came back
    cut_samples: list[int] = field(default_factory=list)  # the sample at which each power failure happened
    seconds: float = 0.0


def run_device(model: InitialModel, lf: Life, target: str, build_dir: Path, cuts: int, seed: int = 0,
               progress: Callable[[int], None] | None = None) -> DeviceRun:
    """Stream the life through `target` in lockstep with the reference, with `cuts` power failures at random
    events (seeded): every other one also arms a cut inside the next save. Raises Mismatch at the first
    difference: an output, a digest, or the state a power-on comes back with."""
    spec = model.spec
    if not spec.persist.enabled or spec.persist.every == 0:
        raise Mismatch(f"{spec.source}: a calibration run on a device needs `[persist] every = N` (N > 0)")
    board = load_board(target)
    firmware = build_firmware(model, target, build_dir, transport="semihost" if "qemu" in board.config else "uart")
    flash = Path(build_dir) / f"{spec.name}-{target}.flash"
    flash.unlink(missing_ok=True)  # a fresh part
    rng = np.random.default_rng([seed, 0xCA1])
    at = np.sort(rng.choice(np.arange(1, lf.events), size=min(cuts, lf.events - 1), replace=False))
    pending = list(at)
    ref = make_fixed(model)
    saved: FixedState = ref.state()  # what a power-on comes back with: the initial model until a save
    run = DeviceRun(target, np.zeros(lf.trace.t_s.size, dtype=np.int64))
    armed, dying_after = 0, None  # a cut inside the next save: its operation; the state that save writes
    every = spec.persist.every
    save_ops = persist.ops_per_save(len(ref.state_bytes()), int(board.config["flash_page"]))
    start = time.perf_counter()
    i = 0
    while i < lf.events:
        with power_on(firmware, flash, cut=armed, cut_seed=int(rng.integers(1, 2**31))) as device:
            run.boots += 1
            back = device.stats().digest
            if dying_after is not None:  # the last life died inside a save: the previous or the new state
                new_digest = _digest_of(ref, dying_after)
                if back == new_digest:
                    saved = dying_after
                    run.cuts_in_saves["new"] += 1
                else:
                    run.cuts_in_saves["previous"] += 1
                dying_after = None
            ref.restore(saved, 0)
            if back != ref.digest():
                raise Mismatch(f"{target}: power-on #{run.boots} at event {i} came back with state digest "
                               f"0x{back:08X}; the last save the reference knows is 0x{ref.digest():08X}")
            armed = 0
            stop = pending.pop(0) if pending else lf.events
            try:
                while i < stop:
                    x = lf.x_q[lf.samples[i]]
                    expected = _step(ref, lf, i)
                    if lf.kinds[i] == TRAIN:
                        saves = ref.steps % every == 0
                        if saves:
                            dying_after = ref.state()  # if the power fails in this save
                        outputs, digest = device.train(x, int(lf.targets[i]))
                        if saves:
                            saved, dying_after = dying_after, None
                        if digest != ref.digest():
                            raise Mismatch(f"{target}: event {i} (training step {ref.steps}): state digest "
                                           f"0x{digest:08X}, the reference's 0x{ref.digest():08X}")
                        run.train_steps += 1
                    else:
                        outputs = device.infer(x)
                        run.inferences += 1
                        run.outputs[lf.samples[i]] = int(outputs[0])
                    if int(outputs[0]) != expected:
                        raise Mismatch(f"{target}: event {i} (sample {lf.samples[i]}): output {int(outputs[0])}, "
                                       f"the reference's {expected}")
                    i += 1
                    if progress is not None:
                        progress(i)
            except ProtocolError:
                if dying_after is None:
                    raise
                run.cut_samples.append(int(lf.samples[i]))
                i += 1  # the step was taken and its save cut: the board decides which state survived
                if stop < lf.events:
                    pending.insert(0, stop)  # the planned cut is still ahead
                continue
            if stop < lf.events:  # the power fails between frames; every other time, the next save is cut too
                run.cuts_between_frames += 1
                run.cut_samples.append(int(lf.samples[stop]))
                if len(pending) % 2:
                    armed = int(rng.integers(1, save_ops + 1))
    run.seconds = time.perf_counter() - start
    return run


def _digest_of(ref: FixedReference, state: FixedState) -> int:
    """The digest of a state, the reference left as it was."""
    here, sats = ref.state(), ref.saturations
    ref.restore(state, 0)
    digest = ref.digest()
    ref.restore(here, sats)
    return digest
