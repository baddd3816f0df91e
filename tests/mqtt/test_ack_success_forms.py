"""A 5.0 ack may spell Success out (reason code 0, Property Length 0): same as the short form."""

from __future__ import annotations

import pytest

from m2mhub.mqtt.codec import PacketReader, decode
from m2mhub.mqtt.errors import MalformedPacket, ProtocolError
from m2mhub.mqtt.packets import Puback, Pubcomp, Pubrec, Pubrel

ACKS = [(0x40, Puback), (0x50, Pubrec), (0x62, Pubrel), (0x70, Pubcomp)]


@pytest.mark.parametrize(("first", "cls"), ACKS)
def test_success_spelled_out_is_the_short_form(first: int, cls: type) -> None:
    short = decode(bytes((first, 2, 0x12, 0x34)), 5)
    assert short == cls(0x1234)
    assert decode(bytes((first, 3, 0x12, 0x34, 0)), 5) == short
    assert decode(bytes((first, 4, 0x12, 0x34, 0, 0)), 5) == short


@pytest.mark.parametrize(("first", "cls"), ACKS)
def test_other_long_forms_keep_their_reason_code_and_properties(first: int, cls: type) -> None:
    code = 0x92 if cls in (Pubrel, Pubcomp) else 0x10
    assert decode(bytes((first, 3, 0, 9, code)), 5) == cls(9, code)
    with_reason = bytes((first, 8, 0, 9, 0, 4, 0x1F, 0, 1, ord("r")))
    assert decode(with_reason, 5) == cls(9, 0, {0x1F: "r"})


def test_bad_long_forms_are_still_refused() -> None:
    with pytest.raises(ProtocolError, match="PUBACK with packet identifier 0"):
        decode(b"\x40\x03\x00\x00\x00", 5)
    with pytest.raises(MalformedPacket, match="truncated properties"):
        decode(b"\x40\x04\x00\x07\x00\x01", 5)
    with pytest.raises(MalformedPacket, match="remaining length must be 2"):
        decode(b"\x40\x03\x00\x07\x00", 4)
    with pytest.raises(MalformedPacket, match="invalid fixed-header flags"):
        decode(b"\x60\x03\x00\x07\x00", 5)  # PUBREL needs flags 0x2


def test_long_acks_split_across_reads() -> None:
    stream = b"\x40\x04\x00\x07\x00\x00" + b"\x40\x03\x00\x08\x00" + b"\x40\x02\x00\x09"
    reader = PacketReader(5)
    got = []
    for i in range(len(stream)):
        got += reader.feed_all(stream[i : i + 1])
    assert got == [Puback(7), Puback(8), Puback(9)]
