"""MQTT 5.0 acceptance checks that no other interop file makes, on mosquitto and m2mhub alike.

Each is a user-visible promise of the MQTT 5.0 work that was true on both brokers but had no
test of its own: the ``-v`` lines of a whole 5.0 flow, UNSUBACK reason codes, the client's
Receive Maximum respected by the broker, request/response driven by ``mosquitto_rr``, a 3.1.1
subscriber getting the very same bytes from both brokers while 5.0 clients use 5.0 features,
and the answer to a PUBREL for a packet identifier the broker does not know.
"""

from __future__ import annotations

import struct
import subprocess
import uuid
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.interop import raw
from tests.interop.cli import pub, start_sub
from tests.interop.conftest import Broker, start_broker
from tests.interop.raw import RawClient
from tests.interop.test_log_lines import after_startup, by_client
from tests.interop.test_mqtt5_properties import TIMEOUT, Client5
from tests.support import M2MHUB, Proc, require

pytestmark = pytest.mark.interop

SESSION_EXPIRY = 0x11
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23


def prop_bytes(*pairs: tuple[int, bytes]) -> bytes:
    """MQTT 5 properties (id, encoded value), as ``raw.publish`` takes them (no length)."""
    return b"".join(bytes([pid]) + value for pid, value in pairs)


def props(*pairs: tuple[int, bytes]) -> bytes:
    """MQTT 5 properties (id, encoded value), their length prefixed."""
    body = prop_bytes(*pairs)
    return raw.varint(len(body)) + body


def connect5(client_id: str, *pairs: tuple[int, bytes], clean: bool = True) -> bytes:
    """A 5.0 CONNECT (keepalive 60, no will) with the given CONNECT properties."""
    body = raw.utf8(b"MQTT") + bytes([5, 0x02 if clean else 0]) + struct.pack("!H", 60)
    return raw.packet(raw.CONNECT, 0, body + props(*pairs) + raw.utf8(client_id))


def connected5(port: int, client_id: str, *pairs: tuple[int, bytes]) -> RawClient:
    c = RawClient(port, level=5)
    c.send(connect5(client_id, *pairs))
    assert c.expect(raw.CONNACK).body[1] == 0
    return c


def ping(c: RawClient, answer_pubrel: bool = False) -> list[raw.Packet]:
    """Every packet the broker sent ``c`` before answering a PINGREQ sent now.

    The broker handles a connection's packets in order and writes to it in order, so whatever
    it had sent before it read the PINGREQ arrives before the PINGRESP: a barrier, not a wait.
    With ``answer_pubrel``, PUBRELs (of QoS 2 flows already received) get their PUBCOMP and
    are left out.
    """
    c.send(raw.PINGREQ_BYTES)
    seen = []
    while (pkt := c.read(TIMEOUT)).ptype != raw.PINGRESP:
        if answer_pubrel and pkt.ptype == raw.PUBREL:
            c.send(raw.ack(raw.PUBCOMP, pkt.pid()))
            continue
        seen.append(pkt)
    return seen


# ------------------------------------------------------------------ -v lines of a 5.0 flow


