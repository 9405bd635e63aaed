"""A firmware on the other end of a link, driven command by command."""

from __future__ import annotations

import struct

import numpy as np

from onward.fixed import I64
from onward.protocol import Cmd, DeviceError, Hello, ProtocolError, Stats, decode_frame, encode_frame
from onward.targets.link import Link


class Device:
    def __init__(self, link: Link, timeout: float = 10.0) -> None:
        self.link = link
        self.timeout = timeout
        self.chunk = 256  # LOAD/DUMP bytes per frame; HELLO tells the real value

    def request(self, command: int, body: bytes = b"") -> bytes:
        self.link.write(encode_frame(command, body))
        return self.reply(command)

    def reply(self, command: int) -> bytes:
        reply_cmd, body = decode_frame(self.link.read_frame(self.timeout))
        if reply_cmd == Cmd.ERROR:
            raise DeviceError(*struct.unpack("<BBII", body))
        if reply_cmd != command | 0x80:
            raise ProtocolError(f"expected a reply to command 0x{command:02X}, got command 0x{reply_cmd:02X}")
        return body

    def hello(self) -> Hello:
        hello = Hello.parse(self.request(Cmd.HELLO))
        self.chunk = hello.chunk
        return hello

    def reset(self, seed: int | None = None) -> None:
        self.request(Cmd.RESET, b"" if seed is None else struct.pack("<I", seed))

    def set_lr(self, lr_q: int) -> None:
        self.request(Cmd.SET_LR, struct.pack("<I", lr_q))

    def set_stage(self, stage: int) -> None:
        self.request(Cmd.SET_STAGE, struct.pack("<I", stage))

    def train(self, x: I64, target: int) -> tuple[I64, int]:
        """One training step (target: class index, or Q(af) regression target); returns the rule's outputs
        and the digest of the new state."""
        body = self.request(Cmd.TRAIN, struct.pack("<h", target) + np.asarray(x, dtype="<i2").tobytes())
        outputs = np.frombuffer(body[:-4], dtype="<i2").astype(np.int64)
        return outputs, struct.unpack("<I", body[-4:])[0]

    def infer(self, x: I64) -> I64:
        return np.frombuffer(self.request(Cmd.INFER, np.asarray(x, dtype="<i2").tobytes()),
                             dtype="<i2").astype(np.int64)

    def stats(self) -> Stats:
        return Stats.parse(self.request(Cmd.STATS))

    def dump_state(self, size: int, chunk: int) -> bytes:
        return b"".join(self.request(Cmd.DUMP, struct.pack("<IH", at, min(chunk, size - at)))
                        for at in range(0, size, chunk))

    def load_state(self, image: bytes, chunk: int) -> None:
        for at in range(0, len(image), chunk):
            self.request(Cmd.LOAD, struct.pack("<I", at) + image[at:at + chunk])

    def close(self) -> None:
        self.link.close()
