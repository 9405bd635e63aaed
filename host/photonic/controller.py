"""`onward photonic SPEC --target T`: the microcontroller in the loop as the chip's controller, under drift.

The spec is a model spec of rule `photonic` (examples/photonic_iris.toml): the firmware learns the chip's phase codes
from forward queries alone, each one a QUERY frame the host passes to the emulated chip (onward.instrument). The
chip's phases drift (`photonic.drift`, rad per query, a random walk). Two arms on two identical chips whose clocks
stay equal, so that both see one drift realisation (onward.photonic.device: the drift is keyed by the chip's clock):

1. Training: the controller learns from the spec's epochs of the training set; the chip drifts meanwhile.
2. The stream: labelled samples keep coming (the training set, reshuffled each pass). Online, the controller takes
   a training step on each (1 + 2K queries). Frozen, the codes learned in phase 1 are kept: the chip is queried once
   a sample (an inference) and idles for the rest of the online step's queries.
Every `every` samples both arms are scored on the test set, one query per sample on each chip.

Every step of the device is checked against the fixed-point reference as `onward verify` checks it (outputs, every
query's request, the state digest): the curve is the device's, and the reference's too. With target "reference"
the loop runs the fixed-point reference alone (quick, for choosing the example's hyper-parameters)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from onward.errors import OnwardError
from onward.model import device_inputs
from onward.reference import FixedReference, Step, make_fixed, share_instrument, training_stream
from onward.rules import photonic
from onward.session import prepare
from onward.spec import Spec, SpecError, load_spec
from onward.verify import Mismatch, check_build, compare, train_one

REFERENCE = "reference"  # run the fixed-point reference alone, no device


@dataclass
class DriftRun:
    """Test accuracy of both arms against the chip's clock (queries since power-up)."""

    spec: str
    target: str
    drift: float  # rad per query
    train_queries: int  # the clock when the stream began (end of phase 1)
    queries: list[int] = field(default_factory=list)
    online: list[float] = field(default_factory=list)
    frozen: list[float] = field(default_factory=list)
    steps: int = 0  # training steps the device took, every one checked
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


class _NoDevice:
    """The device's place when the loop runs the reference alone: it asks nothing and agrees with everything."""

    on_query = None


def photonic_model_spec(path: Path) -> Spec:
    """The model spec `--target` runs; an experiment file (examples/photonic/*.toml) is named as such."""
    from onward.spec import read_toml

    if "chip" in read_toml(Path(path)):
        raise SpecError(f"{path}: an experiment file ([chip], [train]) runs without --target; with --target, SPEC is "
                        "a model spec of rule `photonic` (examples/photonic_iris.toml)")
    spec = load_spec(path)
    if spec.rule.name != "photonic":
        raise SpecError(f"{path}: `onward photonic --target` runs a spec of rule `photonic` (the chip's controller, "
                        f"examples/photonic_iris.toml), not `{spec.rule.name}`")
    return spec