def v5_flow(broker: Broker) -> dict[str, list[str]]:
    """A 5.0 subscriber (session expiry, Subscription Identifier, user property, will) gets a
    retained QoS 2 message with properties, a QoS 1 request-style message and a QoS 0 message
    sent through a client topic alias; it comes back to unsubscribe and ends its session with
    DISCONNECT carrying Session Expiry 0. Every step waits for the previous one's last line.
    """
    port = broker.port
    sub = start_sub(
        port,
        *("-V", "5", "-i", "Sub5", "-c", "-x", "60", "-q", "2", "-t", "f/#", "-C", "3"),
        *("-D", "subscribe", "subscription-identifier", "7"),
        *("-D", "connect", "user-property", "app", "acceptance"),
        *("--will-topic", "f/will", "--will-payload", "gone", "--will-qos", "1"),
        *("-D", "will", "will-delay-interval", "30"),
    )
    try:
        pub(
            port,
            *("-V", "5", "-i", "Pub5a", "-t", "f/a", "-m", "hello", "-q", "2", "-r"),
            *("-D", "publish", "message-expiry-interval", "300"),
            *("-D", "publish", "user-property", "k", "v"),
            *("-D", "publish", "content-type", "text/plain"),
        )
        sub.wait_for_line("|hello")
        broker.wait_log("Received PUBCOMP from Sub5")
        broker.wait_log("Client Pub5a disconnected.")
        pub(
            port,
            *("-V", "5", "-i", "Pub5b", "-t", "f/b", "-m", "question", "-q", "1"),
            *("-D", "publish", "response-topic", "f/answers"),
            *("-D", "publish", "correlation-data", "c0ffee"),
            *("-D", "publish", "payload-format-indicator", "1"),
        )
        sub.wait_for_line("|question")
        broker.wait_log("Received PUBACK from Sub5")
        broker.wait_log("Client Pub5b disconnected.")
        pub(
            port,
            *("-V", "5", "-i", "Pub5c", "-t", "f/c", "-m", "zero", "-q", "0"),
            *("-D", "publish", "topic-alias", "1"),
        )
        assert sub.wait(10) == 0  # -C 3: leaves with DISCONNECT after the third message
        broker.wait_log("Client Sub5 disconnected.")
        broker.wait_log("Client Pub5c disconnected.")
    finally:
        sub.stop()
    mark = broker.mark()
    with RawClient(port, level=5) as again:
        again.send(connect5("Sub5", (SESSION_EXPIRY, struct.pack("!I", 60)), clean=False))
        assert again.expect(raw.CONNACK).body[0] & 1  # session present
        again.send(raw.unsubscribe(9, ["f/#"], level=5))
        again.expect(raw.UNSUBACK)
        again.send(raw.packet(raw.DISCONNECT, 0, b"\x00" + props((SESSION_EXPIRY, bytes(4)))))
        again.wait_closed()
    broker.wait_log("Client Sub5 disconnected.", start=mark)
    pub(port, "-V", "5", "-i", "Pub5d", "-t", "f/a", "-n", "-r")
    broker.barrier()
    return by_client(after_startup(broker), ["Sub5", "Pub5a", "Pub5b", "Pub5c", "Pub5d", "BARRIER"])


def test_v5_flow_log_lines_match_mosquitto(tmp_path: Path) -> None:
    results = {}
    for kind in ("mosquitto", "m2mhub"):
        with start_broker(kind, tmp_path) as broker:
            results[kind] = v5_flow(broker)
    theirs = results["mosquitto"]
    # The flow did what it says on mosquitto (so the comparison compares something).
    assert "New client connected from 127.0.0.1:PORT as Sub5 (p5, c0, k60)." in theirs["Sub5"]
    assert "Received PUBLISH from Pub5c (d0, q0, r0, m0, 'f/c', ... (4 bytes))" in theirs["Pub5c"]
    assert "Sending PUBLISH to Sub5 (d0, q2, r0, m1, 'f/a', ... (5 bytes))" in theirs["Sub5"]
    assert "Received UNSUBSCRIBE from Sub5" in theirs["Sub5"]
    assert "Will message specified (4 bytes) (r0, q1)." in theirs[""]
    for client, lines in theirs.items():
        assert results["m2mhub"][client] == lines, f"lines of {client or 'no client'} differ"


# ------------------------------------------------------------------ acknowledgements


def test_unsuback_reason_codes(broker: Broker) -> None:
    """5.0 UNSUBACK: 0x00 for a filter that was subscribed, 0x11 (No subscription existed) for
    one that was not; 3.1.1 UNSUBACK has no codes at all. Both brokers alike."""
    with connected5(broker.port, "unsub5") as c:
        c.send(raw.subscribe(1, [("u/a", 1)], level=5))
        assert c.expect(raw.SUBACK).body == b"\x00\x01\x00\x01"
        c.send(raw.unsubscribe(2, ["u/a", "u/never"], level=5))
        # packet id 2, no properties, one code per filter in order
        assert c.expect(raw.UNSUBACK).body == b"\x00\x02\x00\x00\x11"
        c.send(raw.unsubscribe(3, ["u/a"], level=5))
        assert c.expect(raw.UNSUBACK).body == b"\x00\x03\x00\x11"  # gone now
    with RawClient(broker.port) as c311:
        c311.connect("unsub311")
        c311.subscribe([("u/a", 1)])
        c311.send(raw.unsubscribe(2, ["u/a", "u/never"]))
        assert c311.expect(raw.UNSUBACK).body == b"\x00\x02"


