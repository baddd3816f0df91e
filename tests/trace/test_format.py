"""Golden outputs of the packet formatter: every MQTT packet type in 3.1.1 and 5.0, and every
CoAP message kind, decoded from the bytes the codecs produce."""

from __future__ import annotations

import json

import pytest

from m2mhub.coap import options as co
from m2mhub.coap.message import Message
from m2mhub.coap.message import encode as coap_encode
from m2mhub.mqtt.codec import encode
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
from m2mhub.trace.coap_view import CoapFormatError, parse_coap
from m2mhub.trace.format import PacketFormatter, coap_summary, mqtt_summary
from m2mhub.trace.mqtt_stream import MqttConversation


def _clock(when: float) -> str:
    return f"t={when:g}"


def roundtrip(packet: Packet, level: int, from_client: bool) -> tuple[Packet, bytes]:
    """Encode, then decode through the tracer's stream framing (after a CONNECT of ``level``)."""
    conv = MqttConversation()
    if not isinstance(packet, Connect):
        conv.from_client.feed(encode(Connect(protocol_level=level, client_id="x"), level))
    raw = encode(packet, level)
    frames = (conv.from_client if from_client else conv.from_server).feed(raw)
    assert len(frames) == 1 and frames[0].packet is not None, frames[0].error
    assert frames[0].raw == raw
    return frames[0].packet, raw


V311 = [
    (
        Connect(client_id="Sub1", clean_start=False, keepalive=30),
        True,
        "CONNECT (p4, c0, k30, id 'Sub1')",
    ),
    (
        Connect(client_id="c", username="u", password=b"pw", will=Will("w/t", b"gone", 1, True)),
        True,
        "CONNECT (p4, c1, k60, id 'c', u'u', pw 2 bytes, will q1 r1 'w/t' 4 bytes)",
    ),
    (Connack(True, 0), False, "CONNACK (sp1, rc=0 Connection Accepted.)"),
    (Connack(False, 5), False, "CONNACK (sp0, rc=5 Connection Refused: not authorised.)"),
    (
        Publish("test/message", b"MESSAGE 1", 2, False, False, 3),
        True,
        "PUBLISH (d0, q2, r0, m3, 'test/message', 9 bytes)",
    ),
    (Publish("a", b"", 0, True), False, "PUBLISH (d0, q0, r1, m0, 'a', 0 bytes)"),
    (Puback(7), False, "PUBACK (m7)"),
    (Pubrec(8), False, "PUBREC (m8)"),
    (Pubrel(8), True, "PUBREL (m8)"),
    (Pubcomp(8), False, "PUBCOMP (m8)"),
    (
        Subscribe(1, [("a/+", SubscriptionOptions(1)), ("b/#", SubscriptionOptions(2))]),
        True,
        "SUBSCRIBE (m1, 'a/+' q1, 'b/#' q2)",
    ),
    (Suback(1, [1, 0x80]), False, "SUBACK (m1, [1, 0x80])"),
    (Unsubscribe(2, ["a/+", "b"]), True, "UNSUBSCRIBE (m2, 'a/+', 'b')"),
    (Unsuback(2), False, "UNSUBACK (m2)"),
    (Pingreq(), True, "PINGREQ"),
    (Pingresp(), False, "PINGRESP"),
    (Disconnect(), True, "DISCONNECT"),
]

