"""Bad input: every class of malformed or illegal packet raises the right MQTTError."""

from __future__ import annotations

import pytest

from m2mhub.mqtt.codec import PacketReader, decode, encode
from m2mhub.mqtt.errors import (
    MalformedPacket,
    MQTTError,
    PacketTooLarge,
    ProtocolError,
    TopicFilterInvalid,
    TopicNameInvalid,
    UnsupportedProtocolVersion,
)
from m2mhub.mqtt.packets import Connect, Publish, Subscribe

M, P = MalformedPacket, ProtocolError
TN, TF = TopicNameInvalid, TopicFilterInvalid


def s16(b: bytes) -> str:
    return (len(b).to_bytes(2, "big") + b).hex()


BAD: list[tuple[tuple[int, ...], str, type[MQTTError]]] = [
    # fixed header
    ((3, 4, 5), "30 ff ff ff ff 01", M),  # remaining length over 4 bytes
    ((3, 4, 5), "00 00", M),  # packet type 0
    ((3, 4), "f0 00", M),  # AUTH before 5.0
    ((4, 5), "c1 00", M),  # PINGREQ flags
    ((4, 5), "60 02 0001", M),  # PUBREL without flag 0x2
    ((4, 5), "80 06 0001 0001 61 00", M),  # SUBSCRIBE without flag 0x2
    ((4, 5), "a0 05 0001 0001 61", M),  # UNSUBSCRIBE without flag 0x2
    ((4, 5), "e8 00", M),  # DISCONNECT flags
    # lengths and trailing bytes
    ((3, 4, 5), "c0 01 00", M),  # PINGREQ with a body
    ((3, 4), "40 03 0001 00", M),  # 3.1.1 PUBACK is exactly 2 bytes
    ((3, 4), "e0 01 00", M),
    ((3, 4, 5), "40 01 00", M),  # truncated packet id
    ((3, 4, 5), "32 03 0001 61", M),  # QoS 1 PUBLISH without packet id
    ((3, 4, 5), "30 03 0005 61", M),  # topic length past the end
    ((3, 4), "20 03 00 00 00", M),  # CONNACK trailing byte
    ((4, 5), "20 02 02 00", M),  # CONNACK reserved flag
    # PUBLISH
    ((3, 4, 5), "36 05 0001 61 0001", M),  # QoS 3
    ((3, 4, 5), "32 05 0001 61 0000", P),  # packet id 0
    ((3, 4, 5), "30 05 0003 612f2b", TN),  # wildcard +
    ((3, 4, 5), "30 03 0001 23", TN),  # wildcard #
    ((3, 4), "30 02 0000", TN),  # empty topic
    ((5,), "30 03 0000 00", TN),  # empty topic without alias
    ((3, 4, 5), "30 05 0003 610062", M),  # U+0000
    ((3, 4, 5), "30 05 0003 610162", M),  # control character (mosquitto refuses)
    ((3, 4, 5), "30 05 0003 ffff61", M),  # invalid UTF-8
    ((3, 4, 5), "30 05 0003 eda080", M),  # encoded surrogate U+D800
    ((3, 4, 5), "30 05 0003 c0af61", M),  # overlong encoding of '/'
    ((3, 4, 5), "30 05 0003 efbfbf", M),  # non-character U+FFFF (mosquitto refuses)
    # 5.0 properties
    ((5,), "30 06 0001 61 02 7f 00", M),  # unknown property
    ((5,), "30 07 0001 61 03 11 0000", M),  # truncated / not allowed in PUBLISH
    ((5,), "30 0a 0001 61 06 11 00000001 ", M),  # Session Expiry not allowed in PUBLISH
    ((5,), "30 0e 0001 61 0a 02 00000001 02 00000001", M),  # duplicate property
    ((5,), "30 06 0001 61 02 01 02", P),  # Payload Format Indicator 2
    ((5,), "30 07 0001 61 03 23 0000", P),  # Topic Alias 0
    ((5,), "30 06 0001 61 05 01 00", M),  # property length past the end
    ((5,), "30 08 0001 61 03 0b 8080", M),  # truncated varint
    ((5,), "30 0b 0001 61 06 0b ffffffff7f", M),  # varint over 4 bytes
    ((5,), "40 03 0001 05", P),  # reason code not valid for PUBACK
    ((5,), "e0 01 05", P),  # reason code not valid for DISCONNECT
    ((5,), "82 0b 0001 04 0b01 0b02 0001 61 00", P),  # two Subscription Identifiers
    # SUBSCRIBE / UNSUBSCRIBE / SUBACK
    ((3, 4, 5), "82 06 0000 0001 61 00", P),  # packet id 0
    ((4,), "82 02 0001", P),  # no topic filters
    ((5,), "82 03 0001 00", P),
    ((4,), "a2 02 0001", P),
    ((5,), "a2 03 0001 00", P),
    ((3, 4), "82 06 0001 0001 61 03", M),  # QoS 3
    ((3, 4), "82 06 0001 0001 61 04", M),  # reserved option bits before 5.0
    ((5,), "82 07 0001 00 0001 61 03", M),  # QoS 3
    ((5,), "82 07 0001 00 0001 61 40", M),  # reserved option bits
    ((5,), "82 07 0001 00 0001 61 30", P),  # retain handling 3
    ((3, 4), "82 07 0001 0002 612b 00", TF),  # '+' not a whole level
    ((5,), "82 08 0001 00 0002 612b 00", TF),
    ((3, 4), "82 08 0001 0003 232f61 00", TF),  # '#' not last
    ((3, 4), "82 05 0001 0000 00", TF),  # empty filter
    ((3, 4), "a2 06 0001 0002 6123", TF),
    ((5,), "82 10 0001 00 000a 247368617265 2f672f61 04", P),  # no local on shared
    ((3, 4), "90 03 0001 03", P),  # invalid SUBACK code
    ((3, 4), "90 02 0001", P),  # SUBACK without codes
    ((5,), "90 04 0001 00 03", P),
    # CONNACK 5.0 reason code
    ((5,), "20 03 00 05 00", P),
]