def test_pubrel_for_an_unknown_packet_id(broker: Broker) -> None:
    """A PUBREL for a packet identifier with no QoS 2 flow gets PUBCOMP; in 5.0 m2mhub says
    0x92 Packet Identifier not found (MQTT 5.0 3.7.2.1, 4.3.3), mosquitto 2.0.11 says Success
    (deliberate difference; the spec's code tells a client its session state was lost)."""
    with connected5(broker.port, "pubrel5") as c:
        c.send(raw.ack(raw.PUBREL, 77))
        got = c.expect(raw.PUBCOMP).body
        assert got == (b"\x00\x4d" if broker.kind == "mosquitto" else b"\x00\x4d\x92")
        assert ping(c) == []  # the connection carries on
    with RawClient(broker.port) as c311:
        c311.connect("pubrel311")
        c311.send(raw.ack(raw.PUBREL, 77))
        assert c311.expect(raw.PUBCOMP).body == b"\x00\x4d"


# ------------------------------------------------------------------ the client's Receive Maximum


def test_never_more_in_flight_than_the_clients_receive_maximum(broker: Broker) -> None:
    """A 5.0 subscriber with Receive Maximum 2 has at most two unacknowledged QoS 1 PUBLISHes
    from the broker; each PUBACK lets exactly one more through, in order (MQTT 5.0 4.9,
    MQTT-3.3.4-9). Both brokers hold back all but two at first; after that mosquitto 2.0.11
    lets two through per PUBACK, three in flight (it breaks the limit; m2mhub does not)."""
    port = broker.port
    with connected5(port, "rm-sub", (RECEIVE_MAXIMUM, struct.pack("!H", 2))) as sub:
        sub.send(raw.subscribe(1, [("rm/#", 1)], level=5))
        sub.expect(raw.SUBACK)
        with RawClient(port) as publisher:
            publisher.connect("rm-pub")
            for n in range(1, 6):
                publisher.send(raw.publish("rm/t", b"m%d" % n, qos=1, pid=n))
                assert publisher.expect(raw.PUBACK).pid() == n
        # Every PUBLISH has been routed; what the subscriber may have is in front of a PINGRESP.
        first = ping(sub)
        assert [p.publish_fields(5)[2] for p in first] == [b"m1", b"m2"]
        pids = [p.publish_fields(5)[1] for p in first]
        got = [b"m1", b"m2"]
        while len(got) < 5:
            sub.send(raw.ack(raw.PUBACK, pids.pop(0)))
            more = ping(sub)
            per_puback = 1 if broker.kind == "m2mhub" else 2
            assert len(more) == min(per_puback, 5 - len(got)), f"one PUBACK let {more} through"
            for pkt in more:
                _, pid, payload = pkt.publish_fields(5)
                got.append(payload)
                pids.append(pid)
        assert got == [b"m1", b"m2", b"m3", b"m4", b"m5"]
        for pid in pids:
            sub.send(raw.ack(raw.PUBACK, pid))
            assert ping(sub) == []


# ------------------------------------------------------------------ request/response


