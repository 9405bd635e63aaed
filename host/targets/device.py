"""A firmware on the other end of a link, driven command by command."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence

import numpy as np

from onward.fixed import I64
from onward.protocol import REPLY, Cmd, DeviceError, Hello, ProtocolError, Stats, decode_frame, encode_frame
from onward.targets.link import Link

# How long connect() waits for the first HELLO reply before saying HELLO again.
SYNC_INTERVAL = 0.25


class Device:
    def __init__(self, link: Link, timeout: float = 10.0) -> None:
        self.link = link
        self.timeout = timeout
        self.chunk = 256  # LOAD/DUMP bytes per frame; HELLO tells the real value
        self.max_batch = 1  # samples per TRAIN_BATCH frame; HELLO tells the real value
        self.outputs: int | None = None  # int16 outputs per step, from HELLO
        # The instrument a rule that measures through the host queries (onward.instrument): request -> answer
        self.on_query: Callable[[bytes], bytes] | None = None
        self.queries = 0  # QUERY frames answered

    def request(self, command: int, body: bytes = b"") -> bytes:
        self.link.write(encode_frame(command, body))
        return self.reply(command)

    def reply(self, command: int) -> bytes:
        """The reply to `command`, answering the QUERY frames the device sends before it (onward.instrument)."""
        reply_cmd, body = decode_frame(self.link.read_frame(self.timeout))
        while reply_cmd == Cmd.QUERY:
            if self.on_query is None:
                raise ProtocolError("the device asked the host for a measurement (a QUERY frame) and no instrument "
                                    "is attached to this session")
            self.link.write(encode_frame(Cmd.ANSWER, self.on_query(body)))
            self.queries += 1
            reply_cmd, body = decode_frame(self.link.read_frame(self.timeout))
        if reply_cmd == Cmd.ERROR:
            raise DeviceError(*struct.unpack("<BBII", body))
        if reply_cmd != command | REPLY:
            raise ProtocolError(f"expected a reply to command 0x{command:02X}, got command 0x{reply_cmd:02X}")
        return body

    def hello(self) -> Hello:
        hello = Hello.parse(self.request(Cmd.HELLO))
        self.chunk, self.max_batch, self.outputs = hello.chunk, hello.max_batch, hello.outputs
        return hello

    def connect(self) -> Hello:
        """The first exchange of a session: HELLO, said again every SYNC_INTERVAL until the firmware answers, for
        at most `timeout`. A board loses what arrives while it boots, as a UART does before its receiver is on
        (QEMU's STM32 USART drops every byte until the firmware sets CR1.UE and RE); a damaged HELLO is answered
        with an error frame, and said again too. Once one reply came, the replies to the repeats are read off, so
        that the next command reads its own. Costs nothing where the first HELLO arrives (every other board)."""
        deadline = time.monotonic() + self.timeout
        said = 0
        while True:
            self.link.write(encode_frame(Cmd.HELLO))
            said += 1
            try:
                reply_cmd, body = decode_frame(self.link.read_frame(min(SYNC_INTERVAL, self.timeout)))
            except ProtocolError:
                if time.monotonic() >= deadline:
                    raise ProtocolError(f"no reply to HELLO within {self.timeout:g} s ({said} tries)") from None
                continue
            if reply_cmd == Cmd.HELLO | REPLY:
                break
        while said > 1:  # the repeats' replies, if they come: until the line is quiet
            try:
                self.link.read_frame(SYNC_INTERVAL)
            except ProtocolError:
                break
        hello = Hello.parse(body)
        self.chunk, self.max_batch, self.outputs = hello.chunk, hello.max_batch, hello.outputs
        return hello

    def reset(self, seed: int | None = None) -> None:
        self.request(Cmd.RESET, b"" if seed is None else struct.pack("<I", seed))

    def set_lr(self, lr_q: int) -> None:
        self.request(Cmd.SET_LR, struct.pack("<I", lr_q))

    def set_stage(self, stage: int) -> None:
        self.request(Cmd.SET_STAGE, struct.pack("<I", stage))

    def encode_sample(self, x: I64, target: int) -> bytes:
        """One sample as TRAIN and TRAIN_BATCH carry it: target int16, x int16[input]."""
        return struct.pack("<h", target) + np.asarray(x, dtype="<i2").tobytes()

    def train(self, x: I64, target: int) -> tuple[I64, int]:
        """One training step (target: class index, or Q(af) regression target); returns the rule's outputs
        and the digest of the new state."""
        body = self.request(Cmd.TRAIN, self.encode_sample(x, target))
        outputs = np.frombuffer(body[:-4], dtype="<i2").astype(np.int64)
        return outputs, struct.unpack("<I", body[-4:])[0]

    def send_train_batch(self, xs: Sequence[I64], targets: Sequence[int]) -> int:
        """Send one TRAIN_BATCH frame without waiting for its reply, so that the caller can work (compute the
        reference) while the device trains; receive_train_batch(count) collects the reply. Returns count."""
        if len(xs) != len(targets) or not 1 <= len(xs) <= 0xFFFF:
            raise ValueError(f"a batch takes 1 to 65535 samples and as many targets, got {len(xs)}, {len(targets)}")
        body = struct.pack("<H", len(xs)) + b"".join(self.encode_sample(x, t) for x, t in zip(xs, targets, strict=True))
        self.link.write(encode_frame(Cmd.TRAIN_BATCH, body))
        return len(xs)

    def receive_train_batch(self, count: int) -> tuple[I64, list[int]]:
        """The reply to a TRAIN_BATCH of `count` samples: outputs [count, outputs] and each step's digest."""
        body = self.reply(Cmd.TRAIN_BATCH)
        if count < 1 or len(body) % count:
            raise ProtocolError(f"TRAIN_BATCH reply of {len(body)} bytes does not split into {count} steps")
        per = len(body) // count
        if per < 4 or (self.outputs is not None and per != 2 * self.outputs + 4):
            raise ProtocolError(f"TRAIN_BATCH reply of {len(body)} bytes for {count} steps: {per} bytes a step")
        rows = np.frombuffer(body, dtype=np.uint8).reshape(count, per)
        outputs = rows[:, :-4].copy().view("<i2").astype(np.int64)
        digests = [int(d) for d in rows[:, -4:].copy().view("<u4").ravel()]
        return outputs, digests

    def train_batch(self, xs: Sequence[I64], targets: Sequence[int]) -> tuple[I64, list[int]]:
        """len(xs) training steps in one frame each way (at most max_batch): every step's outputs and digest."""
        return self.receive_train_batch(self.send_train_batch(xs, targets))

    def infer(self, x: I64) -> I64:
        return np.frombuffer(self.request(Cmd.INFER, np.asarray(x, dtype="<i2").tobytes()),
                             dtype="<i2").astype(np.int64)

    def stats(self) -> Stats:
        return Stats.parse(self.request(Cmd.STATS))

    def save(self) -> tuple[int, int]:
        """SAVE ([persist] builds): the state written to flash; (the record's seq, the state digest)."""
        seq, digest = struct.unpack("<II", self.request(Cmd.SAVE))
        return seq, digest

    def restore(self) -> tuple[int, int]:
        """RESTORE: the newest saved state loaded; (its seq, the state digest). DeviceError if none is saved."""
        seq, digest = struct.unpack("<II", self.request(Cmd.RESTORE))
        return seq, digest

    def dump_state(self, size: int, chunk: int) -> bytes:
        return b"".join(self.request(Cmd.DUMP, struct.pack("<IH", at, min(chunk, size - at)))
                        for at in range(0, size, chunk))

    def load_state(self, image: bytes, chunk: int) -> None:
        for at in range(0, len(image), chunk):
            self.request(Cmd.LOAD, struct.pack("<I", at) + image[at:at + chunk])

    def close(self) -> None:
        self.link.close()
