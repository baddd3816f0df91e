"""MQTT 5 PUBLISH properties passed through the broker core, with a fake clock for expiry."""

from __future__ import annotations

from typing import Any

import pytest

from m2mhub.mqtt.packets import (
    Disconnect,
    Packet,
    Puback,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionOptions,
    Will,
)
from tests.hub.harness import Client, Hub

PAYLOAD_FORMAT = 0x01
MESSAGE_EXPIRY = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUB_ID = 0x0B
SESSION_EXPIRY = 0x11
USER_PROPERTY = 0x26

ALL: dict[int, Any] = {
    PAYLOAD_FORMAT: 1,
    MESSAGE_EXPIRY: 60,
    CONTENT_TYPE: "application/json; charset=utf-8",
    RESPONSE_TOPIC: "reply/to/me",
    CORRELATION_DATA: b"\x00id\x00\xff",
    USER_PROPERTY: [("k", "v"), ("a", "1"), ("k", "v"), ("k", "v2"), ("ünï", "cødé ✓")],
}


def _publish(
    client: Client,
    topic: str,
    qos: int,
    props: dict[int, Any],
    retain: bool = False,
    payload: bytes = b"{}",
    packet_id: int = 9,
) -> list[Packet]:
    """Publish and finish the inbound QoS 2 handshake (if the PUBREC accepted it)."""
    client.send(
        Publish(topic, payload, qos, retain, False, packet_id if qos else None, dict(props))
    )
    got = client.received()
    if qos == 2 and any(isinstance(p, Pubrec) and p.reason_code < 0x80 for p in got):
        client.send(Pubrel(packet_id))
        got += client.received()
    return got


def _subscribe(client: Client, topic_filter: str, qos: int, sub_id: int | None = None) -> None:
    props = {SUB_ID: [sub_id]} if sub_id is not None else {}
    client.send(Subscribe(1, [(topic_filter, SubscriptionOptions(qos=qos))], props))
    got = client.received()
    assert got and isinstance(got[0], Suback), got
    client.pending = got[1:]


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_every_property_passes_through_unchanged(qos: int) -> None:
    hub = Hub()
    sub = hub.connected("sub", level=5)
    _subscribe(sub, "t/#", 2, 5)
    _publish(hub.connected("pub", level=5), "t/x", qos, ALL)
    [got] = sub.publishes()
    assert got.qos == qos
    assert got.properties == {**ALL, SUB_ID: [5]}


def test_a_311_subscriber_gets_the_message_without_properties() -> None:
    hub = Hub()
    old = hub.connected("old", level=4)
    old.subscribe(("t", 1))
    _publish(hub.connected("pub", level=5), "t", 1, ALL)
    [got] = old.publishes()
    assert (got.payload, got.properties) == (b"{}", {})


def test_expiry_interval_zero_is_not_sent_and_never_expires() -> None:
    hub = Hub()
    sub = hub.connected("sub", level=5, clean=False, properties={SESSION_EXPIRY: 3600})
    _subscribe(sub, "t", 1)
    pub = hub.connected("pub", level=5)
    _publish(pub, "t", 1, {MESSAGE_EXPIRY: 0, CONTENT_TYPE: "x"})
    [live] = sub.publishes()
    assert live.properties == {CONTENT_TYPE: "x"}
    assert live.packet_id is not None
    sub.send(Puback(live.packet_id))
    sub.disconnect()
    _publish(pub, "t", 1, {MESSAGE_EXPIRY: 0})
    hub.advance(1000)
    back = hub.client("sub", level=5)
    back.connect(clean=False, properties={SESSION_EXPIRY: 3600})
    assert [(p.payload, p.properties) for p in back.pending if isinstance(p, Publish)] == [
        (b"{}", {})
    ]


def test_queued_message_carries_the_remaining_interval_then_expires() -> None:
    hub = Hub()
    sub = hub.connected("sub", level=5, clean=False, properties={SESSION_EXPIRY: 3600})
    _subscribe(sub, "t", 1)
    sub.disconnect()
    pub = hub.connected("pub", level=5)
    _publish(pub, "t", 1, {**ALL, MESSAGE_EXPIRY: 30})
    _publish(pub, "t", 1, {MESSAGE_EXPIRY: 5, CORRELATION_DATA: b"short"})
    hub.advance(10)
    back = hub.client("sub", level=5)
    back.connect(clean=False, properties={SESSION_EXPIRY: 3600})
    got = [p for p in back.pending if isinstance(p, Publish)]
    # The second one expired while waiting; the first says how long it has left.
    assert [p.properties for p in got] == [{**ALL, MESSAGE_EXPIRY: 20}]