@pytest.mark.parametrize("correlation", [True, False])
def test_request_response_with_mosquitto_rr(broker: Broker, correlation: bool) -> None:
    """mosquitto_rr -V 5 sends a request with its Response Topic (and Correlation Data when
    given); a paho 5.0 responder answers on that topic with that data; mosquitto_rr prints
    the answer. The whole round trip through each broker."""
    responder = Client5(broker.port, f"responder-{uuid.uuid4().hex[:6]}")
    try:
        responder.subscribe("svc/time", 1)
        rr_args = [require("mosquitto_rr"), "-V", "5", "-p", str(broker.port)]
        rr_args += ["-t", "svc/time", "-e", "svc/replies/rr1", "-m", "what time?", "-W", "10"]
        if correlation:
            rr_args += ["-D", "publish", "correlation-data", "req-42"]
        with subprocess.Popen(rr_args, stdout=subprocess.PIPE, text=True) as rr:
            request = responder.messages.get(timeout=TIMEOUT)
            assert (request.topic, request.payload) == ("svc/time", b"what time?")
            assert request.properties.ResponseTopic == "svc/replies/rr1"
            if correlation:
                assert request.properties.CorrelationData == b"req-42"
            else:
                assert not hasattr(request.properties, "CorrelationData")
            answer = Properties(PacketTypes.PUBLISH)
            if correlation:
                answer.CorrelationData = request.properties.CorrelationData
            responder.publish(request.properties.ResponseTopic, b"noon", 1, properties=answer)
            out, _ = rr.communicate(timeout=TIMEOUT)
        assert (rr.returncode, out) == (0, "noon\n")
    finally:
        responder.client.disconnect()
        responder.client.loop_stop()


# ------------------------------------------------------------------ 3.1.1 sees no 5.0 side effects


def mixed_flow(broker: Broker) -> list[raw.Packet]:
    """What a raw 3.1.1 subscriber receives while 5.0 clients use properties, client and
    server topic aliases, Subscription Identifiers and Receive Maximum on the same topics."""
    port = broker.port
    with (
        connected5(
            port,
            "neighbour5",
            (TOPIC_ALIAS_MAXIMUM, struct.pack("!H", 5)),
            (RECEIVE_MAXIMUM, struct.pack("!H", 1)),
        ) as neighbour,
        RawClient(port) as old,
    ):
        sub_props = props((0x0B, raw.varint(3)))
        body = struct.pack("!H", 1) + sub_props + raw.utf8("x/#") + b"\x01"
        neighbour.send(raw.packet(raw.SUBSCRIBE, 2, body))
        neighbour.expect(raw.SUBACK)
        old.connect("old311")
        old.subscribe([("x/#", 2)])
        with connected5(port, "pub5", (TOPIC_ALIAS_MAXIMUM, struct.pack("!H", 5))) as p:
            everything = prop_bytes(
                (0x01, b"\x01"),  # Payload Format Indicator
                (0x02, struct.pack("!I", 300)),  # Message Expiry Interval
                (0x03, raw.utf8("text/plain")),  # Content Type
                (0x08, raw.utf8("x/reply")),  # Response Topic
                (0x09, raw.utf8(b"\x00id")),  # Correlation Data
                (0x26, raw.utf8("k") + raw.utf8("v")),  # User Property
                (TOPIC_ALIAS, b"\x00\x01"),
            )
            p.send(
                raw.publish("x/a", b"props", qos=2, retain=True, pid=1, level=5, props=everything)
            )
            assert p.expect(raw.PUBREC).body[:2] == b"\x00\x01"
            p.send(raw.ack(raw.PUBREL, 1))
            p.expect(raw.PUBCOMP)
            alias_only = prop_bytes((TOPIC_ALIAS, b"\x00\x01"))
            p.send(raw.publish("", b"by alias", qos=1, pid=2, level=5, props=alias_only))
            p.expect(raw.PUBACK)
            p.send(raw.publish("x/b", b"plain", qos=0, level=5, props=b""))
            assert ping(p) == []
        got = old.collect_until(b"plain")
        assert ping(old, answer_pubrel=True) == []
        old.send(raw.subscribe(2, [("x/a", 1)]))  # the retained message again
        assert old.expect(raw.SUBACK).body == b"\x00\x02\x01"
        got.append(old.read())
        old.send(raw.ack(raw.PUBACK, got[-1].publish_fields()[1]))
        assert ping(old) == []
    return got