V5 = [
    (
        Connect(protocol_level=5, client_id="c5", properties={0x11: 60, 0x21: 10}),
        True,
        "CONNECT (p5, c1, k60, id 'c5', Session Expiry Interval=60, Receive Maximum=10)",
    ),
    (
        Connack(False, 0, {0x22: 10, 0x12: "auto-1"}),
        False,
        "CONNACK (sp0, rc=0x00 Success, Topic Alias Maximum=10, "
        "Assigned Client Identifier='auto-1')",
    ),
    (Connack(False, 0x87), False, "CONNACK (sp0, rc=0x87 Not authorized)"),
    (
        Publish(
            "t", b"12345", 1, False, True, 9, {0x23: 2, 0x26: [("k", "v")], 0x03: "text/plain"}
        ),
        True,
        "PUBLISH (d1, q1, r0, m9, 't', 5 bytes, Topic Alias=2, User Property=('k', 'v'), "
        "Content Type='text/plain')",
    ),
    (
        Publish("r", b"x", 0, False, False, None, {0x08: "resp", 0x09: b"\x01\x02"}),
        False,
        "PUBLISH (d0, q0, r0, m0, 'r', 1 bytes, Response Topic='resp', Correlation Data=0x0102)",
    ),
    (Puback(7, 0x10), False, "PUBACK (m7, rc=0x10 No matching subscribers)"),
    (Pubrec(8, 0, {0x1F: "ok"}), False, "PUBREC (m8, Reason String='ok')"),
    (Pubrel(8, 0x92), True, "PUBREL (m8, rc=0x92 Packet Identifier not found)"),
    (Pubcomp(8), False, "PUBCOMP (m8)"),
    (
        Subscribe(1, [("a", SubscriptionOptions(1, True, True, 2))], {0x0B: [5]}),
        True,
        "SUBSCRIBE (m1, 'a' q1 nl1 rap1 rh2, Subscription Identifier=5)",
    ),
    (Suback(1, [1, 0x87]), False, "SUBACK (m1, [0x01, 0x87])"),
    (
        Unsubscribe(2, ["a"], {0x26: [("x", "y")]}),
        True,
        "UNSUBSCRIBE (m2, 'a', User Property=('x', 'y'))",
    ),
    (Unsuback(2, [0x00, 0x11]), False, "UNSUBACK (m2, [0x00, 0x11])"),
    (Pingreq(), True, "PINGREQ"),
    (Pingresp(), False, "PINGRESP"),
    (
        Disconnect(0x04, {0x11: 0}),
        True,
        "DISCONNECT (rc=0x04 Disconnect with Will Message, Session Expiry Interval=0)",
    ),
    (
        Auth(0x18, {0x15: "SCRAM", 0x16: b"\xff"}),
        True,
        "AUTH (rc=0x18 Continue authentication, Authentication Method='SCRAM', "
        "Authentication Data=0xff)",
    ),
]


@pytest.mark.parametrize(("packet", "from_client", "expected"), V311)
def test_mqtt_311_summary(packet: Packet, from_client: bool, expected: str) -> None:
    decoded, _ = roundtrip(packet, 4, from_client)
    assert mqtt_summary(decoded, 4) == expected


@pytest.mark.parametrize(("packet", "from_client", "expected"), V5)
def test_mqtt_5_summary(packet: Packet, from_client: bool, expected: str) -> None:
    decoded, _ = roundtrip(packet, 5, from_client)
    assert mqtt_summary(decoded, 5) == expected


def test_every_packet_type_has_a_golden() -> None:
    for table in (V311, V5):
        names = {p.packet_type.name for p, _, _ in table}
        assert len(names) == (14 if table is V311 else 15)


def test_mqtt_line_has_time_connection_and_direction() -> None:
    packet, raw = roundtrip(Publish("test/message", b"MESSAGE 1", 2, packet_id=3), 4, True)
    text = PacketFormatter("line", _clock).mqtt(
        packet, when=1.5, direction="->", conn="c1(Pub1)", level=4, raw=raw
    )
    assert text == "t=1.5 c1(Pub1) -> PUBLISH (d0, q2, r0, m3, 'test/message', 9 bytes)"


def test_mqtt_5_detail_golden() -> None:
    packet, raw = roundtrip(
        Publish("test/message", b"MESSAGE 1", 2, packet_id=3, properties={0x02: 60}), 5, True
    )
    text = PacketFormatter("detail", _clock).mqtt(
        packet, when=2, direction="->", conn="c1", level=5, raw=raw
    )
    assert text.splitlines() == [
        "t=2 c1 -> PUBLISH (d0, q2, r0, m3, 'test/message', 9 bytes, Message Expiry Interval=60)",
        "    protocol: MQTT 5.0",
        "    fixed header: type 3, flags 0x4, remaining length 31, 33 bytes in all",
        "    topic: 'test/message'",
        "    payload (9 bytes): 'MESSAGE 1'",
        "    qos: 2",
        "    retain: 0",
        "    dup: 0",
        "    packet id: 3",
        "    properties:",
        "      Message Expiry Interval (0x02): 60",
        "    0000  34 1f 00 0c 74 65 73 74  2f 6d 65 73 73 61 67 65  4...test/message",
        "    0010  00 03 05 02 00 00 00 3c  4d 45 53 53 41 47 45 20  .......<MESSAGE ",
        "    0020  31                                                1",
    ]


def test_mqtt_311_detail_has_no_v5_fields() -> None:
    packet, raw = roundtrip(Puback(7), 4, False)
    lines = (
        PacketFormatter("detail", _clock)
        .mqtt(packet, when=0, direction="<-", conn="c1", level=4, raw=raw)
        .splitlines()
    )
    assert lines == [
        "t=0 c1 <- PUBACK (m7)",
        "    protocol: MQTT 3.1.1",
        "    fixed header: type 4, flags 0x0, remaining length 2, 4 bytes in all",
        "    packet id: 7",
        "    0000  40 02 00 07                                       @...",
    ]


