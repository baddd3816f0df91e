"""MQTT 5 topic aliases (both directions) and the limits a client is told in CONNACK (Receive
Maximum, Maximum Packet Size, Topic Alias Maximum), against mosquitto and m2mhub.

Each expectation holds on mosquitto 2.0.11 first, unless the docstring says where m2mhub
deliberately differs: mosquitto never assigns topic aliases to what it sends, answers a Topic
Alias of 0 with 0x81 rather than 0x94, and answers a client over its Receive Maximum with
PUBREC 0x97 instead of DISCONNECT 0x93 (docs/mqtt5.md).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.interop import raw
from tests.interop.cli import pub, start_sub, until_sentinel
from tests.interop.conftest import Broker, BrokerFactory
from tests.interop.raw import RawClient
from tests.interop.test_bad_input import Bystanders
from tests.interop.test_paho import TIMEOUT, Paho

pytestmark = pytest.mark.interop

V5 = MQTTProtocolVersion.MQTTv5

TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
RECEIVE_MAXIMUM = 0x21
MAXIMUM_PACKET_SIZE = 0x27
SESSION_EXPIRY = 0x11

# Property id -> size in bytes, or "s" (UTF-8 string), "b" (binary), "p" (string pair), "v"
# (varint): enough of MQTT 5 2.2.2.2 to read CONNACK and PUBLISH properties.
_PROPERTY_SIZES: dict[int, int | str] = {
    0x01: 1, 0x02: 4, 0x03: "s", 0x08: "s", 0x09: "b", 0x0B: "v", 0x11: 4, 0x12: "s",
    0x13: 2, 0x15: "s", 0x16: "b", 0x1A: "s", 0x1C: "s", 0x1F: "s", 0x21: 2, 0x22: 2,
    0x23: 2, 0x24: 1, 0x25: 1, 0x26: "p", 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1,
}  # fmt: skip


def parse_properties(data: bytes, pos: int) -> tuple[dict[int, Any], int]:
    """MQTT 5 properties at ``pos``: ({id: value}, position after them)."""
    length, used = raw.read_varint(data, pos)
    pos += used
    end = pos + length
    props: dict[int, Any] = {}
    while pos < end:
        prop = data[pos]
        pos += 1
        kind = _PROPERTY_SIZES[prop]
        value: Any
        if isinstance(kind, int):
            value = int.from_bytes(data[pos : pos + kind], "big")
            pos += kind
        elif kind == "v":
            value, used = raw.read_varint(data, pos)
            pos += used
        else:
            for _ in range(2 if kind == "p" else 1):
                (n,) = struct.unpack_from("!H", data, pos)
                value = data[pos + 2 : pos + 2 + n]
                pos += 2 + n
        props[prop] = value
    return props, end


def connect5(
    client: RawClient, client_id: str, props: dict[int, int], clean: bool = True
) -> raw.Packet:
    """Send a 5.0 CONNECT with 2- and 4-byte integer properties; return the CONNACK."""
    encoded = b""
    for prop, value in props.items():
        size = _PROPERTY_SIZES[prop]
        assert isinstance(size, int)
        encoded += bytes((prop,)) + value.to_bytes(size, "big")
    body = raw.utf8("MQTT") + bytes((5, 2 if clean else 0)) + struct.pack("!H", 60)
    body += raw.varint(len(encoded)) + encoded + raw.utf8(client_id)
    client.send(raw.packet(raw.CONNECT, 0, body))
    return client.expect(raw.CONNACK)


def publish_view(packet: raw.Packet) -> tuple[str, int | None, bytes]:
    """(topic name as sent, Topic Alias or None, payload) of a 5.0 PUBLISH."""
    (tlen,) = struct.unpack_from("!H", packet.body)
    topic = packet.body[2 : 2 + tlen].decode()
    pos = 2 + tlen + (2 if packet.qos else 0)
    props, pos = parse_properties(packet.body, pos)
    return topic, props.get(TOPIC_ALIAS), packet.body[pos:]


def resolve(seen: Iterable[tuple[str, int | None, bytes]]) -> list[tuple[str, bytes]]:
    """What an application makes of incoming aliases (paho-mqtt 2.2.0 leaves that to it)."""
    table: dict[int, str] = {}
    out = []
    for topic, alias, payload in seen:
        if alias is not None:
            if topic:
                table[alias] = topic
            topic = table[alias]
        out.append((topic, payload))
    return out


def paho_view(message: Any) -> tuple[str, int | None, bytes]:
    alias = getattr(message.properties, "TopicAlias", None)
    return message.topic, alias, bytes(message.payload)


def alias_maximum(n: int, **more: int) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.TopicAliasMaximum = n
    for name, value in more.items():
        setattr(props, name, value)
    return props


# ------------------------------------------------------------------ aliases to the client

SEQUENCE = ["al/a", "al/b", "al/a", "al/c", "al/d", "al/a", "al/d"]


def test_paho_gets_aliases_from_m2mhub_only(broker: Broker) -> None:
    """A paho 5.0 client allowing 3 aliases: what it resolves is what was published.

    m2mhub assigns aliases 1..3 to the first three topics and names the fourth in full;
    mosquitto 2.0.11 never assigns aliases to what it sends, so every topic comes in full.
    """
    sub = Paho(broker.port, "sub", protocol=V5, properties=alias_maximum(3))
    pub = Paho(broker.port, "pub", protocol=V5)
    sub.subscribe("al/#", 1)
    for i, topic in enumerate(SEQUENCE):
        pub.publish(topic, b"%d" % i, 1)
    seen = [paho_view(m) for m in sub.until(pub, "al/a")]
    assert resolve(seen) == [(t, b"%d" % i) for i, t in enumerate(SEQUENCE)]
    if broker.kind == "m2mhub":
        assert [(t, a) for t, a, _ in seen] == [
            ("al/a", 1),
            ("al/b", 2),
            ("", 1),
            ("al/c", 3),
            ("al/d", None),
            ("", 1),
            ("al/d", None),
        ]
    else:
        assert [(t, a) for t, a, _ in seen] == [(t, None) for t in SEQUENCE]
    sub.disconnect()
    pub.disconnect()


def test_no_aliases_for_a_client_that_allows_none(broker: Broker) -> None:
    sub = Paho(broker.port, "sub", protocol=V5)
    pub = Paho(broker.port, "pub", protocol=V5)
    sub.subscribe("al/#", 0)
    for topic in SEQUENCE:
        pub.publish(topic, b"x", 0)
    seen = [paho_view(m) for m in sub.until(pub, "al/a")]
    assert [(t, a) for t, a, _ in seen] == [(t, None) for t in SEQUENCE]
    sub.disconnect()
    pub.disconnect()


def test_aliases_start_afresh_after_reconnect(broker: Broker) -> None:
    """Messages queued while the client was away name their topic again on the new
    connection (m2mhub), or always (mosquitto); either way the client resolves them."""
    props = alias_maximum(5, SessionExpiryInterval=60)
    sub = Paho(broker.port, "sub", protocol=V5, properties=props)
    pub = Paho(broker.port, "pub", protocol=V5)
    sub.subscribe("al/#", 1)
    pub.publish("al/q", b"before", 1)
    assert paho_view(sub.next_message())[:2] == (
        ("al/q", 1) if broker.kind == "m2mhub" else ("al/q", None)
    )
    sub.disconnect()
    pub.publish("al/q", b"away-1", 1)
    pub.publish("al/q", b"away-2", 1)
    again = Paho(broker.port, "sub", protocol=V5, properties=props, clean_session=False)
    assert again.session_present
    seen = [paho_view(again.next_message()) for _ in range(2)]
    assert resolve(seen) == [("al/q", b"away-1"), ("al/q", b"away-2")]
    assert seen[0][0] == "al/q"  # the new connection's first PUBLISH names the topic
    again.disconnect()
    pub.disconnect()


# ------------------------------------------------------------------ aliases from the client


def test_client_alias_set_then_used(broker: Broker) -> None:
    with RawClient(broker.port) as sub, RawClient(broker.port, 5) as pub:
        sub.connect("sub")
        sub.subscribe([("ca/#", 0)])
        connect5(pub, "pub", {})
        pub.send(raw.publish("ca/long/topic/name", b"1", level=5, props=b"\x23\x00\x07"))
        pub.send(raw.publish("", b"2", level=5, props=b"\x23\x00\x07"))
        got = [sub.read().publish_fields()[::2] for _ in range(2)]
    assert got == [("ca/long/topic/name", b"1"), ("ca/long/topic/name", b"2")]


@pytest.mark.parametrize(
    ("name", "props", "topic", "code"),
    [
        ("unknown alias", b"\x23\x00\x01", "", 0x82),
        ("alias over the maximum", b"\x23\x00\x0b", "a/b", 0x94),
    ],
)
def test_client_alias_errors(
    broker: Broker, name: str, props: bytes, topic: str, code: int
) -> None:
    others = Bystanders(broker, {})
    with RawClient(broker.port, 5) as offender:
        connack = connect5(offender, "offender", {})
        assert parse_properties(connack.body, 2)[0][TOPIC_ALIAS_MAXIMUM] == 10
        offender.send(raw.publish(topic, b"x", level=5, props=props))
        seen = offender.wait_closed()
    assert [(p.ptype, p.body[:1]) for p in seen] == [(raw.DISCONNECT, bytes((code,)))], name
    others.verify()


def test_client_alias_0_is_topic_alias_invalid(make_broker: BrokerFactory) -> None:
    """MQTT 5 3.3.2.3.4: alias 0 gets DISCONNECT 0x94. mosquitto 2.0.11 sends 0x81
    (Malformed Packet), so this holds for m2mhub only."""
    broker = make_broker(kind="m2mhub")
    with RawClient(broker.port, 5) as offender:
        connect5(offender, "offender", {})
        offender.send(raw.publish("a/b", b"x", level=5, props=b"\x23\x00\x00"))
        seen = offender.wait_closed()
    assert [(p.ptype, p.body[:1]) for p in seen] == [(raw.DISCONNECT, b"\x94")]


# ------------------------------------------------------------------ what CONNACK promises


def test_connack_limits(make_broker: BrokerFactory) -> None:
    broker = make_broker(["max_packet_size 200", "max_inflight_messages 5"])
    with RawClient(broker.port, 5) as c:
        props, _ = parse_properties(connect5(c, "c", {}).body, 2)
    assert (props[TOPIC_ALIAS_MAXIMUM], props[MAXIMUM_PACKET_SIZE], props[RECEIVE_MAXIMUM]) == (
        10,
        200,
        5,
    )


def test_connack_defaults(broker: Broker) -> None:
    with RawClient(broker.port, 5) as c:
        props, _ = parse_properties(connect5(c, "c", {}).body, 2)
    assert props[RECEIVE_MAXIMUM] == 20
    assert MAXIMUM_PACKET_SIZE not in props


# ------------------------------------------------------------------ our Maximum Packet Size


@pytest.mark.parametrize("level", [4, 5], ids=["3.1.1", "5.0"])
def test_packet_over_max_packet_size(make_broker: BrokerFactory, level: int) -> None:
    broker = make_broker(["max_packet_size 100"])
    others = Bystanders(broker, {})
    with RawClient(broker.port, level) as sub, RawClient(broker.port, level) as big:
        if level == 5:
            connect5(sub, "sub", {})
            connect5(big, "big", {})
        else:
            sub.connect("sub")
            big.connect("big")
        sub.subscribe([("mp/#", 0)])
        mark = broker.mark()
        big.send(raw.publish("mp/t", b"x" * 60, level=level))  # fits: 69 bytes
        assert sub.read().publish_fields(level)[2] == b"x" * 60
        big.send(raw.publish("mp/t", b"y" * 120, level=level))
        seen = big.wait_closed()
        assert [(p.ptype, p.body[:1]) for p in seen] == (
            [(raw.DISCONNECT, b"\x95")] if level == 5 else []
        )
    others.verify()
    broker.wait_log("Client big disconnected due to oversize packet", start=mark)


def test_oversize_packet_refused_before_its_body_arrives(make_broker: BrokerFactory) -> None:
    """Only the fixed header of a 1 MB PUBLISH is sent: both brokers answer at once."""
    broker = make_broker(["max_packet_size 1000"])
    with RawClient(broker.port, 5) as big:
        connect5(big, "big", {})
        big.send(b"\x30\x80\x80\x40")
        seen = big.wait_closed(timeout=TIMEOUT)
    assert [(p.ptype, p.body[:1]) for p in seen] == [(raw.DISCONNECT, b"\x95")]


# ------------------------------------------------------------------ the client's limit


def test_never_more_than_the_clients_maximum_packet_size(broker: Broker) -> None:
    """Live, retained and queued PUBLISHes over the subscriber's limit are dropped; both
    brokers log the same notice (naming the packet's remaining length)."""
    with RawClient(broker.port) as pub:
        pub.connect("pub")
        pub.send(raw.publish("mx/retained", b"R" * 60, retain=True))
        with RawClient(broker.port, 5) as sub:
            connect5(sub, "sub", {MAXIMUM_PACKET_SIZE: 50, SESSION_EXPIRY: 60})
            mark = broker.mark()
            sub.subscribe([("mx/#", 1)])
            pub.send(raw.publish("mx/live", b"L" * 60, qos=1, pid=1))
            pub.expect(raw.PUBACK)
            pub.send(raw.publish("mx/live", b"small", qos=1, pid=2))
            pub.expect(raw.PUBACK)
            got = sub.read()
            assert publish_view(got)[::2] == ("mx/live", b"small")
            sub.send(raw.ack(raw.PUBACK, _pid(got)))
        pub.send(raw.publish("mx/queued", b"Q" * 60, qos=1, pid=3))
        pub.expect(raw.PUBACK)
        pub.send(raw.publish("mx/queued", b"end", qos=1, pid=4))
        pub.expect(raw.PUBACK)
        with RawClient(broker.port, 5) as sub:
            connect5(sub, "sub", {MAXIMUM_PACKET_SIZE: 50, SESSION_EXPIRY: 60}, clean=False)
            assert publish_view(sub.read())[::2] == ("mx/queued", b"end")
    broker.barrier()
    dropped = [line for line in broker.lines_since(mark) if line.startswith("Dropping")]
    # Remaining lengths: retained at QoS 0 (11-byte topic), live and queued at QoS 1.
    assert dropped == [
        f"Dropping too large outgoing PUBLISH for sub ({size} bytes)" for size in (74, 72, 74)
    ]


def _pid(packet: raw.Packet) -> int:
    (tlen,) = struct.unpack_from("!H", packet.body)
    return int(struct.unpack_from("!H", packet.body, 2 + tlen)[0])


# ------------------------------------------------------------------ our Receive Maximum


def test_one_qos2_publish_over_receive_maximum_is_0x93(make_broker: BrokerFactory) -> None:
    """MQTT 5 3.3.4: DISCONNECT 0x93. mosquitto 2.0.11 instead answers the PUBLISH over the
    limit with PUBREC 0x97 (Quota exceeded) and stays connected, so m2mhub only."""
    broker = make_broker(["max_inflight_messages 3"], kind="m2mhub")
    others = Bystanders(broker, {})
    with RawClient(broker.port, 5) as pub:
        connect5(pub, "pub", {})
        for pid in (1, 2, 3):
            pub.send(raw.publish("rm/t", b"x", qos=2, pid=pid, level=5))
            assert pub.expect(raw.PUBREC).pid() == pid
        pub.send(raw.ack(raw.PUBREL, 1))  # one flow ends: room for one more
        pub.expect(raw.PUBCOMP)
        pub.send(raw.publish("rm/t", b"x", qos=2, pid=4, level=5))
        assert pub.expect(raw.PUBREC).pid() == 4
        pub.send(raw.publish("rm/t", b"x", qos=2, pid=5, level=5))
        seen = pub.wait_closed()
    assert [(p.ptype, p.body[:1]) for p in seen] == [(raw.DISCONNECT, b"\x93")]
    others.verify()


@pytest.mark.parametrize("version", ["5", "311"])
def test_mosquitto_pub_and_our_max_packet_size(make_broker: BrokerFactory, version: str) -> None:
    """``mosquitto_pub -V 5`` reads Maximum Packet Size from CONNACK and does not send a larger
    PUBLISH at all; a 3.1.1 one cannot know and is disconnected. Same on both brokers."""
    broker = make_broker(["max_packet_size 200"])
    sub = start_sub(broker.port, "-t", "mpp/#", "-q", "1")
    try:
        mark = broker.mark()
        pub(broker.port, "-V", version, "-i", "big", "-t", "mpp/t", "-m", "x" * 300)
        pub(broker.port, "-V", version, "-i", "small", "-t", "mpp/t", "-m", "fits")
        assert [m.payload for m in until_sentinel(broker.port, sub, "mpp/t")] == ["fits"]
    finally:
        sub.stop()
    if version == "5":
        broker.wait_log("Client big disconnected.", start=mark)
        assert not any("Received PUBLISH from big" in line for line in broker.lines_since(mark))
    else:
        broker.wait_log("Client big disconnected due to oversize packet", start=mark)


def test_mosquitto_sub_maximum_packet_size(broker: Broker) -> None:
    """``mosquitto_sub -V 5 -D connect maximum-packet-size 60``: larger PUBLISHes never reach
    it, smaller ones do, and the broker logs the same notice."""
    sub = start_sub(
        broker.port, "-V", "5", "-i", "small-sub", "-D", "connect", "maximum-packet-size", "60",
        "-t", "mps/#", "-q", "1",
    )  # fmt: skip
    try:
        mark = broker.mark()
        pub(broker.port, "-t", "mps/t", "-m", "x" * 80, "-q", "1")
        pub(broker.port, "-t", "mps/t", "-m", "fits", "-q", "1")
        assert [m.payload for m in until_sentinel(broker.port, sub, "mps/t")] == ["fits"]
    finally:
        sub.stop()
    broker.wait_log("Dropping too large outgoing PUBLISH for small-sub (90 bytes)", start=mark)