def test_311_subscriber_gets_the_same_bytes_from_both_brokers(tmp_path: Path) -> None:
    """A 3.1.1 subscriber sees plain 3.1.1 PUBLISHes, byte for byte what mosquitto sends it,
    whatever 5.0 features its 5.0 neighbours use (no properties, no aliases: the topic is
    always named, the retained flag and QoS as in 3.1.1)."""
    results = {}
    for kind in ("mosquitto", "m2mhub"):
        with start_broker(kind, tmp_path) as broker:
            results[kind] = [(p.ptype, p.flags, p.body) for p in mixed_flow(broker)]
    theirs = results["mosquitto"]
    # On mosquitto: topic named every time, no property bytes after the packet id.
    assert theirs == [
        (raw.PUBLISH, 0x04, b"\x00\x03x/a\x00\x01props"),
        (raw.PUBLISH, 0x02, b"\x00\x03x/a\x00\x02by alias"),
        (raw.PUBLISH, 0x00, b"\x00\x03x/bplain"),
        (raw.PUBLISH, 0x03, b"\x00\x03x/a\x00\x03props"),
    ]
    assert results["m2mhub"] == theirs


# ------------------------------------------------------------------ shared subscriptions


def test_a_shared_member_leaving_mid_flight_hands_its_messages_on(broker: Broker) -> None:
    """Two members of ``$share/g/...`` get the messages round robin; when one leaves (session
    ending) with QoS 1 messages unacknowledged, m2mhub sends them to the other member, so the
    group still gets every message (issue 3). mosquitto 2.0.11 drops them with the session."""
    port = broker.port
    with connected5(port, "share-a") as a, connected5(port, "share-b") as b:
        for member in (a, b):
            member.send(raw.subscribe(1, [("$share/g/sh/#", 1)], level=5))
            assert member.expect(raw.SUBACK).body == b"\x00\x01\x00\x01"
        with RawClient(port) as publisher:
            publisher.connect("share-pub")
            for n in range(1, 5):
                publisher.send(raw.publish("sh/t", b"m%d" % n, qos=1, pid=n))
                publisher.expect(raw.PUBACK)
        got_a = [p.publish_fields(5)[2] for p in ping(a)]
        got_b = [p.publish_fields(5)[2] for p in ping(b)]
        assert (got_a, got_b) == ([b"m1", b"m3"], [b"m2", b"m4"])
        a.send(raw.packet(raw.DISCONNECT, 0, b""))  # session expiry 0: a's session ends
        a.wait_closed()
        moved = [p.publish_fields(5)[2] for p in ping(b)]
        assert moved == ([] if broker.kind == "mosquitto" else [b"m1", b"m3"])


# ------------------------------------------------------------------ our sub -V 5: will delay


def watch_will(port: int, topic: str) -> Client5:
    watcher = Client5(port, f"will-watch-{uuid.uuid4().hex[:6]}")
    watcher.subscribe(topic, 1)
    return watcher


COME_BACK = ["-x", "0", "-t", "wd/x", "-E"]  # subscribe, DISCONNECT (session ends), exit


@pytest.mark.parametrize("come_back", [False, True])
def test_our_sub_will_delay_and_will_properties(broker: Broker, come_back: bool) -> None:
    """``m2mhub sub -V 5`` with ``-D will will-delay-interval 60``, will properties and ``-x 1``
    dies without DISCONNECT. Left alone, its session ends after 1 s, before the delay, and the
    will is published then with its properties (MQTT 5.0 3.1.2.5). Coming back in time (here
    with ``-x 0 -E``: subscribe, DISCONNECT) cancels the will, so it is never published.
    Both brokers alike."""
    port = broker.port
    client_id = f"wd-{uuid.uuid4().hex[:6]}"
    topic = f"wd/{client_id}"
    watcher = watch_will(port, topic)
    try:
        sub = Proc(
            [
                *M2MHUB,
                *("sub", "-V", "5", "-p", str(port), "-i", client_id, "-x", "1", "-t", "wd/x"),
                *("--will-topic", topic, "--will-payload", "gone", "--will-qos", "1"),
                *("-D", "will", "will-delay-interval", "60"),
                *("-D", "will", "user-property", "why", "crash"),
                *("-D", "will", "content-type", "text/plain"),
                "-d",
            ]
        )
        try:
            sub.wait_for_line("Subscribed (mid: 1)")
        finally:
            sub.popen.kill()  # no DISCONNECT
            sub.wait(10)
        if come_back:
            again = subprocess.run(
                [*M2MHUB, "sub", "-V", "5", "-p", str(port), "-i", client_id, *COME_BACK],
                capture_output=True,
                timeout=20,
            )
            assert again.returncode == 0
            sentinel = f"sentinel-{uuid.uuid4().hex[:6]}".encode()
            pub(port, "-t", topic, "-m", sentinel.decode(), "-q", "1")
            first = watcher.messages.get(timeout=TIMEOUT)
            assert first.payload == sentinel  # the will, if any, would have come first
        else:
            will = watcher.messages.get(timeout=TIMEOUT)
            assert (will.topic, will.payload) == (topic, b"gone")
            assert will.properties.UserProperty == [("why", "crash")]
            assert will.properties.ContentType == "text/plain"
            assert not hasattr(will.properties, "WillDelayInterval")
    finally:
        watcher.client.disconnect()
        watcher.client.loop_stop()


