"""Golden bytes: hand-checked wire images of every packet type in every protocol version.

Each case is checked both ways: ``encode(packet) == bytes`` and ``decode(bytes) == packet``.
Comments give the field split so a reader can check the hex against the specification.
"""

from __future__ import annotations

import pytest

from m2mhub.mqtt.codec import decode, encode, encode_publish_parts
from m2mhub.mqtt.packets import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionOptions,
    Unsuback,
    Unsubscribe,
    Will,
)

ALL = (3, 4, 5)
V3 = (3, 4)

GOLDEN: list[tuple[tuple[int, ...], str, Packet]] = [
    # CONNECT: name, level, flags (clean), keepalive 60, client id "abc"
    ((4,), "10 0f 0004 4d515454 04 02 003c 0003 616263", Connect(4, "abc", True, 60)),
    ((3,), "10 11 0006 4d5149736470 03 02 003c 0003 616263",
     Connect(3, "abc", True, 60, protocol_name="MQIsdp")),
    # 5.0: empty property length before the payload
    ((5,), "10 10 0004 4d515454 05 02 003c 00 0003 616263", Connect(5, "abc", True, 60)),
    # flags 0xec = username | password | will retain | will QoS 1 | will; keepalive 10
    ((4,), "10 19 0004 4d515454 04 ec 000a 0001 63 0001 77 0001 78 0001 75 0001 70",
     Connect(4, "c", False, 10, Will("w", b"x", 1, True), "u", b"p")),
    # 5.0: Session Expiry Interval 10, will properties: Will Delay Interval 5
    ((5,), "10 25 0004 4d515454 05 ec 000a 05 11 0000000a 0001 63 05 18 00000005"
           " 0001 77 0001 78 0001 75 0001 70",
     Connect(5, "c", False, 10, Will("w", b"x", 1, True, {0x18: 5}), "u", b"p", {0x11: 10})),
    # 5.0 allows a password without a user name (flag 0x40)
    ((5,), "10 12 0004 4d515454 05 40 0000 00 0001 63 0002 7077",
     Connect(5, "c", False, 0, password=b"pw")),
    # bridge bit 0x80 in the level byte (mosquitto's try_private)
    ((4,), "10 0d 0004 4d515454 84 02 003c 0001 62", Connect(4, "b", True, 60, bridge=True)),
    # CONNACK: flags (session present), return code
    ((4,), "20 02 01 00", Connack(True, 0)),
    ((3,), "20 02 00 05", Connack(False, 5)),
    ((4,), "20 02 00 04", Connack(False, 4)),
    ((5,), "20 06 01 00 03 21 0014", Connack(True, 0, {0x21: 20})),
    ((5,), "20 03 00 86 00", Connack(False, 0x86)),
    # PUBLISH QoS 0 "a/b" "hi"
    (V3, "30 07 0003 612f62 6869", Publish("a/b", b"hi")),
    ((5,), "30 08 0003 612f62 00 6869", Publish("a/b", b"hi")),
    # flags 0x3b = DUP | QoS 1 | RETAIN, packet id 10, empty payload
    (V3, "3b 05 0001 74 000a", Publish("t", b"", 1, True, True, 10)),
    ((5,), "3b 06 0001 74 000a 00", Publish("t", b"", 1, True, True, 10)),
    # QoS 2, packet id 1, Content Type "j", payload "z"
    ((5,), "34 0b 0001 74 0001 04 03 0001 6a 7a", Publish("t", b"z", 2, False, False, 1,
                                                          {0x03: "j"})),
    # Subscription Identifiers 1 and 200 (varint c8 01), User Property k=v
    ((5,), "30 10 0001 74 0c 0b 01 0b c801 26 0001 6b 0001 76",
     Publish("t", b"", properties={0x0B: [1, 200], 0x26: [("k", "v")]})),
    # empty topic with Topic Alias 3
    ((5,), "30 06 0000 03 23 0003", Publish("", b"", properties={0x23: 3})),
    # two-byte remaining length: 3 + 200 = 203 = cb 01
    (V3, "30 cb01 0001 74" + "78" * 200, Publish("t", b"x" * 200)),
    # acks
    (ALL, "40 02 0001", Puback(1)),
    (ALL, "50 02 0002", Pubrec(2)),
    (ALL, "62 02 0003", Pubrel(3)),
    (ALL, "70 02 0004", Pubcomp(4)),
    ((5,), "40 03 0001 10", Puback(1, 0x10)),
    ((5,), "50 03 0002 97", Pubrec(2, 0x97)),
    ((5,), "62 03 0003 92", Pubrel(3, 0x92)),
    ((5,), "70 03 0004 92", Pubcomp(4, 0x92)),
    ((5,), "40 09 0001 10 05 1f 0002 6e6f", Puback(1, 0x10, {0x1F: "no"})),
    # SUBSCRIBE "a/#" QoS 1, "+" QoS 0
    (V3, "82 0c 0001 0003 612f23 01 0001 2b 00",
     Subscribe(1, [("a/#", SubscriptionOptions(1)), ("+", SubscriptionOptions(0))])),
    # 5.0: Subscription Identifier 5; options 0x1e = retain handling 1 | RAP | no local | QoS 2
    ((5,), "82 0b 0001 02 0b 05 0003 612f23 1e",
     Subscribe(1, [("a/#", SubscriptionOptions(2, True, True, 1))], {0x0B: [5]})),
    ((5,), "82 10 0001 00 000a 247368617265 2f672f78 00",
     Subscribe(1, [("$share/g/x", SubscriptionOptions(0))])),
    # SUBACK
    (V3, "90 04 0001 01 80", Suback(1, [1, 0x80])),
    ((5,), "90 05 0001 00 01 80", Suback(1, [1, 0x80])),
    ((5,), "90 09 0001 05 1f 0002 6e6f 87", Suback(1, [0x87], {0x1F: "no"})),
    # UNSUBSCRIBE / UNSUBACK
    (V3, "a2 05 0002 0001 61", Unsubscribe(2, ["a"])),
    ((5,), "a2 06 0002 00 0001 61", Unsubscribe(2, ["a"])),
    (V3, "b0 02 0002", Unsuback(2)),
    ((5,), "b0 05 0002 00 00 11", Unsuback(2, [0x00, 0x11])),
    # PINGREQ, PINGRESP, DISCONNECT
    (ALL, "c0 00", Pingreq()),
    (ALL, "d0 00", Pingresp()),
    (ALL, "e0 00", Disconnect()),
    ((5,), "e0 01 04", Disconnect(0x04)),
    ((5,), "e0 08 8b 06 1f 0003 627965", Disconnect(0x8B, {0x1F: "bye"})),
    # AUTH (5.0 only)
    ((5,), "f0 00", Auth()),
    ((5,), "f0 06 18 04 15 0001 58", Auth(0x18, {0x15: "X"})),
]  # fmt: skip

