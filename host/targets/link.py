"""Byte links to a running firmware: a native process's pipes, or pyserial (QEMU's TCP UART, real boards)."""

from __future__ import annotations

import os
import select
import subprocess
import time
from typing import Protocol

from onward.protocol import ProtocolError


class Link(Protocol):
    def write(self, data: bytes) -> None: ...
    def read_frame(self, timeout: float) -> bytes: ...
    def close(self) -> None: ...


class PipeLink:
    """stdin/stdout of a native firmware process."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self._fd = process.stdout.fileno()
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
        except BrokenPipeError:
            raise ProtocolError(f"the firmware process exited (status {self.process.poll()})") from None

    def read_frame(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while (end := self._buffer.find(0)) < 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                raise ProtocolError(f"no reply frame within {timeout:g} s")
            chunk = os.read(self._fd, 65536)
            if not chunk:
                raise ProtocolError(f"the firmware process exited (status {self.process.wait()})")
            self._buffer += chunk
        frame = bytes(self._buffer[:end])
        del self._buffer[:end + 1]
        return frame

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            if stream:
                stream.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class SerialLink:
    """Any pyserial URL or port: socket://127.0.0.1:PORT for QEMU, /dev/ttyACM0 for a board."""

    def __init__(self, url: str, baudrate: int = 115200) -> None:
        import serial

        self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=1.0)
        sock = getattr(self.port, "_socket", None)
        if sock is not None:  # pyserial's socket:// leaves Nagle on: replies would stall ~40 ms
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def read_frame(self, timeout: float) -> bytes:
        self.port.timeout = timeout
        data = self.port.read_until(b"\x00")
        if not data.endswith(b"\x00"):
            raise ProtocolError(f"no reply frame within {timeout:g} s (got {len(data)} bytes)")
        return data[:-1]

    def close(self) -> None:
        self.port.close()