def test_retained_message_keeps_its_properties_and_counts_down() -> None:
    hub = Hub()
    _publish(hub.connected("pub", level=5), "r", 1, ALL, retain=True)
    hub.advance(15)
    late = hub.connected("late", level=5)
    _subscribe(late, "r", 1, 8)
    [got] = [p for p in late.pending if isinstance(p, Publish)]
    assert got.retain
    assert got.properties == {**ALL, MESSAGE_EXPIRY: 45, SUB_ID: [8]}
    hub.advance(45)
    later = hub.connected("later", level=5)
    _subscribe(later, "r", 1)
    assert [p for p in later.pending if isinstance(p, Publish)] == []


def test_will_properties_are_passed_on() -> None:
    hub = Hub()
    watcher = hub.connected("watcher", level=5)
    _subscribe(watcher, "will/#", 1)
    dying = hub.client("dying", level=5)
    dying.connect(will=Will("will/dying", b"gone", 1, False, dict(ALL)))
    dying.drop()
    [got] = watcher.publishes()
    assert (got.topic, got.payload, got.properties) == ("will/dying", b"gone", ALL)


def test_shared_subscription_member_gets_the_properties() -> None:
    hub = Hub()
    member = hub.connected("member", level=5)
    _subscribe(member, "$share/g/t", 1, 4)
    _publish(hub.connected("pub", level=5), "t", 1, ALL)
    [got] = member.publishes()
    assert got.properties == {**ALL, SUB_ID: [4]}


@pytest.mark.parametrize(("qos", "ack"), [(1, Puback), (2, Pubrec)])
def test_payload_said_to_be_utf8_but_not_is_refused_in_the_ack(qos: int, ack: type) -> None:
    hub = Hub()
    sub = hub.connected("sub", level=5)
    _subscribe(sub, "t", 2)
    pub = hub.connected("pub", level=5)
    got = _publish(pub, "t", qos, {PAYLOAD_FORMAT: 1}, payload=b"\xff\xfe", packet_id=9)
    assert [(type(p), p.reason_code) for p in got] == [(ack, 0x99)]  # type: ignore[attr-defined]
    assert sub.publishes() == []
    assert not pub.closed
    _publish(pub, "t", qos, {PAYLOAD_FORMAT: 1}, payload="ünï".encode(), packet_id=10)
    assert [p.payload for p in sub.publishes()] == ["ünï".encode()]
    # Without the indicator any bytes go.
    _publish(pub, "t", qos, {PAYLOAD_FORMAT: 0}, payload=b"\xff", packet_id=11)
    assert [p.payload for p in sub.publishes()] == [b"\xff"]


def test_qos0_payload_said_to_be_utf8_but_not_disconnects_with_0x99() -> None:
    hub = Hub()
    sub = hub.connected("sub", level=5)
    _subscribe(sub, "t", 0)
    pub = hub.connected("pub", level=5)
    pub.send(Publish("t", b"\xc3", 0, False, False, None, {PAYLOAD_FORMAT: 1}))
    got = pub.received()
    assert [(type(p), p.reason_code) for p in got] == [(Disconnect, 0x99)]  # type: ignore[attr-defined]
    assert pub.closed and sub.publishes() == []
    assert [line for line in hub.lines if "disconnected due to" in line] == [
        "Client pub disconnected due to protocol error (payload is not valid UTF-8)."
    ]


def test_time_left_never_exceeds_the_interval_sent() -> None:
    """(1000.1 + 3600) - 1000.1 is 3600.0000000000005 in floating point: rounding it up
    once said 3601 s left of a 3600 s interval."""
    hub = Hub()
    hub.now = 1000.1
    sub = hub.connected("sub", level=5, clean=False, properties={SESSION_EXPIRY: 3600})
    _subscribe(sub, "t", 1)
    sub.disconnect()
    _publish(hub.connected("pub", level=5), "t", 1, {MESSAGE_EXPIRY: 3600})
    back = hub.client("sub", level=5)
    back.connect(clean=False, properties={SESSION_EXPIRY: 3600})
    got = [p for p in back.pending if isinstance(p, Publish)]
    assert [p.properties for p in got] == [{MESSAGE_EXPIRY: 3600}]