CASES = [
    pytest.param(level, bytes.fromhex(h), exc, id=f"v{level}-{h[:24]}")
    for levels, h, exc in BAD
    for level in levels
]


@pytest.mark.parametrize(("level", "wire", "exc"), CASES)
def test_bad_packet_raises(level: int, wire: bytes, exc: type[MQTTError]) -> None:
    with pytest.raises(exc):
        decode(wire, level)


def connect_hex(name: bytes, level: int, flags: int = 0x02, tail: str = "0001 61") -> bytes:
    return bytes.fromhex(
        "10" + f"{len(name) + 2 + 4 + len(bytes.fromhex(tail)):02x}" + s16(name)
        + f"{level:02x}{flags:02x}003c" + tail
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "level", "connack"),
    [(b"MQTT", 6, b"\x20\x02\x00\x01"), (b"MQTT", 3, b"\x20\x02\x00\x01"),
     (b"MQIsdp", 4, b"\x20\x02\x00\x01"), (b"FOO", 4, None), (b"MQTT", 0x86, b"\x20\x02\x00\x01")],
)  # fmt: skip
def test_unsupported_protocol(name: bytes, level: int, connack: bytes | None) -> None:
    """Answers as mosquitto 2.0.11 does: CONNACK 0x01 for a bad level, silence for a bad name."""
    with pytest.raises(UnsupportedProtocolVersion) as info:
        decode(connect_hex(name, level))
    assert info.value.connack == connack
    assert info.value.protocol_level == level & 0x7F
    assert info.value.protocol_name == name.decode()


@pytest.mark.parametrize(
    ("name", "level", "flags", "tail", "exc"),
    [
        (b"MQTT", 4, 0x03, "0001 61", M),  # reserved bit
        (b"MQTT", 5, 0x03, "00 0001 61", M),
        (b"MQTT", 4, 0x42, "0001 61 0001 70", M),  # password without username
        (b"MQIsdp", 3, 0x42, "0001 61 0001 70", M),
        (b"MQTT", 4, 0x0A, "0001 61", M),  # will QoS without will flag
        (b"MQTT", 4, 0x22, "0001 61", M),  # will retain without will flag
        (b"MQTT", 4, 0x1E, "0001 61 0001 74 0000", M),  # will QoS 3
        (b"MQTT", 4, 0x06, "0001 61 0001 2b 0000", TN),  # wildcard in will topic
        (b"MQTT", 4, 0x02, "0002 6101", M),  # control character in client id
        (b"MQTT", 4, 0x02, "0001 61 ff", M),  # trailing byte
        (b"MQTT", 4, 0x82, "0001 61", M),  # username flag, no username
        (b"MQTT", 5, 0x02, "03 21 0000 0001 61", P),  # Receive Maximum 0
        (b"MQTT", 5, 0x02, "03 23 0001 0001 61", M),  # Topic Alias not allowed in CONNECT
        (b"MQTT", 5, 0x02, "04 16 0001 58 0001 61", P),  # Authentication Data without Method
        (b"MQTT", 5, 0x02, "05 1f 0002 6e6f 0001 61", M),  # Reason String not in CONNECT
    ],
)
def test_bad_connect(name: bytes, level: int, flags: int, tail: str, exc: type[MQTTError]) -> None:
    with pytest.raises(exc):
        decode(connect_hex(name, level, flags, tail))


