"""Rules that learn through an instrument the host holds: a photonic chip behind its phase DACs and detector ADCs.

In the middle of a training step such a rule asks for a measurement: the firmware sends a QUERY frame (its request:
the DAC codes to write and the sample to shine in) and waits for the host's ANSWER frame (the detectors' ADC codes).
On a lab bench the host passes the request to the real chip; here it passes it to the emulated one.

A reference and a device run in lockstep share one `Tape`: whichever side asks its k-th query first gets the
instrument's answer, the other side gets the same answer, and its request must be the same bytes. So the fixed-point
reference is fed exactly the ADC codes the device was fed (noise, drift and all), every query's DAC codes are
compared, and the first difference names the query and the byte."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Answer = Callable[[bytes], bytes]  # request body -> answer body
SIDES = ("reference", "device")


@dataclass
class Tape:
    """One sequence of queries shared by the two sides of a lockstep run."""

    answer: Answer  # the instrument: asked once per query, by the side that asks first
    describe: Callable[[bytes, bytes], str] = lambda a, b: first_byte_difference(a, b)  # where two requests differ
    entries: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # (who asked first, request, answer)
    asked: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIDES, 0))
    base: int = 0  # queries both sides have consumed and the tape has forgotten
    problem: str | None = None  # the first disagreement, for the lockstep to raise

    def side(self, who: str) -> Answer:
        """The query function of one side ("reference" or "device")."""
        if who not in SIDES:
            raise ValueError(f"a tape has the sides {SIDES}, not {who!r}")
        return lambda request: self._query(who, bytes(request))

    def _query(self, who: str, request: bytes) -> bytes:
        k = self.asked[who]
        self.asked[who] += 1
        if k - self.base == len(self.entries):
            self.entries.append((who, request, self.answer(request)))
        first, asked, answer = self.entries[k - self.base]
        if asked != request and self.problem is None:
            self.problem = f"query {k}: the {first} asked {self.describe(asked, request)} (the {who}'s value second)"
        done = min(self.asked.values()) - self.base
        if done > 1024:  # forget what both sides have read
            del self.entries[:done]
            self.base += done
        return answer

    def check(self, where: str) -> str | None:
        """The first problem so far, or a difference in the number of queries the sides asked (after a step)."""
        if self.problem is None and self.asked["reference"] != self.asked["device"]:
            self.problem = (f"{where}: the reference has asked {self.asked['reference']} queries, the device "
                            f"{self.asked['device']}")
        return self.problem


def first_byte_difference(a: bytes, b: bytes) -> str:
    """Where two requests differ, for an instrument whose request has no fields to name."""
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    if at == min(len(a), len(b)):
        return f"a request of {len(a)} bytes, the other {len(b)}"
    return f"byte {at} = 0x{a[at]:02X} where the other asked 0x{b[at]:02X}"