def run(spec_path: Path, target: str, build_dir: Path, samples: int = 20000, every: int = 500,
        progress: bool = True) -> DriftRun:
    """The two arms over `samples` stream samples after the spec's epochs of training."""
    from tqdm import tqdm

    spec = photonic_model_spec(spec_path)
    data, model = prepare(spec)
    geo = photonic.geometry(model)
    chips = {arm: photonic.chip_device(spec, geo) for arm in ("online", "frozen")}
    ref = make_fixed(model)
    ref.query = photonic.instrument(model, chips["online"])
    x_test = device_inputs(model, data.x_test)
    x_train = device_inputs(model, data.x_train)
    result = DriftRun(spec.name, target, float(chips["online"].flaws.drift), 0)
    steps_per_sample = 1 + 2 * photonic.options(spec).directions
    rng = np.random.default_rng([spec.seed, 0x57])
    start = time.perf_counter()
    with _device(model, target, build_dir) as device:
        tape = share_instrument(ref, device)
        train = [s for s in training_stream(model, data, spec.rule.epochs) if s.kind == "train"]
        bar = tqdm(total=len(train) + samples, desc=f"{spec.name} on {target}", disable=not progress, unit="step")
        for step in train:
            _step(ref, device, tape, step.x, step.target, result)
            bar.update()
        frozen = copy.copy(ref)
        frozen.weights = [w.copy() for w in ref.weights]
        frozen.query = photonic.instrument(model, chips["frozen"])
        chips["frozen"].idle(chips["online"].clock)  # the same drift so far
        result.train_queries = chips["online"].clock
        order = np.concatenate([rng.permutation(len(x_train)) for _ in range(-(-samples // len(x_train)))])
        for i, at in enumerate(order[:samples]):
            if i % every == 0:
                _score(ref, frozen, device, tape, x_test, data.y_test, chips, result)
            _step(ref, device, tape, x_train[at], int(data.y_train[at]), result)
            frozen.infer(x_train[at])
            chips["frozen"].idle(steps_per_sample - 1)
            bar.update()
        _score(ref, frozen, device, tape, x_test, data.y_test, chips, result)
        bar.close()
    result.seconds = time.perf_counter() - start
    return result


def _device(model: Any, target: str, build_dir: Path) -> Any:
    """The device on `target`, checked against the spec and reset; or no device at all (REFERENCE)."""
    import contextlib

    if target == REFERENCE:
        return contextlib.nullcontext(_NoDevice())
    from onward.codegen.c import model_hash
    from onward.targets.run import open_device

    @contextlib.contextmanager
    def opened() -> Any:
        with open_device(model, target, build_dir) as device:
            check_build(model, device, model_hash(model))
            device.reset()
            yield device

    return opened()


def _step(ref: FixedReference, device: Any, tape: Any, x: np.ndarray, target: int, result: DriftRun) -> None:
    """One training step on the device and the reference, compared as `onward verify` compares them."""
    if isinstance(device, _NoDevice):
        ref.train(x, target)
        return
    problem = train_one(ref, device, Step("train", x=x, target=target), result.steps) or \
        tape.check(f"step {result.steps}")
    if problem:
        raise Mismatch(problem)
    result.steps += 1


def _score(ref: FixedReference, frozen: FixedReference, device: Any, tape: Any, x: np.ndarray, y: np.ndarray,
           chips: dict[str, Any], result: DriftRun) -> None:
    """Both arms' test accuracy now (the online arm's from the device's outputs, checked against the reference's),
    at the clock the scoring began."""
    result.queries.append(chips["online"].clock)
    online = []
    for i, xi in enumerate(x):
        expected = ref.infer(xi)
        if not isinstance(device, _NoDevice):
            problem = compare("outputs (test)", i, expected, device.infer(xi)) or \
                tape.check(f"test sample {i}")
            if problem:
                raise Mismatch(f"evaluation at clock {chips['online'].clock}: {problem}")
        online.append(int(np.argmax(expected)))
    result.online.append(float(np.mean(np.array(online) == y)))
    result.frozen.append(frozen.score(x, y))
    if chips["online"].clock != chips["frozen"].clock:
        raise OnwardError(f"the arms' chips drifted apart: clocks {chips['online'].clock} and "
                          f"{chips['frozen'].clock}")


def plot(result: DriftRun, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    q = np.array(result.queries) / 1000
    ax.plot(q, 100 * np.array(result.online), label=f"online: the controller learns on ({result.target})")
    ax.plot(q, 100 * np.array(result.frozen), label="frozen: the codes of the end of training")
    ax.axvline(result.train_queries / 1000, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("chip queries (thousands)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 102)
    ax.set_title(f"{result.spec}: phase drift {result.drift:g} rad per query")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def table(result: DriftRun) -> str:
    on, fr = np.array(result.online), np.array(result.frozen)
    rows = ["| arm | at the stream's start | at its end | lowest | mean over the stream |", "|---|---|---|---|---|"]
    for name, a in (("online (the controller learns on)", on), ("frozen (trained once)", fr)):
        rows.append(f"| {name} | {100 * a[0]:.1f} % | {100 * a[-1]:.1f} % | {100 * a.min():.1f} % | "
                    f"{100 * a.mean():.1f} % |")
    return "\n".join(rows)