# ------------------------------------------------------------------ SUBSCRIBE protocol errors


def subscribe5(filter_: str, options: int, properties: bytes = b"\x00") -> bytes:
    return raw.packet(
        raw.SUBSCRIBE, 2, b"\x00\x01" + properties + raw.utf8(filter_) + bytes([options])
    )


# (case, SUBSCRIBE, m2mhub's DISCONNECT, its log reason, mosquitto's answer: DISCONNECT code or
# None for a SUBACK granting it)
SUBSCRIBE_ERRORS = [
    (
        "reserved option bits",
        subscribe5("a", 0xC0),
        0x81,
        "malformed packet (SUBSCRIBE options reserved bits set)",
        0x81,
    ),
    (
        "retain handling 3",
        subscribe5("a", 0x30),
        0x82,
        "protocol error (SUBSCRIBE with retain handling 3)",
        0x81,
    ),
    (
        "subscription identifier 0",
        subscribe5("a", 0x00, props((0x0B, b"\x00"))),
        0x82,
        "protocol error (Subscription Identifier must not be 0)",
        0x81,
    ),
    (
        "no local on a shared subscription",
        subscribe5("$share/g/a", 0x04),
        0x82,
        "protocol error (No Local set on a shared subscription)",
        None,
    ),
]


@pytest.mark.parametrize(
    ("packet", "ours", "reason", "theirs"),
    [case[1:] for case in SUBSCRIBE_ERRORS],
    ids=[case[0] for case in SUBSCRIBE_ERRORS],
)
def test_subscribe_protocol_errors(
    broker: Broker, packet: bytes, ours: int, reason: str, theirs: int | None
) -> None:
    """MQTT 5.0 3.8.3.1 makes reserved option bits a Malformed Packet, and Retain Handling 3,
    a Subscription Identifier of 0 and No Local on a shared subscription Protocol Errors
    (MQTT-3.8.3-4, 3.8.2.1.2): m2mhub sends those codes, logs one line naming the client and
    what was wrong, and a bystander carries on. mosquitto 2.0.11 answers 0x81 to all three
    protocol errors and grants No Local on a shared subscription (checked here too)."""
    client_id = f"suberr-{uuid.uuid4().hex[:6]}"
    with connected5(broker.port, "bystander") as bystander:
        mark = broker.mark()
        with connected5(broker.port, client_id) as c:
            c.send(packet)
            if broker.kind == "mosquitto" and theirs is None:
                assert c.expect(raw.SUBACK).body == b"\x00\x01\x00\x00"
                return
            answer = c.wait_closed()
        expected = ours if broker.kind == "m2mhub" else theirs
        assert [p.body[0] for p in answer if p.ptype == raw.DISCONNECT] == [expected]
        if broker.kind == "m2mhub":
            line = f"Client {client_id} disconnected due to {reason}."
            broker.wait_log(line, start=mark)
            about = [x for x in broker.lines_since(mark) if client_id in x]
            assert about[2:] == [line]  # after "New client connected" and "Sending CONNACK"
        assert ping(bystander) == []


# ------------------------------------------------------------------ CONNECT property errors