def test_mqtt_connect_detail_lists_will_and_properties() -> None:
    c = Connect(
        protocol_level=5,
        client_id="c",
        will=Will("w", b"bye", 1, False, {0x18: 5}),
        properties={0x26: [("a", "b"), ("a", "c")]},
    )
    packet, raw = roundtrip(c, 5, True)
    text = PacketFormatter("detail", _clock).mqtt(
        packet, when=0, direction="->", conn="c1", raw=raw
    )
    assert "        Will Delay Interval (0x18): 5" in text.splitlines()
    assert "  User Property (0x26): ('a', 'b'), ('a', 'c')" in text


def test_mqtt_json() -> None:
    packet, raw = roundtrip(
        Subscribe(4, [("a/#", SubscriptionOptions(1, no_local=True))], {0x0B: [3]}), 5, True
    )
    record = json.loads(
        PacketFormatter("json").mqtt(packet, when=3.25, direction="->", conn="c2", level=5, raw=raw)
    )
    assert record == {
        "time": 3.25,
        "direction": "->",
        "conn": "c2",
        "protocol": "mqtt",
        "type": "SUBSCRIBE",
        "level": 5,
        "packet_id": 4,
        "subscriptions": [
            {
                "topic": "a/#",
                "qos": 1,
                "no_local": True,
                "retain_as_published": False,
                "retain_handling": 0,
            }
        ],
        "properties": {"Subscription Identifier": [3]},
        "raw": raw.hex(),
    }


def test_mqtt_malformed_then_raw() -> None:
    conv = MqttConversation()
    conv.from_client.feed(encode(Connect(client_id="x"), 4))
    bad = b"\x82\x05\x00\x01\x00\x00\x00"  # SUBSCRIBE with an empty topic filter
    frames = conv.from_client.feed(bad + b"\xc0\x00")
    assert len(frames) == 1 and frames[0].packet is None and frames[0].error is not None
    assert frames[0].raw == bad + b"\xc0\x00"
    fmt = PacketFormatter("line", _clock)
    text = fmt.malformed(
        frames[0].raw, frames[0].error, when=0, direction="->", conn="c1", protocol="mqtt"
    )
    assert text.startswith("t=0 c1 -> MALFORMED (0x8F Topic Filter invalid: ")
    assert text.endswith(") 9 bytes 82 05 00 01 00 00 00 c0 00")
    later = conv.from_client.feed(b"\xc0\x00")
    assert [(f.packet, f.error, f.raw) for f in later] == [(None, None, b"\xc0\x00")]
    assert fmt.raw(b"\xc0\x00", when=0, direction="->", conn="c1", protocol="mqtt") == (
        "t=0 c1 -> RAW 2 bytes c0 00"
    )


def test_mqtt_split_reads_and_several_packets_per_read() -> None:
    conv = MqttConversation()
    stream = encode(Connect(client_id="x"), 4) + encode(Publish("a", b"x" * 300, 1, packet_id=1), 4)
    stream += encode(Pingreq(), 4)
    frames = [f for b in stream for f in conv.from_client.feed(bytes([b]))]
    assert [f.packet.packet_type.name for f in frames if f.packet] == [
        "CONNECT",
        "PUBLISH",
        "PINGREQ",
    ]
    assert b"".join(f.raw for f in frames) == stream


def _coap(mtype: int, code: int, mid: int, token: bytes, opts: list, payload: bytes = b"") -> str:
    raw = coap_encode(Message(mtype, code, mid, token, opts, payload))
    return coap_summary(parse_coap(raw))


def test_coap_kinds() -> None:
    assert _coap(0, 1, 0x1A2B, b"\x7f", [(co.URI_PATH, "alarm"), (co.OBSERVE, 0)]) == (
        "CON GET mid=0x1a2b token=7f /alarm Observe=0"
    )
    assert _coap(
        1,
        3,
        7,
        b"\x01\x02",
        [(co.URI_PATH, "ps"), (co.URI_PATH, "a"), (co.URI_QUERY, "qos=1"), (co.CONTENT_FORMAT, 0)],
        b"ON",
    ) == (
        "NON PUT mid=0x0007 token=0102 /ps/a?qos=1 Content-Format=text/plain; charset=utf-8 "
        "'ON' (2 bytes)"
    )
    assert _coap(
        2,
        69,
        0x1A2B,
        b"\x7f",
        [(co.OBSERVE, 12), (co.CONTENT_FORMAT, 50), (co.BLOCK2, co.block_value(1, True, 2))],
        b"{}",
    ) == (
        "ACK 2.05 Content mid=0x1a2b token=7f Observe=12 Content-Format=application/json "
        "Block2=1/M/64 '{}' (2 bytes)"
    )
    assert _coap(2, 0, 5, b"", []) == "ACK Empty mid=0x0005"
    assert _coap(3, 0, 6, b"", []) == "RST Empty mid=0x0006"
    assert _coap(1, 132, 9, b"\xaa", [], b"\x00\xff") == (
        "NON 4.04 Not Found mid=0x0009 token=aa 0x00ff (2 bytes)"
    )
    assert _coap(0, 2, 1, b"", [(co.ETAG, b"\x01"), (co.IF_NONE_MATCH, b""), (65001, b"z")]) == (
        "CON POST mid=0x0001 ETag=0x01 If-None-Match Option65001=0x7a"
    )


