"""Byte links to a running firmware: a native process's pipes, pyserial (QEMU's TCP UART, real boards), or
semihosting FIFOs (the emulated boards' fast channel)."""

from __future__ import annotations

import errno
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Protocol

from onward.protocol import ProtocolError


class Link(Protocol):
    def write(self, data: bytes) -> None: ...
    def read_frame(self, timeout: float) -> bytes: ...
    def close(self) -> None: ...


def pop_frame(buffer: bytearray) -> bytes | None:
    """The first whole frame (up to its 0x00 delimiter) taken out of what a file-descriptor link has read."""
    end = buffer.find(0)
    if end < 0:
        return None
    frame = bytes(buffer[:end])
    del buffer[:end + 1]
    return frame


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
        while (frame := pop_frame(self._buffer)) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                raise ProtocolError(f"no reply frame within {timeout:g} s")
            chunk = os.read(self._fd, 65536)
            if not chunk:
                raise ProtocolError(f"the firmware process exited (status {self.process.wait()})")
            self._buffer += chunk
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


class SemihostLink:
    """The emulated boards' fast channel: two FIFOs in QEMU's working directory that the firmware (built with
    -DONW_TRANSPORT_SEMIHOST, boards/semihost/port_semihost.c) reads and writes with semihosting file I/O.
    Same frames as the UART, without its ~30 KB/s. Make the FIFOs with `create` before QEMU starts, then
    `connect` once it runs."""

    TO_DEVICE, FROM_DEVICE = "onward.in", "onward.out"  # the names the firmware opens

    def __init__(self, folder: Path, process: subprocess.Popen[bytes]) -> None:
        self.folder, self.process = folder, process
        self._buffer = bytearray()
        # Reading end first and without blocking: the firmware opens its output first, then blocks opening
        # its input until we open the writing end (`connect`).
        self._rfd = os.open(folder / self.FROM_DEVICE, os.O_RDONLY | os.O_NONBLOCK)
        self._wfd = -1

    @classmethod
    def create(cls, folder: Path) -> None:
        for name in (cls.TO_DEVICE, cls.FROM_DEVICE):
            os.mkfifo(folder / name)

    def connect(self, timeout: float) -> None:
        """Wait until the firmware has opened both FIFOs; a clear error if QEMU exits or nothing happens."""
        deadline = time.monotonic() + timeout
        while True:
            try:  # fails with ENXIO until the firmware has the FIFO open for reading
                self._wfd = os.open(self.folder / self.TO_DEVICE, os.O_WRONLY | os.O_NONBLOCK)
                return
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
            if self.process.poll() is not None:
                raise ProtocolError(f"{self._exited()} before the firmware opened its semihosting channel")
            if time.monotonic() > deadline:
                raise ProtocolError(f"the firmware did not open its semihosting channel within {timeout:g} s "
                                    "(is it built for semihosting, and QEMU started with it?)")
            time.sleep(0.005)

    def _exited(self) -> str:
        """One line on how QEMU ended: its status and the last line it printed."""
        try:
            status = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "QEMU stopped answering"
        last = ""
        if self.process.stderr is not None:
            lines = [ln.strip() for ln in self.process.stderr.read().decode(errors="replace").splitlines()]
            # QEMU's own complaint ("qemu-system-arm: ...", "qemu: fatal: ..."), not a register dump after it
            last = next((ln for ln in lines if ln.startswith("qemu")), next((ln for ln in reversed(lines) if ln), ""))
        return f"QEMU exited (status {status})" + (f": {last}" if last else "")

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 10.0
        while view:
            if not select.select([], [self._wfd], [], 0.1)[1]:
                if self.process.poll() is not None:
                    raise ProtocolError(self._exited())
                if time.monotonic() > deadline:
                    raise ProtocolError("the firmware takes no input (semihosting channel full for 10 s)")
                continue
            try:
                view = view[os.write(self._wfd, view):]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise ProtocolError(self._exited()) from None

    def read_frame(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while (frame := pop_frame(self._buffer)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"no reply frame within {timeout:g} s")
            if not select.select([self._rfd], [], [], min(left, 0.5))[0]:
                if self.process.poll() is not None:
                    raise ProtocolError(self._exited())
                continue
            try:
                chunk = os.read(self._rfd, 65536)
            except BlockingIOError:
                continue
            if not chunk:  # every writer is gone: QEMU closed the FIFO, i.e. it exited
                raise ProtocolError(self._exited())
            self._buffer += chunk
        return frame

    def close(self) -> None:
        # Closing our writing end gives the firmware EOF: it exits QEMU with SYS_EXIT.
        for fd in (self._wfd, self._rfd):
            if fd >= 0:
                os.close(fd)
        self._wfd = self._rfd = -1
        shutil.rmtree(self.folder, ignore_errors=True)