@pytest.mark.parametrize("wire", ["40 03 0001 95", "50 03 0001 95", "90 04 0001 00 95",
                                  "e0 01 a5", "20 03 00 a0 00"])  # fmt: skip
def test_any_error_reason_code_is_accepted(wire: str) -> None:
    """mosquitto 2.0.11 answers an oversize PUBLISH with PUBACK 0x95, not listed for PUBACK."""
    assert decode(bytes.fromhex(wire), 5) is not None


def test_connect_reserved_bit_ignored_in_3_1() -> None:
    """mosquitto accepts it from 3.1 clients; the 3.1 spec does not define the bit."""
    packet = decode(connect_hex(b"MQIsdp", 3, 0x03))
    assert isinstance(packet, Connect) and packet.clean_start


def test_3_1_password_flag_without_password_is_ignored() -> None:
    packet = decode(connect_hex(b"MQIsdp", 3, 0xC2, "0001 61 0001 75"))
    assert isinstance(packet, Connect)
    assert packet.username == "u" and packet.password is None


def test_3_1_empty_subscribe_accepted_like_mosquitto() -> None:
    assert decode(bytes.fromhex("82 02 0001"), 3) is not None


def test_qos0_dup_accepted_like_mosquitto() -> None:
    assert decode(bytes.fromhex("38 03 0001 61"), 4) == Publish("a", dup=True)


def test_first_packet_must_be_connect() -> None:
    reader = PacketReader()
    reader.feed(b"\xc0\x00")
    with pytest.raises(ProtocolError):
        reader.next_packet()


def test_level_known_even_when_rest_of_connect_is_malformed() -> None:
    reader = PacketReader()
    reader.feed(connect_hex(b"MQTT", 5, 0x03, "00 0001 61"))
    with pytest.raises(MalformedPacket):
        reader.next_packet()
    assert reader.protocol_level == 5


def test_reader_is_poisoned_after_an_error() -> None:
    reader = PacketReader(4)
    reader.feed(b"\x00\x00")
    with pytest.raises(MalformedPacket) as first:
        reader.next_packet()
    with pytest.raises(MalformedPacket) as again:
        reader.next_packet()
    assert again.value is first.value
    with pytest.raises(MalformedPacket):
        reader.feed(b"\xc0\x00")


def test_packet_too_large_before_the_body_arrives() -> None:
    reader = PacketReader(4, max_packet_size=100)
    reader.feed(b"\x30\xe5\x00")  # remaining length 101: the header alone tells
    with pytest.raises(PacketTooLarge):
        reader.next_packet()


def test_packet_at_the_size_limit_is_accepted() -> None:
    wire = encode(Publish("t", b"x" * 95), 4)
    assert len(wire) == 100
    reader = PacketReader(4, max_packet_size=100)
    assert reader.feed_all(wire) == [Publish("t", b"x" * 95)]


def test_incomplete_remaining_length_waits() -> None:
    reader = PacketReader(4)
    assert reader.feed_all(b"\x30\xff\xff") == []
    with pytest.raises(MalformedPacket):
        reader.feed_all(b"\xff\x80")


def test_malformed_shared_filter_is_left_to_the_broker_in_v5() -> None:
    """5.0: a bad ``$share/...`` filter decodes; the broker answers it with SUBACK 0x8F."""
    packet = decode(bytes.fromhex("82 0e 0001 00 0008 247368617265 2f67 00".replace(" ", "")), 5)
    assert isinstance(packet, Subscribe)
    assert [f for f, _ in packet.subscriptions] == ["$share/g"]
