"""Learned state that survives power loss: the specification of firmware/src/persist.c, and the flash it writes.

Flash (boards/<board>/flash.c, and `Flash` here): a region of pages; erasing a page sets every byte to 0xFF;
programming a 32-bit word can only clear bits (the cell stores old & new). Power can fail inside an operation: a cut
erase leaves the page partly erased, a cut program leaves a torn word (some of the bits it was clearing cleared).

Two slots, A and B, each `slot_pages` pages, hold a record:

    magic u32 | seq u32 | length u32 | crc u32 | state bytes (the state image, padded with 0xFF to a word)

all little-endian; crc is CRC-32 (zlib's) over seq, length and the state bytes. A save writes the slot that does not
hold the newest valid record: it erases the slot's pages, programs the state words, then length, seq and crc, and the
magic last. The magic is the commit: until its word is whole the slot is invalid, and the other slot still holds
the previous record. A slot is valid when its magic, its length (the model's state size) and its CRC agree; restore
takes the valid slot with the higher seq. So after a cut at any point, restore finds either the previous save or
the new one, never a mix. seq counts saves from 1 (0xFFFFFFFF, an erased word, is never a seq)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

MAGIC = 0x4F4E5731  # "ONW1" read as a little-endian word
HEADER = 16
WORD = 4
ERASED = 0xFFFFFFFF


class PowerCut(Exception):  # an event, not an error: the test harness catches it and "reboots"
    """The power failed inside a flash operation (the flash keeps what was done so far)."""


def slot_pages(state_size: int, page: int) -> int:
    """Pages of one slot: the header and the state image, rounded up to whole pages."""
    return -(-(HEADER + state_size) // page)


def ops_per_save(state_size: int, page: int) -> int:
    """The erases and programs of one save (`save`): the slot's pages, the state's words, the 4 header words."""
    return slot_pages(state_size, page) + -(-state_size // WORD) + 4


@dataclass
class Flash:
    """A flash region with real erase/program semantics and a fault injector: with `cut_at` = n, the n-th operation
    (counting from 1) is interrupted part way (a seeded choice of how far) and raises PowerCut."""

    page: int
    pages: int
    cut_at: int | None = None
    seed: int = 0
    ops: int = 0
    data: bytearray = field(init=False)

    def __post_init__(self) -> None:
        self.data = bytearray(b"\xff" * (self.page * self.pages))

    def _cut_now(self) -> bool:
        self.ops += 1
        return self.cut_at is not None and self.ops == self.cut_at

    def read(self, offset: int) -> int:
        return struct.unpack_from("<I", self.data, offset)[0]

    def erase(self, page: int) -> None:
        start = page * self.page
        if self._cut_now():  # the first k words erased, the rest as they were
            k = int(np.random.default_rng([self.seed, self.ops]).integers(0, self.page // WORD))
            self.data[start:start + k * WORD] = b"\xff" * (k * WORD)
            raise PowerCut(f"during erase of page {page}")
        self.data[start:start + self.page] = b"\xff" * self.page

    def program(self, offset: int, word: int) -> None:
        old = self.read(offset)
        if self._cut_now():  # a random subset of the bits being cleared is cleared
            mask = int(np.random.default_rng([self.seed, self.ops]).integers(0, 1 << 32))
            struct.pack_into("<I", self.data, offset, old & (word | mask))
            raise PowerCut(f"during program of word {offset}")
        struct.pack_into("<I", self.data, offset, old & word)


def record_crc(seq: int, state: bytes) -> int:
    return zlib.crc32(state, zlib.crc32(struct.pack("<II", seq, len(state))))


def read_slot(flash: Flash, slot: int, state_size: int) -> tuple[int, bytes] | None:
    """(seq, state) of a valid slot, or None."""
    base = slot * slot_pages(state_size, flash.page) * flash.page
    magic, seq, length, crc = struct.unpack_from("<IIII", flash.data, base)
    if magic != MAGIC or length != state_size or seq in (0, ERASED):
        return None
    state = bytes(flash.data[base + HEADER:base + HEADER + state_size])
    return (seq, state) if record_crc(seq, state) == crc else None


def newest(flash: Flash, state_size: int) -> tuple[int, int, bytes] | None:
    """(slot, seq, state) of the valid slot with the higher seq (slot A on a tie), or None."""
    found = [(r[0], -slot, slot, r[1]) for slot in (0, 1) if (r := read_slot(flash, slot, state_size))]
    if not found:
        return None
    seq, _, slot, state = max(found)
    return slot, seq, state


def save(flash: Flash, state: bytes) -> int:
    """Write `state` to the slot that does not hold the newest record, commit it; returns its seq."""
    size, pages = len(state), slot_pages(len(state), flash.page)
    last = newest(flash, size)
    slot = 1 - last[0] if last else 0
    seq = last[1] + 1 if last else 1
    base = slot * pages * flash.page
    for p in range(pages):
        flash.erase(slot * pages + p)
    padded = state + b"\xff" * (-size % WORD)
    for i in range(0, len(padded), WORD):
        flash.program(base + HEADER + i, struct.unpack_from("<I", padded, i)[0])
    flash.program(base + 8, size)
    flash.program(base + 4, seq)
    flash.program(base + 12, record_crc(seq, state))
    flash.program(base, MAGIC)
    return seq


def restore(flash: Flash, state_size: int) -> tuple[int, bytes] | None:
    """(seq, state) of the newest valid record, or None when neither slot holds one."""
    found = newest(flash, state_size)
    return (found[1], found[2]) if found else None
