"""One spec's run on one target: the building blocks that `onward verify` and `onward demo` share."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from onward.codegen.c import model_hash
from onward.data import Dataset, load_dataset
from onward.model import InitialModel, device_inputs, init_model
from onward.protocol import ProtocolError
from onward.reference import Step, make_fixed, share_instrument, training_stream
from onward.spec import Spec
from onward.targets.build import load_board
from onward.targets.run import open_device, resolve_transport
from onward.verify import Mismatch, ProgressBar, check_build, evaluate, lockstep


@dataclass(frozen=True)
class TargetRun:
    target: str
    train_steps: int
    inferences: int
    seconds: float
    ref_accuracy: float
    device_accuracy: float
    saturations: int
    transport: str = "uart"  # how the host reached the device: uart, semihost, or pipe (the native process)
    queries: int = 0  # instrument queries the device asked and the reference matched (onward.instrument), if any

    @property
    def steps_per_second(self) -> float:
        return self.train_steps / self.seconds if self.seconds else math.nan


def prepare(spec: Spec) -> tuple[Dataset, InitialModel]:
    data = load_dataset(spec)
    return data, init_model(spec, data)


def run_on_target(
    model: InitialModel, data: Dataset, target: str, build_dir: Path, steps: int | None = None,
    evaluate_test: bool = False, progress: bool = False, port: str | None = None, transport: str = "auto",
    batch: int | None = None,
) -> TargetRun:
    """Train the reference and the target in lockstep (`steps` samples shared out among the stages, or the
    spec's epochs), comparing every output and state digest; optionally evaluate both on the test set.
    transport: "auto" (the semihosting channel on an emulated board), "uart" or "semihost" (open_device);
    batch: samples per TRAIN_BATCH frame (default: the device's maximum; 1: single TRAIN frames).
    Raises Mismatch."""
    spec = model.spec
    n_train = len(data.y_train)
    if steps is None:
        total = spec.rule.epochs * n_train * model.stages
        stream = training_stream(model, data, spec.rule.epochs)
    else:  # a quick run still visits every stage: an equal share of the steps each
        per_stage = math.ceil(steps / model.stages)
        total = steps
        stream = _first_train_steps(training_stream(model, data, math.ceil(per_stage / n_train), per_stage), steps)
    probes = device_inputs(model, data.x_test[:64])
    save_dir = Path(build_dir) / f"{spec.name}-{target}" / "mismatch"
    ref = make_fixed(model)
    transport = resolve_transport(target, transport, port)
    channel = "pipe" if port is None and "qemu" not in load_board(target).config else transport
    with open_device(model, target, build_dir, port=port, transport=transport) as device:
        check_build(model, device, model_hash(model))  # the hash alone: the C is generated once, by the build
        if batch is not None and not 1 <= batch <= device.max_batch:
            raise ProtocolError(f"the firmware takes 1 to {device.max_batch} samples per TRAIN_BATCH frame "
                                f"(HELLO), not {batch}")
        device.reset()
        tape = share_instrument(ref, device)  # a rule that queries an instrument: one tape for both sides
        start = time.perf_counter()
        bar = ProgressBar(total, f"{spec.name} on {target}") if progress else None
        result = lockstep(ref, device, stream, probes, save_dir, progress=bar, batch=batch, tape=tape)
        seconds = time.perf_counter() - start
        stats = device.stats()
        if stats.saturations != ref.saturations or stats.steps != ref.steps:
            raise Mismatch(f"after {ref.steps} steps: STATS says steps {stats.steps}, saturations "
                           f"{stats.saturations}; the reference has {ref.steps}, {ref.saturations}")
        ref_acc, dev_acc = evaluate(ref, device, data, save_dir, tape) if evaluate_test else (math.nan, math.nan)
    return TargetRun(target, result.train_steps, result.inferences, seconds, ref_acc, dev_acc,
                     ref.saturations, channel, device.queries)


def _first_train_steps(stream: Iterator[Step], steps: int) -> Iterator[Step]:
    taken = 0
    for step in stream:
        if step.kind == "train":
            if taken == steps:
                return
            taken += 1
        yield step
