"""Bad frames get an error frame that says what was wrong, and leave the learned state untouched."""

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cobs import cobs

from helpers import make_spec
from onward.data import load_dataset
from onward.model import init_model
from onward.protocol import Cmd, DeviceError, encode_frame
from onward.reference import FixedReference, make_fixed, training_stream
from onward.targets.device import Device
from onward.targets.run import open_device


@pytest.fixture(scope="module", params=["native", "qemu-m4"])
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[Device, FixedReference, list]]:
    spec = make_spec()
    data = load_dataset(spec)
    model = init_model(spec, data)
    ref = make_fixed(model)
    steps = [s for s in training_stream(model, data, 1) if s.kind == "train"]
    with open_device(model, request.param, Path(tmp_path_factory.mktemp("build"))) as device:
        device.hello()
        for step in steps[:20]:
            ref.train(step.x, step.target)
            device.train(step.x, step.target)
        yield device, ref, steps[20:]


def raw_frame(command: int, body: bytes, length: int | None = None, crc: int | None = None) -> bytes:
    head = struct.pack("<BH", command, len(body) if length is None else length) + body
    return cobs.encode(head + struct.pack("<I", zlib.crc32(head) if crc is None else crc)) + b"\x00"


def expect_error(device: Device, wire: bytes, kind: str, message: str) -> None:
    device.link.write(wire)
    with pytest.raises(DeviceError) as exc:
        device.reply(0)
    assert exc.value.kind == kind
    assert message in str(exc.value)


def x_bytes(ref: FixedReference) -> bytes:
    return np.zeros(ref.model.dims[0], dtype="<i2").tobytes()


def test_bad_frames_get_errors_and_keep_the_state(trained) -> None:
    device, ref, steps = trained
    before = device.stats()
    n_in = ref.model.dims[0]
    good_train = struct.pack("<h", 1) + x_bytes(ref)
    expect_error(device, raw_frame(Cmd.TRAIN, good_train, crc=0xDEADBEEF), "crc",
                 "device rejected TRAIN frame: CRC mismatch")
    expect_error(device, raw_frame(Cmd.TRAIN, good_train[:-2]), "body",
                 f"wrong body length (expected {2 + 2 * n_in} bytes, got {2 * n_in})")
    expect_error(device, raw_frame(Cmd.TRAIN, good_train, length=3), "length",
                 f"body has {2 + 2 * n_in} bytes, field says 3")
    expect_error(device, raw_frame(Cmd.TRAIN, struct.pack("<h", 200) + x_bytes(ref)), "argument",
                 "argument out of range (limit 3, got 200)")
    expect_error(device, raw_frame(Cmd.TRAIN, struct.pack("<h", -1) + x_bytes(ref)), "argument",
                 "argument out of range (limit 3, got 4294967295)")  # a negative class index
    expect_error(device, raw_frame(Cmd.SET_STAGE, struct.pack("<I", 99)), "argument",
                 "argument out of range (limit 1, got 99)")
    expect_error(device, raw_frame(0x42, b""), "command", "unknown command 0x42")
    expect_error(device, cobs.encode(b"\x05\x01\x02\x03") + b"\x00", "short", "at least 7 decoded bytes, got 4")
    expect_error(device, b"\x09\x05\x00", "framing", "bad code byte at position 0")  # block past the end
    expect_error(device, b"\x01" * 5000 + b"\x00", "oversized", "got 5000")
    expect_error(device, raw_frame(Cmd.DUMP, struct.pack("<IH", 10**6, 4)), "argument", "got 1000004")
    expect_error(device, raw_frame(Cmd.SET_LR, struct.pack("<I", 0)), "argument", "got 0")
    after = device.stats()
    assert after.digest == before.digest == ref.digest()
    assert after.frames_bad == before.frames_bad + 12
    # ... and learning carries on, in lockstep with the reference
    for step in steps[:5]:
        logits, digest = device.train(step.x, step.target)
        assert (logits == ref.train(step.x, step.target)).all() and digest == ref.digest()


def test_load_and_dump_round_trip(trained) -> None:
    device, ref, _ = trained
    image = ref.state_bytes()
    assert device.dump_state(len(image), device.chunk) == image
    changed = bytearray(image)
    changed[20] ^= 0x55
    device.load_state(bytes(changed), device.chunk)
    assert device.stats().digest == zlib.crc32(bytes(changed))
    device.load_state(image, device.chunk)
    assert device.stats().digest == ref.digest()


def test_encode_frame_matches_the_layout() -> None:
    wire = encode_frame(Cmd.HELLO)
    raw = cobs.decode(wire[:-1])
    assert wire[-1] == 0 and 0 not in wire[:-1]
    assert raw[:3] == b"\x01\x00\x00" and struct.unpack("<I", raw[3:])[0] == zlib.crc32(raw[:3])
