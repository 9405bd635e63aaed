"""Feed the fixed-point reference and a target the same stream and compare them bit for bit.

After every training step the rule's outputs and the digest of the whole learned state must agree; inference
outputs are compared on held-out samples along the way. At the first mismatch the run stops, names the
step, the tensor, the index and both values, and saves both states."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from onward.data import Dataset
from onward.errors import OnwardError
from onward.instrument import Tape
from onward.model import InitialModel, device_inputs
from onward.protocol import MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, ProtocolError
from onward.reference import FixedReference, FixedState, Step, apply_step, parse_state, score, state_size
from onward.rules import rule_id
from onward.targets.device import Device


class Mismatch(OnwardError):
    """Reference and target disagree; the message says where (exit status 1: the firmware is wrong, not the input)."""

    prefix = "MISMATCH"
    exit_status = 1


@dataclass
class LockstepResult:
    train_steps: int = 0
    inferences: int = 0
    saved: list[Path] = field(default_factory=list)


def first_difference(ref: FixedState, dev: FixedState) -> str:
    for name in ("seed", "steps", "lr_q", "stage"):
        if getattr(ref, name) != getattr(dev, name):
            return f"tensor {name}: reference {getattr(ref, name)}, device {getattr(dev, name)}"
    for layer, (a, b) in enumerate(zip(ref.weights, dev.weights, strict=True)):
        diff = np.argwhere(a != b)
        if len(diff):
            at = tuple(int(i) for i in diff[0])
            return (f"tensor weights[{layer}], index {list(at)} ({len(diff)} of {a.size} differ): "
                    f"reference {a[at]}, device {b[at]}")
    return "the state images are equal (the digest differs only through the transfer)"


def save_states(ref: FixedReference, device_image: bytes, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for who, state in (("reference", ref.state()), ("device", parse_state(ref.model, device_image))):
        path = folder / f"state-{who}.npz"
        np.savez(path, seed=state.seed, steps=state.steps, lr_q=state.lr_q, stage=state.stage,
                 **{f"weights{i}": w for i, w in enumerate(state.weights)})
        paths.append(path)
    return paths


def _mismatch(ref: FixedReference, device: Device, what: str, save_dir: Path) -> Mismatch:
    image = device.dump_state(state_size(ref.model), device.chunk)
    detail = first_difference(ref.state(), parse_state(ref.model, image))
    saved = save_states(ref, image, save_dir)
    return Mismatch(f"{what}\nfirst state difference: {detail}\nstates saved to {saved[0]} and {saved[1]}")


def compare(name: str, step: int, ref_values: np.ndarray, dev_values: np.ndarray) -> str | None:
    """The first difference of two output vectors, in a line naming the step, the tensor and the index; or None."""
    diff = np.flatnonzero(ref_values != dev_values)
    if len(diff):
        i = diff[0]
        return f"step {step}: tensor {name}, index {i}: reference {ref_values[i]}, device {dev_values[i]}"
    return None


def lockstep(
    ref: FixedReference,
    device: Device,
    stream: Iterable[Step],
    probes: np.ndarray,
    save_dir: Path,
    probe_every: int = 50,
    progress: Callable[[int], None] | None = None,
    batch: int | None = None,
    tape: Tape | None = None,
) -> LockstepResult:
    """Run the stream on both; raise Mismatch at the first difference. probes: int16 inputs for INFER.

    Training steps go to the device `batch` at a time in TRAIN_BATCH frames (default: the most HELLO allows;
    1 sends single TRAIN frames), and every step's outputs and digest are compared all the same. A batch
    follows a step whose digest agreed; the first step, and the first after SET_LR or SET_STAGE, go alone.
    So on a mismatch at step k of a batch, the device's state before the batch equals the reference's: both
    are rewound to just after step k (the device by LOAD and one TRAIN) and compared and saved as usual.

    `tape`: the instrument queries both sides share (onward.instrument), for a rule that asks them; every query's
    request is compared too. Such a rule trains one step a frame: a rewind could not replay the chip's answers."""
    if tape is not None:
        batch = 1
    batch = device.max_batch if batch is None else batch
    if not 1 <= batch <= max(device.max_batch, 1):
        raise ValueError(f"batch must be in [1, {device.max_batch}] (the device's max batch), got {batch}")
    result = LockstepResult()
    probe_cycle = itertools.cycle(range(len(probes)))
    pending: list[Step] = []
    agreed = False  # the device's state equals the reference's: the last step's digest agreed, nothing since

    def run_pending() -> None:
        nonlocal agreed
        n0 = result.train_steps
        if len(pending) == 1:
            problem = train_one(ref, device, pending[0], n0)
        else:
            problem = _train_batch(ref, device, pending, n0)
        last = n0 + len(pending) - 1
        if problem is None and tape is not None:
            problem = tape.check(f"step {last}")
        if problem is None and len(probes) and last % probe_every == 0:
            x = probes[next(probe_cycle)]
            problem = compare("outputs (infer)", last, ref.infer(x), device.infer(x))
            if problem is None and tape is not None:
                problem = tape.check(f"the inference after step {last}")
            result.inferences += 1
        if problem:
            raise _mismatch(ref, device, problem, save_dir)
        for _ in pending:
            result.train_steps += 1
            if progress:
                progress(result.train_steps)
        pending.clear()
        agreed = True

    for step in stream:
        if step.kind != "train":
            if pending:
                run_pending()
            apply_step(ref, step)
            apply_step(device, step)
            agreed = False
            continue
        assert step.x is not None
        pending.append(step)
        n = result.train_steps + len(pending) - 1
        if len(pending) == batch or not agreed or (len(probes) and n % probe_every == 0):
            run_pending()
    if pending:
        run_pending()
    return result


