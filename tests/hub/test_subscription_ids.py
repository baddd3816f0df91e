"""MQTT 5 Subscription Identifiers: stored per subscription, all matching ones on a delivery."""

from __future__ import annotations

from m2mhub.mqtt.packets import Connack, Publish, Suback, Subscribe, SubscriptionOptions
from tests.hub.harness import Client, Hub

SUB_ID = 0x0B


def _subscribe(client: Client, topic_filter: str, qos: int, sub_id: int | None) -> list[Publish]:
    props = {SUB_ID: [sub_id]} if sub_id is not None else {}
    client.send(Subscribe(1, [(topic_filter, SubscriptionOptions(qos=qos))], props))
    got = client.received()
    assert got and isinstance(got[0], Suback), got
    assert got[0].reason_codes == [qos]
    return [p for p in got[1:] if isinstance(p, Publish)]


def test_connack_advertises_subscription_identifiers() -> None:
    hub = Hub()
    ack = hub.client("c", level=5).connect()
    assert isinstance(ack, Connack) and ack.properties[0x29] == 1


def test_one_delivery_carries_every_matching_identifier() -> None:
    hub = Hub()
    sub = hub.connected("sub", level=5)
    _subscribe(sub, "a/#", 1, 7)
    _subscribe(sub, "a/+", 0, 3)
    _subscribe(sub, "a/b", 1, None)
    _subscribe(sub, "x/#", 1, 9)
    hub.connected("pub", level=5).publish_complete("a/b", b"m", 1)
    got = sub.publishes()
    assert len(got) == 1
    assert got[0].qos == 1 and got[0].properties[SUB_ID] == [3, 7]


def test_qos0_and_qos2_deliveries_carry_the_identifier() -> None:
    hub = Hub()
    s0 = hub.connected("s0", level=5)
    s2 = hub.connected("s2", level=5)
    plain = hub.connected("plain", level=5)
    _subscribe(s0, "t", 0, 1)
    _subscribe(s2, "t", 2, 268435455)
    _subscribe(plain, "t", 2, None)
    hub.connected("pub", level=5).publish_complete("t", b"m", 2)
    assert [p.properties.get(SUB_ID) for p in s0.publishes()] == [[1]]
    assert [p.properties.get(SUB_ID) for p in s2.publishes()] == [[268435455]]
    assert [SUB_ID in p.properties for p in plain.publishes()] == [False]


def test_resubscribe_replaces_or_removes_the_identifier() -> None:
    hub = Hub()
    sub = hub.connected("sub", level=5)
    pub = hub.connected("pub", level=5)
    _subscribe(sub, "t", 0, 5)
    _subscribe(sub, "t", 0, 6)
    pub.publish("t", b"1")
    assert [p.properties.get(SUB_ID) for p in sub.publishes()] == [[6]]
    _subscribe(sub, "t", 0, None)
    pub.publish("t", b"2")
    assert [SUB_ID in p.properties for p in sub.publishes()] == [False]


def test_retained_on_subscribe_carries_the_new_identifier() -> None:
    hub = Hub()
    hub.connected("pub", level=5).publish("r/t", b"kept", retain=True)
    sub = hub.connected("sub", level=5)
    got = _subscribe(sub, "r/#", 1, 42)
    assert [(p.payload, p.properties.get(SUB_ID)) for p in got] == [(b"kept", [42])]


def test_queued_for_offline_session_keeps_identifiers() -> None:
    hub = Hub()
    sub = hub.connected("sub", level=5, clean=False, properties={0x11: 300})
    _subscribe(sub, "q", 1, 11)
    sub.drop()
    hub.connected("pub", level=5).publish_complete("q", b"later", 1)
    back = hub.client("sub", level=5)
    back.connect(clean=False, properties={0x11: 300})
    got = [p for p in back.pending if isinstance(p, Publish)] + back.publishes()
    assert [(p.payload, p.properties.get(SUB_ID)) for p in got] == [(b"later", [11])]


def test_311_and_50_subscribers_of_one_message() -> None:
    hub = Hub()
    v3 = hub.connected("v3", level=4)
    v3.subscribe(("t", 1))
    v5 = hub.connected("v5", level=5)
    _subscribe(v5, "t", 1, 2)
    hub.connected("pub", level=4).publish_complete("t", b"m", 1)
    assert [p.payload for p in v3.publishes()] == [b"m"]
    assert [p.properties.get(SUB_ID) for p in v5.publishes()] == [[2]]


def test_maximum_packet_size_counts_each_receivers_identifier() -> None:
    # 26 bytes without the identifier (27 + 2 with QoS 1's packet id); identifier 1 takes two
    # more bytes, 300000 four: only the receiver with the short identifier is under the limit.
    for qos in (0, 1):
        hub = Hub()
        limit = 28 + 2 * qos
        short = hub.connected("short", level=5, properties={0x27: limit})
        long = hub.connected("long", level=5, properties={0x27: limit})
        _subscribe(short, "t", qos, 1)
        _subscribe(long, "t", qos, 300_000)
        hub.connected("pub").publish_complete("t", b"x" * 20, qos)
        got = short.publishes()
        assert [(p.payload, p.properties.get(SUB_ID)) for p in got] == [(b"x" * 20, [1])]
        assert long.publishes() == []
        assert [line for line in hub.lines if line.startswith("Dropping too large")] == [
            f"Dropping too large outgoing PUBLISH for long ({28 + 2 * qos} bytes)"
        ]
        assert long.conn.session is not None and not long.conn.session.inflight
