"""Every packet type encodes and decodes back to itself in every protocol version."""

from __future__ import annotations

import pytest

from m2mhub.mqtt.codec import PacketReader, decode, encode
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
from m2mhub.mqtt.properties import PropertyId as P

LEVELS = [3, 4, 5]


def sample_packets(level: int) -> list[Packet]:
    v5 = level == 5
    name = "MQIsdp" if level == 3 else "MQTT"
    props_pub = {P.MESSAGE_EXPIRY_INTERVAL: 30, P.USER_PROPERTY: [("a", "b"), ("a", "c")]}
    packets: list[Packet] = [
        Connect(level, "client-1", True, 60, protocol_name=name),
        Connect(
            level,
            "c2",
            False,
            0,
            Will("will/topic", b"bye", 1, True, {P.WILL_DELAY_INTERVAL: 5} if v5 else {}),
            "user",
            b"pass\x00word",
            {P.SESSION_EXPIRY_INTERVAL: 3600, P.RECEIVE_MAXIMUM: 10} if v5 else {},
            name,
        ),
        Connack(level != 3, 0, {P.ASSIGNED_CLIENT_IDENTIFIER: "auto-1"} if v5 else {}),
        Connack(False, 0x87 if v5 else 5),
        Publish("a/b", b"hello"),
        Publish("a/b", b"x" * 300, 1, True, True, 7, props_pub if v5 else {}),
        Publish("\u00e9t\u00e9/\U0001f600", b"", 2, False, False, 65535),
        Puback(1),
        Pubrec(2, 0x10 if v5 else 0),
        Pubrel(3, 0x92 if v5 else 0, {P.REASON_STRING: "gone"} if v5 else {}),
        Pubcomp(4),
        Subscribe(
            5,
            [
                ("a/+/c", SubscriptionOptions(1)),
                ("#", SubscriptionOptions(2, v5, v5, 2 if v5 else 0)),
            ],
            {P.SUBSCRIPTION_IDENTIFIER: [42]} if v5 else {},
        ),
        Suback(5, [1, 2, 0x80]),
        Unsubscribe(6, ["a/+/c", "#"]),
        Unsuback(6, [0, 0x11] if v5 else []),
        Pingreq(),
        Pingresp(),
        Disconnect(),
    ]
    if v5:
        packets += [
            Disconnect(0x04),
            Disconnect(0x8E, {P.REASON_STRING: "taken over"}),
            Auth(),
            Auth(0x18, {P.AUTHENTICATION_METHOD: "SCRAM", P.AUTHENTICATION_DATA: b"\x01"}),
        ]
    return packets


@pytest.mark.parametrize("level", LEVELS)
def test_round_trip(level: int) -> None:
    for packet in sample_packets(level):
        wire = encode(packet, level)
        assert decode(wire, level) == packet, (packet, wire.hex())


@pytest.mark.parametrize("level", LEVELS)
def test_stream_of_all_packets(level: int) -> None:
    packets = sample_packets(level)
    wire = b"".join(encode(p, level) for p in packets)
    server = PacketReader()  # learns the level from the first CONNECT
    assert server.feed_all(wire) == packets
    assert server.protocol_level == level


@pytest.mark.parametrize("level", LEVELS)
def test_large_publish_spanning_many_reads(level: int) -> None:
    big = Publish("big/payload", bytes(range(256)) * 4096, 1, packet_id=9)
    small = Publish("s", b"2", 1, packet_id=10)
    wire = b"".join(encode(p, level) for p in (Publish("a", b"1"), big, small, Puback(9)))
    reader = PacketReader(level)
    got: list[Packet] = []
    for i in range(0, len(wire), 4096):
        got += reader.feed_all(wire[i : i + 4096])
    assert got == [Publish("a", b"1"), big, small, Puback(9)]
    assert all(type(p.payload) is bytes for p in got if isinstance(p, Publish))


def test_topic_cache_stays_bounded() -> None:
    from m2mhub.mqtt import codec

    reader = PacketReader(4)
    for i in range(codec._TOPIC_CACHE_SIZE + 10):
        reader.feed(encode(Publish(f"t/{i}", b""), 4))
        assert reader.next_packet() == Publish(f"t/{i}", b"")
    long_topic = "x" * 1000
    reader.feed(encode(Publish(long_topic, b""), 4))
    assert reader.next_packet() == Publish(long_topic, b"")
    assert len(codec._topic_cache) <= codec._TOPIC_CACHE_SIZE
    assert long_topic.encode() not in codec._topic_cache


def test_reader_keeps_no_consumed_bytes() -> None:
    reader = PacketReader(4)
    reader.feed(encode(Publish("t", b"x" * 50_000), 4))
    assert reader.next_packet() is not None
    assert reader.buffered == 0
    assert reader._buf == b""