# (case, CONNECT properties, m2mhub's CONNACK code, what its log line says was wrong)
CONNECT_ERRORS = [
    ("receive maximum 0", [(RECEIVE_MAXIMUM, b"\x00\x00")], 0x82, "Receive Maximum must not be 0"),
    ("maximum packet size 0", [(0x27, bytes(4))], 0x82, "Maximum Packet Size must not be 0"),
    (
        "request response information 2",
        [(0x19, b"\x02")],
        0x82,
        "invalid Request Response Information value 2",
    ),
    (
        "request problem information 2",
        [(0x17, b"\x02")],
        0x82,
        "invalid Request Problem Information value 2",
    ),
    (
        "session expiry twice",
        [(SESSION_EXPIRY, bytes(4)), (SESSION_EXPIRY, bytes(4))],
        0x81,
        "Session Expiry Interval included more than once",
    ),
]


def unknown_lines(broker: Broker, mark: int) -> list[str]:
    """Log lines since ``mark`` about a client that never connected (start-up probe left out)."""
    probe = "Client <unknown> closed its connection."
    return [x for x in broker.lines_since(mark) if "<unknown>" in x and x != probe]


@pytest.mark.parametrize(
    ("pairs", "code", "what"),
    [case[1:] for case in CONNECT_ERRORS],
    ids=[case[0] for case in CONNECT_ERRORS],
)
def test_connect_property_errors(
    broker: Broker, pairs: list[tuple[int, bytes]], code: int, what: str
) -> None:
    """A 5.0 CONNECT with a property value the spec forbids (MQTT 5.0 3.1.2.11) or a property
    given twice is refused. m2mhub answers CONNACK 0x82 (0x81 for the duplicate, a Malformed
    Packet) with a Reason String and closes; mosquitto 2.0.11 closes without a CONNACK. Both
    log one line for it (mosquitto's words, m2mhub adding the peer and what was wrong); the
    user property given twice is fine (it may repeat) and a bystander carries on."""
    with connected5(broker.port, "bystander") as bystander:
        broker.wait_log("Sending CONNACK to bystander")
        mark = broker.mark()
        with RawClient(broker.port, level=5) as c:
            c.send(connect5("", *pairs))
            answer = c.wait_closed()
        if broker.kind == "mosquitto":
            assert answer == []
            reason = "malformed packet" if code == 0x81 else "protocol error"
            broker.wait_log("<unknown>", start=mark)
            lines = unknown_lines(broker, mark)
            if code == 0x81:
                assert lines == [
                    "Bad socket read/write on client <unknown>: Duplicate property in property list"
                ]
            else:
                assert lines == [f"Client <unknown> disconnected due to {reason}."]
        else:
            (connack,) = answer
            assert connack.ptype == raw.CONNACK and connack.body[:2] == bytes([0, code])
            assert what.encode() in connack.body  # the Reason String
            kind = "malformed packet" if code == 0x81 else "protocol error"
            line = broker.wait_log(f"disconnected due to {kind} ({what}).", start=mark)
            assert line.split(": ", 1)[-1].startswith("Client <unknown> (127.0.0.1:")
            lines = unknown_lines(broker, mark)
            assert len(lines) == 1
        assert ping(bystander) == []
    with RawClient(broker.port, level=5) as ok:
        user_twice = (0x26, raw.utf8("k") + raw.utf8("v"))
        ok.send(connect5("", user_twice, user_twice))
        assert ok.expect(raw.CONNACK).body[1] == 0


def options_flow(broker: Broker) -> list[str]:
    """One raw 5.0 client: SUBSCRIBE with a Subscription Identifier, No Local, Retain As
    Published, Retain Handling 2 and a shared filter; a PUBLISH to itself through the shared
    subscription; UNSUBSCRIBE; DISCONNECT. Its whole ``-v`` log, normalised."""
    with RawClient(broker.port, level=5) as c:
        c.send(connect5("optsub"))
        c.expect(raw.CONNACK)
        body = struct.pack("!H", 1) + props((0x0B, raw.varint(42)))
        body += (
            raw.utf8("o/a")
            + bytes([0x01 | 0x04 | 0x08 | 0x20])
            + raw.utf8("$share/g/o/b")
            + b"\x02"
        )
        c.send(raw.packet(raw.SUBSCRIBE, 2, body))
        assert c.expect(raw.SUBACK).body == b"\x00\x01\x00\x01\x02"
        c.send(raw.publish("o/b", b"x", qos=1, pid=2, level=5))
        got = {c.read().ptype, c.read().ptype}
        assert got == {raw.PUBLISH, raw.PUBACK}
        c.send(raw.ack(raw.PUBACK, 1))
        c.send(raw.unsubscribe(3, ["$share/g/o/b"], level=5))
        assert c.expect(raw.UNSUBACK).body == b"\x00\x03\x00\x00"
        c.send(raw.packet(raw.DISCONNECT, 0, b""))
        c.wait_closed()
    broker.wait_log("Client optsub disconnected.")
    lines = after_startup(broker)
    return lines[lines.index("New client connected from 127.0.0.1:PORT as optsub (p5, c1, k60).") :]