CASES = [
    pytest.param(level, bytes.fromhex(hexstr), packet, id=f"v{level}-{hexstr[:20]}")
    for levels, hexstr, packet in GOLDEN
    for level in levels
]


@pytest.mark.parametrize(("level", "wire", "packet"), CASES)
def test_encode_golden(level: int, wire: bytes, packet: Packet) -> None:
    assert encode(packet, level).hex(" ") == wire.hex(" ")


@pytest.mark.parametrize(("level", "wire", "packet"), CASES)
def test_decode_golden(level: int, wire: bytes, packet: Packet) -> None:
    assert decode(wire, level) == packet


def test_every_packet_type_has_golden_bytes_in_every_version() -> None:
    seen = {(level, type(packet)) for level, _, packet in (c.values for c in CASES)}
    for level in ALL:
        for cls in (Connect, Connack, Publish, Puback, Pubrec, Pubrel, Pubcomp, Subscribe,
                    Suback, Unsubscribe, Unsuback, Pingreq, Pingresp, Disconnect):  # fmt: skip
            assert (level, cls) in seen, (level, cls)
    assert (5, Auth) in seen


@pytest.mark.parametrize(
    ("remaining", "length_bytes"),
    [(127, "7f"), (128, "8001"), (16383, "ff7f"), (16384, "808001"),
     (2097151, "ffff7f"), (2097152, "80808001")],
)  # fmt: skip
def test_remaining_length_boundaries(remaining: int, length_bytes: str) -> None:
    payload = b"p" * (remaining - 3)  # topic "t" takes 3 bytes
    wire = encode(Publish("t", payload), 4)
    assert wire[1 : 1 + len(length_bytes) // 2].hex() == length_bytes
    assert len(wire) == 1 + len(length_bytes) // 2 + remaining
    assert decode(wire, 4) == Publish("t", payload)


@pytest.mark.parametrize("level", ALL)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_parts_match_full_encoding(level: int, qos: int) -> None:
    props = {0x02: 60, 0x26: [("a", "b")]} if level == 5 else None
    head, tail = encode_publish_parts("x/y", b"data" * 40, qos, True, False, props, level)
    pid = 513 if qos else None
    wire = head + (pid.to_bytes(2, "big") if pid else b"") + tail
    expected = Publish("x/y", b"data" * 40, qos, True, False, pid, props or {})
    assert wire == encode(expected, level)
    assert decode(wire, level) == expected


def test_connect_level_3_uses_mqisdp_even_if_name_left_default() -> None:
    wire = encode(Connect(3, "abc", True, 60), 3)
    assert wire == bytes.fromhex("10 11 0006 4d5149736470 03 02 003c 0003 616263")