def _check_step(n: int, ref_outputs: np.ndarray, ref_digest: int, dev_outputs: np.ndarray,
                dev_digest: int) -> str | None:
    problem = compare("outputs (train)", n, ref_outputs, dev_outputs)
    if problem is None and dev_digest != ref_digest:
        problem = f"step {n}: state digest: reference 0x{ref_digest:08X}, device 0x{dev_digest:08X}"
    return problem


def train_one(ref: FixedReference, device: Device, step: Step, n: int) -> str | None:
    """Step n in a TRAIN frame of its own, on the device and the reference; the problem, if any."""
    assert step.x is not None
    dev_outputs, dev_digest = device.train(step.x, step.target)
    ref_outputs = apply_step(ref, step)
    assert ref_outputs is not None
    return _check_step(n, ref_outputs, ref.digest(), dev_outputs, dev_digest)


def _train_batch(ref: FixedReference, device: Device, steps: list[Step], n0: int) -> str | None:
    """Steps n0, n0 + 1, ... in one TRAIN_BATCH frame. The reference computes them while the device does.
    On a mismatch, both end just after the step that differs (see lockstep)."""
    before, saturations = ref.state(), ref.saturations
    xs = []
    for step in steps:
        assert step.x is not None
        xs.append(step.x)
    device.send_train_batch(xs, [s.target for s in steps])
    expected = []
    for step in steps:
        outputs = apply_step(ref, step)
        assert outputs is not None
        expected.append((outputs, ref.digest()))
    dev_outputs, dev_digests = device.receive_train_batch(len(steps))
    for k, ((ref_outputs, ref_digest), dev_out, dev_digest) in enumerate(
            zip(expected, dev_outputs, dev_digests, strict=True)):
        problem = _check_step(n0 + k, ref_outputs, ref_digest, dev_out, dev_digest)
        if problem is None:
            continue
        # Rewind: the reference to the batch start and through steps n0 .. n0+k-1; the device to that same
        # state (its own, as the digests say), from which it takes step n0+k alone.
        ref.restore(before, saturations)
        for step in steps[:k]:
            apply_step(ref, step)
        device.load_state(ref.state_bytes(), device.chunk)
        again = train_one(ref, device, steps[k], n0 + k)
        return again or (f"{problem}\n(but the device took step {n0 + k} alone correctly from the same state: "
                         "the TRAIN_BATCH frame went wrong, not the step)")
    return None


def check_build(model: InitialModel, device: Device, expected_hash: int) -> None:
    """HELLO against the spec, before a run: the protocol version, the rule, the formats, the dimensions, the
    state size and the model hash; a target that runs another model (a board flashed with another spec, an older
    build) is named with every field that differs."""
    hello = device.connect()
    spec = model.spec
    if not MIN_PROTOCOL_VERSION <= hello.version <= PROTOCOL_VERSION:
        raise ProtocolError(f"the target speaks protocol version {hello.version}; this host speaks "
                          f"{MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}: rebuild its firmware")
    fmt = spec.format
    expected = {
        "rule": (rule_id(spec.rule.name), spec.rule.name),
        "formats (activation, weight, feedback, lr fractional bits)":
            ((fmt.activation_frac, fmt.weight_frac, fmt.feedback_frac, fmt.lr_frac), None),
        "dims": (tuple(model.dims), None), "outputs": (model.outputs, None),
        "state size": (state_size(model), None), "model hash": (expected_hash, None),
    }
    got = {"rule": hello.rule, "formats (activation, weight, feedback, lr fractional bits)": tuple(hello.formats),
           "dims": tuple(hello.dims), "outputs": hello.outputs, "state size": hello.state_size,
           "model hash": hello.model_hash}
    differ = [f"{key} {_shown(key, got[key])}, expected {_shown(key, value)}{f' ({name})' if name else ''}"
              for key, (value, name) in expected.items() if got[key] != value]
    if differ:
        raise Mismatch(f"the target runs another model: {hello.name}; " + "; ".join(differ))


def _shown(key: str, value: object) -> str:
    return f"0x{value:08X}" if key == "model hash" and isinstance(value, int) else str(value)


def evaluate(ref: FixedReference, device: Device, data: Dataset, save_dir: Path,
             tape: Tape | None = None) -> tuple[float, float]:
    """Test accuracy (R² for regression) of the reference and of the device, each from its own outputs, which
    must be equal (and so must their instrument queries, with a `tape`)."""
    x_q = device_inputs(ref.model, data.x_test)
    ref_out, dev_out = [], []
    for i, x in enumerate(x_q):
        dev_out.append(device.infer(x))
        ref_out.append(ref.infer(x))
        problem = compare("outputs (test)", i, ref_out[-1], dev_out[-1])
        if problem is None and tape is not None:
            problem = tape.check(f"test sample {i}")
        if problem:
            raise _mismatch(ref, device, problem, save_dir)
    return score(ref.model, ref_out, data.y_test), score(ref.model, dev_out, data.y_test)


class ProgressBar:
    """A progress bar on stderr: redrawn in place on a terminal, a line per 10 % otherwise (logs, CI)."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label
        self.tty = sys.stderr.isatty()
        self._last = -1

    def __call__(self, done: int) -> None:
        pct = 100 * done // max(self.total, 1)
        if pct == self._last or (not self.tty and pct % 10):
            return
        self._last = pct
        bar = "#" * (pct // 4) + "." * (25 - pct // 4)
        end = "\n" if done >= self.total or not self.tty else ""
        print(f"\r{self.label} [{bar}] {pct:3d}% {done}/{self.total}", end=end, file=sys.stderr, flush=True)
