"""A link that corrupts the byte stream on purpose, in both directions: bytes dropped, duplicated or flipped, whole
frames lost, replies late. It wraps a real link to a real firmware, so that a test can show what verify does on a
bad cable: it reports a link error (ProtocolError, DeviceError) and never a false "bit-exact" or a false mismatch
(tests/test_mangle.py, bench/mangle.py)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from onward.data import Dataset
from onward.errors import OnwardError
from onward.model import InitialModel, device_inputs
from onward.protocol import ProtocolError
from onward.targets.link import Link

FAULTS = ("drop", "duplicate", "flip", "lose_frame", "late")


@dataclass
class MangledLink:
    inner: Link
    rng: np.random.Generator
    rate: float  # the chance that a frame (either way) gets one fault
    late_seconds: float = 0.0  # how long a lost or late reply keeps the host waiting before its timeout
    faults: list[str] = field(default_factory=list)  # what was done, in order

    def _mangle(self, frame: bytes) -> bytes | None:
        """One frame's bytes (delimiter included) after at most one fault; None when the frame is lost."""
        if self.rng.random() >= self.rate:
            return frame
        fault = str(self.rng.choice(FAULTS))
        self.faults.append(fault)
        at = int(self.rng.integers(len(frame)))
        if fault == "drop":
            return frame[:at] + frame[at + 1:]
        if fault == "duplicate":
            return frame[:at + 1] + frame[at:]
        if fault == "flip":
            return frame[:at] + bytes([frame[at] ^ (1 << int(self.rng.integers(8)))]) + frame[at + 1:]
        return None  # lose_frame, late: the receiver sees nothing in time

    def write(self, data: bytes) -> None:
        mangled = self._mangle(data)
        if mangled:
            self.inner.write(mangled)

    def read_frame(self, timeout: float) -> bytes:
        """The next reply as the host would cut it out of the mangled stream: a lost or late frame is a timeout (the
        run stops there), a dropped delimiter runs a frame into the next, a flipped or duplicated 0x00 splits one."""
        pending = b""
        while True:
            frame = self._mangle(self.inner.read_frame(timeout) + b"\x00")
            if frame is None:
                time.sleep(min(self.late_seconds, timeout))
                raise ProtocolError(f"no reply frame within {timeout:g} s")
            pending += frame
            complete = [part for part in pending.split(b"\x00")[:-1] if part]
            if complete:
                return complete[0]
            if b"\x00" in pending:
                pending = b""

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class Session:
    outcome: str  # "bit-exact" (the run completed and the device's state is the reference's), "link error",
    #               "false bit-exact" (completed, but the state differs), "false mismatch", "hang"
    faults: int
    seconds: float
    message: str = ""


def mangled_session(model: InitialModel, data: Dataset, build_dir: Path, rng: np.random.Generator, rate: float,
                    steps: int = 24, timeout: float = 0.3, batch: int | None = None) -> Session:
    """verify on the native firmware through a MangledLink: HELLO clean, then RESET, `steps` training steps (TRAIN or
    TRAIN_BATCH frames) and probes through the faults. A completed run is then checked over the clean link."""
    from onward.reference import make_fixed, training_stream
    from onward.targets.run import open_device
    from onward.verify import Mismatch, lockstep

    ref = make_fixed(model)
    probes = device_inputs(model, data.x_test[:4])
    start = time.perf_counter()
    with open_device(model, "native", build_dir, timeout=timeout) as device:
        device.hello()
        link = MangledLink(device.link, rng, rate, late_seconds=timeout)
        device.link = link
        try:
            device.reset()
            stream = itertools.islice(training_stream(model, data, 1), steps)
            lockstep(ref, device, stream, probes, build_dir / "mismatch", probe_every=8, batch=batch)
        except Mismatch as exc:
            return Session("false mismatch", len(link.faults), time.perf_counter() - start, str(exc))
        except OnwardError as exc:  # ProtocolError, DeviceError: what a bad link must give
            seconds = time.perf_counter() - start
            return Session("hang" if seconds > 20 * timeout + 5 else "link error", len(link.faults), seconds, str(exc))
        link.rate = 0.0
        same = device.stats().digest == ref.digest()
        return Session("bit-exact" if same else "false bit-exact", len(link.faults), time.perf_counter() - start)