def test_coap_detail_and_json() -> None:
    raw = coap_encode(Message(0, 1, 0x1A2B, b"\x7f", [(co.URI_PATH, "alarm"), (co.OBSERVE, 0)]))
    fmt = PacketFormatter("detail", _clock)
    assert fmt.coap(
        parse_coap(raw), when=1, direction="->", conn="127.0.0.1:5000", raw=raw
    ).splitlines() == [
        "t=1 127.0.0.1:5000 -> CON GET mid=0x1a2b token=7f /alarm Observe=0",
        "    type: CON",
        "    code: 0.01 GET",
        "    message id: 6699 (0x1a2b)",
        "    token (1 bytes): 7f",
        "    options:",
        "      Observe (6): 0",
        "      Uri-Path (11): 'alarm'",
        "    0000  41 01 1a 2b 7f 60 55 61  6c 61 72 6d              A..+.`Ualarm",
    ]
    record = json.loads(
        PacketFormatter("json").coap(parse_coap(raw), when=1, direction="->", conn="a", raw=raw)
    )
    assert record["type"] == "CON" and record["code"] == "0.01" and record["mid"] == 0x1A2B
    assert record["options"] == [
        {"number": 6, "name": "Observe", "value": 0},
        {"number": 11, "name": "Uri-Path", "value": "alarm"},
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x40\x01", "truncated header (2 bytes)"),
        (b"\x81\x01\x00\x01", "unknown version 2"),
        (b"\x49\x01\x00\x01", "token length 9"),
        (b"\x40\x01\x00\x01\xff", "payload marker with no payload"),
        (b"\x40\x01\x00\x01\xb5ab", "option overruns the datagram"),
        (b"\x40\x01\x00\x01\xf0", "option delta nibble 15"),
    ],
)
def test_coap_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(CoapFormatError) as info:
        parse_coap(data)
    assert str(info.value) == reason
    text = PacketFormatter("line", _clock).malformed(
        data, info.value, when=0, direction="->", conn="a", protocol="coap"
    )
    assert text == f"t=0 a -> MALFORMED ({reason}) {len(data)} bytes {data.hex(' ')}"


def test_mqtt_31_connect() -> None:
    packet, raw = roundtrip(
        Connect(protocol_level=3, client_id="old", protocol_name="MQIsdp"), 3, True
    )
    assert mqtt_summary(packet) == "CONNECT (p3, c1, k60, id 'old')"
    assert raw[4:10] == b"MQIsdp"


def test_unsupported_protocol_level_then_connack() -> None:
    conv = MqttConversation()
    bad_connect = b"\x10\x0c\x00\x04MQTT\x07\x02\x00\x3c\x00\x00"
    [frame] = conv.from_client.feed(bad_connect)
    assert frame.packet is None and frame.error is not None
    text = PacketFormatter("line", _clock).malformed(
        frame.raw, frame.error, when=0, direction="->", conn="c1", protocol="mqtt"
    )
    assert text.startswith("t=0 c1 -> MALFORMED (0x84 Unsupported Protocol Version: ")
    [answer] = conv.from_server.feed(b"\x20\x02\x00\x01")
    assert answer.packet is not None
    assert mqtt_summary(answer.packet, answer.level) == (
        "CONNACK (sp0, rc=1 Connection Refused: unacceptable protocol version.)"
    )


def test_client_id_from_connect_or_assigned_by_the_server() -> None:
    conv = MqttConversation()
    conv.from_client.feed(encode(Connect(protocol_level=5, client_id=""), 5))
    assert conv.client_id is None
    conv.from_server.feed(encode(Connack(False, 0, {0x12: "auto-7"}), 5))
    assert conv.client_id == "auto-7"
