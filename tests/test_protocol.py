"""Bad frames get an error frame that says what was wrong, and leave the learned state untouched."""

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cobs import cobs

from helpers import make_spec
from onward.codegen.c import default_batch
from onward.data import load_dataset
from onward.model import init_model
from onward.protocol import Cmd, DeviceError, Hello, encode_frame
from onward.reference import FixedReference, make_fixed, training_stream
from onward.targets.device import Device
from onward.targets.run import open_device


@pytest.fixture(scope="module", params=["native", "qemu-m4", "qemu-m4-semihost", "qemu-stm32f4", "micropython"])
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[Device, FixedReference, list]]:
    spec = make_spec()
    data = load_dataset(spec)
    model = init_model(spec, data)
    ref = make_fixed(model)
    steps = [s for s in training_stream(model, data, 1) if s.kind == "train"]
    with open_device(model, request.param.removesuffix("-semihost"), Path(tmp_path_factory.mktemp("build")),
                     transport="semihost" if request.param.endswith("-semihost") else "uart") as device:
        device.connect()
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


def test_train_batch_equals_the_reference_step_by_step(trained) -> None:
    device, ref, steps = trained
    assert device.max_batch == default_batch(ref.model) == 64  # 12 inputs: 26 bytes a sample
    at = 5
    for size in (1, device.max_batch, 3):
        chunk, at = steps[at:at + size], at + size
        outputs, digests = device.train_batch([s.x for s in chunk], [s.target for s in chunk])
        assert outputs.shape == (size, ref.model.outputs) and len(digests) == size
        for step, out, digest in zip(chunk, outputs, digests, strict=True):
            assert (out == ref.train(step.x, step.target)).all() and digest == ref.digest()
    stats = device.stats()
    assert stats.steps == ref.steps and stats.saturations == ref.saturations and stats.digest == ref.digest()


def test_bad_batch_frames_get_errors_and_train_nothing(trained) -> None:
    device, ref, _ = trained
    before = device.stats()
    most = device.max_batch
    good = struct.pack("<h", 1) + x_bytes(ref)
    per = len(good)

    def batch(count: int, *samples: bytes) -> bytes:
        return struct.pack("<H", count) + b"".join(samples)

    expect_error(device, raw_frame(Cmd.TRAIN_BATCH, batch(0)), "argument",
                 f"device rejected TRAIN_BATCH frame: argument out of range (limit {most}, got 0)")
    expect_error(device, raw_frame(Cmd.TRAIN_BATCH, batch(most + 1, good)), "argument",
                 f"(limit {most}, got {most + 1})")
    expect_error(device, raw_frame(Cmd.TRAIN_BATCH, batch(3, good, good)), "body",
                 f"wrong body length (expected {2 + 3 * per} bytes, got {2 + 2 * per})")
    expect_error(device, raw_frame(Cmd.TRAIN_BATCH, batch(2, good, good, good)), "body",
                 f"(expected {2 + 2 * per} bytes, got {2 + 3 * per})")
    expect_error(device, raw_frame(Cmd.TRAIN_BATCH, b"\x01"), "body", f"(expected {2 + per} bytes, got 1)")
    # a label out of range in the last sample: the first two are not trained either
    bad_label = struct.pack("<h", 4) + x_bytes(ref)
    expect_error(device, raw_frame(Cmd.TRAIN_BATCH, batch(3, good, good, bad_label)), "argument",
                 "argument out of range (limit 3, got 4)")
    after = device.stats()
    assert after.digest == before.digest == ref.digest()
    assert (after.steps, after.saturations) == (before.steps, before.saturations)
    assert after.frames_bad == before.frames_bad + 6


def test_hello_of_a_version_2_firmware_means_no_batches() -> None:
    body = bytes([2, 1, 1, 10, 12, 15, 24, 3]) + struct.pack("<IIHH", 7, 100, 300, 256)
    body += struct.pack("<2H", 4, 3) + b"m@b"
    hello = Hello.parse(body)
    assert (hello.max_batch, hello.dims, hello.name) == (1, (4, 3), "m@b")
    v3 = Hello.parse(bytes([3]) + body[1:20] + struct.pack("<H", 9) + body[20:])
    assert (v3.max_batch, v3.dims, v3.name) == (9, (4, 3), "m@b")


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


def test_a_full_cobs_block_followed_by_a_zero(trained) -> None:
    """A reply whose COBS encoding has a full block (254 non-zero bytes, code 0xFF) right before a zero byte: the zero
    must be encoded, not implied (a TRAIN_BATCH reply hit this after ~10000 steps of digits_pepita: bench/soak.py).
    DUMP of 256 state bytes: the reply is 0x84, 0x00, 0x01 (the length), the bytes, the CRC; the block after the
    length's zero holds 0x01 and the first 253 bytes, so byte 253 = 0 comes right after a full block."""
    device, ref, _ = trained
    image = bytearray(ref.state_bytes())
    offset = 16
    pattern = bytes(range(1, 254)) + b"\x00\x07\x09"  # 253 non-zero bytes, then a zero
    image[offset:offset + 256] = pattern
    device.load_state(bytes(image), device.chunk)
    assert device.request(Cmd.DUMP, struct.pack("<IH", offset, 256)) == pattern
    device.load_state(ref.state_bytes(), device.chunk)
    assert device.stats().digest == ref.digest()


def test_encode_frame_matches_the_layout() -> None:
    wire = encode_frame(Cmd.HELLO)
    raw = cobs.decode(wire[:-1])
    assert wire[-1] == 0 and 0 not in wire[:-1]
    assert raw[:3] == b"\x01\x00\x00" and struct.unpack("<I", raw[3:])[0] == zlib.crc32(raw[:3])