def test_subscribe_options_and_shared_log_lines_match_mosquitto(tmp_path: Path) -> None:
    results = {}
    for kind in ("mosquitto", "m2mhub"):
        with start_broker(kind, tmp_path) as broker:
            results[kind] = options_flow(broker)
    assert "\t$share/g/o/b (QoS 2)" in results["mosquitto"]
    assert "Received PUBACK from optsub (Mid: 1, RC:0)" in results["mosquitto"]
    assert results["m2mhub"] == results["mosquitto"]


def test_client_properties_on_every_ack_and_disconnect_are_accepted(broker: Broker) -> None:
    """A 5.0 client may put a Reason String and User Properties on PUBACK, PUBREC, PUBREL,
    PUBCOMP and DISCONNECT, and User Properties on SUBSCRIBE and UNSUBSCRIBE (MQTT 5.0 3.4-3.14):
    every flow completes as without them, on both brokers, and the client leaves normally."""
    user = (0x26, raw.utf8("k") + raw.utf8("v"))
    extra = props(user, (0x1F, raw.utf8("because")))  # User Property, Reason String

    def ack(ptype: int, pid_bytes: bytes) -> bytes:
        return raw.packet(ptype, 2 if ptype == raw.PUBREL else 0, pid_bytes + b"\x00" + extra)

    mark = broker.mark()
    with connected5(broker.port, "ackprops") as c:
        sub = struct.pack("!H", 1) + props(user) + raw.utf8("ap/#") + b"\x02"
        c.send(raw.packet(raw.SUBSCRIBE, 2, sub))
        assert c.expect(raw.SUBACK).body == b"\x00\x01\x00\x02"
        c.send(raw.publish("ap/1", b"one", qos=1, pid=1, level=5))
        c.send(raw.publish("ap/2", b"two", qos=2, pid=2, level=5))
        c.send(ack(raw.PUBREL, struct.pack("!H", 2)))
        seen: list[tuple[int, bytes]] = []
        while batch := ping(c):
            for p in batch:
                if p.ptype == raw.PUBLISH:
                    _, pid, payload = p.publish_fields(5)
                    seen.append((p.ptype, payload))
                    c.send(ack(raw.PUBACK if p.qos == 1 else raw.PUBREC, struct.pack("!H", pid)))
                else:
                    seen.append((p.ptype, p.body[:2]))
                    if p.ptype == raw.PUBREL:
                        c.send(ack(raw.PUBCOMP, p.body[:2]))
        assert seen == [
            (raw.PUBLISH, b"one"),
            (raw.PUBACK, b"\x00\x01"),
            (raw.PUBREC, b"\x00\x02"),
            (raw.PUBLISH, b"two"),
            (raw.PUBCOMP, b"\x00\x02"),
            (raw.PUBREL, struct.pack("!H", 2)),  # the broker's own flow to us, mid 2
        ]
        unsub = struct.pack("!H", 3) + props(user) + raw.utf8("ap/#")
        c.send(raw.packet(raw.UNSUBSCRIBE, 2, unsub))
        assert c.expect(raw.UNSUBACK).body == b"\x00\x03\x00\x00"
        c.send(raw.packet(raw.DISCONNECT, 0, b"\x00" + extra))
        assert c.wait_closed() == []
    broker.wait_log("Client ackprops disconnected.", start=mark)
