"""The host side of the firmware's framed serial protocol (firmware/include/onward/protocol.h).

Frames are COBS-encoded and end with 0x00; decoded: command u8 | body length u16 LE | body | CRC-32 LE
(zlib's CRC over command, length and body). Replies carry command | 0x80; errors come back as an error
frame that names what was expected and what was received."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from cobs import cobs

from onward.errors import OnwardError

PROTOCOL_VERSION = 5  # 3: TRAIN_BATCH, HELLO reports the max batch; 4: SAVE, RESTORE; 5: QUERY, ANSWER
MIN_PROTOCOL_VERSION = 2  # the oldest firmware this host still drives (without TRAIN_BATCH)
REPLY = 0x80


class Cmd(IntEnum):
    HELLO = 0x01
    RESET = 0x02
    LOAD = 0x03
    DUMP = 0x04
    TRAIN = 0x05
    INFER = 0x06
    STATS = 0x07
    SET_LR = 0x08
    SET_STAGE = 0x09
    TRAIN_BATCH = 0x0A  # count u16 | count x (target, x) -> count x (outputs, digest)
    SAVE = 0x0B  # -> seq u32 | digest u32 (the state written to flash)
    RESTORE = 0x0C  # -> seq u32 | digest u32 (the newest saved state loaded)
    # A rule that measures through an instrument the host holds (onward.instrument): in the middle of a step the
    # device sends QUERY (the rule's request) and waits for ANSWER (the instrument's reading); not replies, so no 0x80
    QUERY = 0x0D
    ANSWER = 0x0E
    ERROR = 0x7F


ERRORS = {
    1: ("framing", "COBS framing broken (frame length {expected}, bad code byte at position {got})"),
    2: ("oversized", "frame too long (at most {expected} encoded bytes, got {got})"),
    3: ("short", "frame too short (at least {expected} decoded bytes, got {got})"),
    4: ("crc", "CRC mismatch (computed 0x{expected:08X}, frame carries 0x{got:08X})"),
    5: ("length", "length field disagrees with the frame (body has {expected} bytes, field says {got})"),
    6: ("command", "unknown command 0x{got:02X}"),
    7: ("body", "wrong body length (expected {expected} bytes, got {got})"),
    8: ("argument", "argument out of range (limit {expected}, got {got})"),
    9: ("nothing saved", "no saved state in flash to restore (neither slot holds a valid record)"),
    10: ("answer", "the device's QUERY got command 0x{got:02X} instead of an ANSWER (0x{expected:02X}); the step was "
         "abandoned, the state is unchanged"),
}


class ProtocolError(OnwardError):
    """The link delivered something that is not a valid reply frame (or nothing in time)."""


class DeviceError(OnwardError):
    """The device answered with an error frame."""

    def __init__(self, code: int, command: int, expected: int, got: int) -> None:
        self.code, self.command, self.expected, self.got = code, command, expected, got
        self.kind, template = ERRORS.get(code, ("unknown", "error code {code}"))
        name = Cmd(command).name if command in Cmd._value2member_map_ else f"0x{command:02X}"
        super().__init__(f"device rejected {name} frame: " + template.format(
            expected=expected, got=got, code=code))


def encode_frame(command: int, body: bytes = b"") -> bytes:
    raw = struct.pack("<BH", command, len(body)) + body
    return cobs.encode(raw + struct.pack("<I", zlib.crc32(raw))) + b"\x00"


def decode_frame(wire: bytes) -> tuple[int, bytes]:
    """wire: one frame as received, without its 0x00 delimiter."""
    try:
        raw = cobs.decode(wire)
    except cobs.DecodeError as exc:
        raise ProtocolError(f"reply is not valid COBS ({exc}): {wire[:32].hex()}") from None
    if len(raw) < 7:
        raise ProtocolError(f"reply too short: {len(raw)} bytes, expected at least 7")
    (crc,) = struct.unpack_from("<I", raw, len(raw) - 4)
    if crc != zlib.crc32(raw[:-4]):
        raise ProtocolError(f"reply CRC mismatch: carries 0x{crc:08X}, computed 0x{zlib.crc32(raw[:-4]):08X}")
    command, length = struct.unpack_from("<BH", raw)
    if length != len(raw) - 7:
        raise ProtocolError(f"reply length field says {length} bytes, body has {len(raw) - 7}")
    return command, raw[3:-4]


@dataclass(frozen=True)
class Hello:
    version: int
    rule: int
    formats: tuple[int, int, int, int]  # activation, weight, feedback, lr fractional bits
    outputs: int  # int16 values TRAIN and INFER return
    model_hash: int
    state_size: int
    rx_max: int
    chunk: int
    dims: tuple[int, ...]
    name: str
    max_batch: int = 1  # samples per TRAIN_BATCH frame; 1 from a version-2 firmware, which has no TRAIN_BATCH

    @classmethod
    def parse(cls, body: bytes) -> Hello:
        version, rule, layers, af, wf, ff, lf, outputs = body[:8]
        mhash, state_size, rx_max, chunk = struct.unpack_from("<IIHH", body, 8)
        at, max_batch = 20, 1
        if version >= 3:  # max batch u16 after chunk
            (max_batch,) = struct.unpack_from("<H", body, at)
            at += 2
        dims = struct.unpack_from(f"<{layers + 1}H", body, at)
        return cls(version, rule, (af, wf, ff, lf), outputs, mhash, state_size, rx_max, chunk, dims,
                   body[at + 2 * (layers + 1):].decode("ascii", "replace"), max_batch)


@dataclass(frozen=True)
class Stats:
    steps: int
    saturations: int
    frames_ok: int
    frames_bad: int
    cycles: int
    digest: int

    @classmethod
    def parse(cls, body: bytes) -> Stats:
        return cls(*struct.unpack("<6I", body))
