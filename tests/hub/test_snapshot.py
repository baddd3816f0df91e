"""Broker.snapshot / Broker.restore: what a persistent broker keeps across a restart.

Each test builds state on one broker, restores its snapshot into a fresh broker whose clock
reads something else entirely, and checks what reconnecting clients see there.
"""

from __future__ import annotations

from m2mhub.hub.snapshot import Snapshot
from m2mhub.mqtt.packets import (
    Connack,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionOptions,
)
from tests.hub.harness import Hub

SUB_ID = 0x0B
MESSAGE_EXPIRY = 0x02
SESSION_EXPIRY = 0x11
USER_PROPERTY = 0x26


def _restart(hub: Hub, data: Snapshot | None = None, downtime: float = 0.0) -> Hub:
    """A new broker (clock far from the old one's) restored from ``hub``'s snapshot, as if the
    broker had been down for ``downtime`` seconds."""
    if data is None:
        data = hub.broker.snapshot(hub.now)
    for session in data.sessions:
        session.offline_for += downtime
    for message in data.messages:
        if message.expires_in is not None:
            message.expires_in -= downtime
    fresh = Hub()
    fresh.now = 123_456.0
    fresh.broker.restore(data, fresh.now)
    return fresh


def test_retained_and_queued_messages_of_an_offline_session_survive() -> None:
    hub = Hub()
    sub = hub.connected("sub", clean=False)
    sub.subscribe(("t/#", 2))
    sub.drop()
    pub = hub.connected("pub")
    pub.publish_complete("t/r", b"kept", 1, retain=True)
    pub.publish_complete("t/a", b"one", 1)
    pub.publish_complete("t/a", b"two", 2)

    fresh = _restart(hub)
    back = fresh.client("sub")
    assert back.connect(clean=False) == Connack(True, 0)
    got = [p for p in back.pending if isinstance(p, Publish)]
    assert [(p.topic, p.payload, p.qos) for p in got] == [
        ("t/r", b"kept", 1),
        ("t/a", b"one", 1),
        ("t/a", b"two", 2),
    ]
    # The subscription itself came back too.
    live = fresh.connected("pub")
    live.publish_complete("t/b", b"live", 0)
    assert [p.payload for p in back.publishes()] == [b"live"]
    # And the retained message is there for new subscribers.
    other = fresh.connected("other")
    other.subscribe(("t/r", 0))
    assert [(p.payload, p.retain) for p in other.pending if isinstance(p, Publish)] == [
        (b"kept", True)
    ]


def test_clean_sessions_and_sys_topics_are_not_kept() -> None:
    hub = Hub(sys_interval=10)
    hub.advance(11)  # publishes retained $SYS topics
    hub.connected("clean").subscribe(("x", 1))
    data = hub.broker.snapshot(hub.now)
    assert data.sessions == []
    assert all(not m.topic.startswith("$SYS") for m in data.messages)


def test_mqtt5_subscription_options_and_identifiers_survive() -> None:
    hub = Hub()
    sub = hub.connected("sub", level=5, clean=False, properties={SESSION_EXPIRY: 600})
    sub.send(
        Subscribe(
            1,
            [("a/#", SubscriptionOptions(qos=1, no_local=True, retain_as_published=True))],
            {SUB_ID: [7]},
        )
    )
    assert isinstance(sub.received()[0], Suback)
    sub.drop()

    fresh = _restart(hub, downtime=5)
    back = fresh.client("sub", level=5)
    ack = back.connect(clean=False, properties={SESSION_EXPIRY: 600})
    assert isinstance(ack, Connack) and ack.session_present
    back.publish("a/own", b"no local", 1)  # No Local: not sent back to its publisher
    other = fresh.connected("other", level=5)
    other.publish("a/x", b"kept flag", 1, retain=True)
    got = back.publishes()
    assert [(p.payload, p.retain, p.properties.get(SUB_ID)) for p in got] == [
        (b"kept flag", True, [7])
    ]


def test_inflight_outgoing_messages_are_resent_after_restart() -> None:
    hub = Hub()
    sub = hub.connected("sub", clean=False)
    sub.subscribe(("t", 2))
    pub = hub.connected("pub")
    pub.publish_complete("t", b"q1", 1, packet_id=1)
    pub.publish_complete("t", b"q2", 2, packet_id=2)
    sent = sub.publishes()
    assert [p.payload for p in sent] == [b"q1", b"q2"]
    sub.send(Pubrec(sent[1].packet_id))  # QoS 2: PUBREC in, PUBREL out, PUBCOMP not yet
    assert sub.received() == [Pubrel(sent[1].packet_id)]
    sub.drop()

    fresh = _restart(hub)
    back = fresh.client("sub")
    assert back.connect(clean=False) == Connack(True, 0)
    assert back.pending == [
        Publish("t", b"q1", 1, False, True, sent[0].packet_id),
        Pubrel(sent[1].packet_id),
    ]
    back.send(Puback(sent[0].packet_id))
    back.send(Pubcomp(sent[1].packet_id))
    assert fresh.broker.sessions["sub"].inflight == {}


def test_unreleased_inbound_qos2_is_delivered_once_on_pubrel_after_restart() -> None:
    hub = Hub()
    sub = hub.connected("sub", clean=False)
    sub.subscribe(("t", 1))
    sub.drop()
    pub = hub.connected("pub", clean=False)
    assert pub.publish("t", b"exactly once", 2, packet_id=9) == [Pubrec(9)]
    pub.drop()

    fresh = _restart(hub)
    back_pub = fresh.client("pub")
    assert back_pub.connect(clean=False) == Connack(True, 0)
    back_pub.publish("t", b"exactly once", 2, packet_id=9, dup=True)  # resent: not routed
    back_pub.send(Pubrel(9))
    assert back_pub.received() == [Pubcomp(9)]
    back_sub = fresh.client("sub")
    back_sub.connect(clean=False)
    got = [p for p in back_sub.pending if isinstance(p, Publish)]
    assert [p.payload for p in got] == [b"exactly once"]


def test_session_expiry_counts_from_going_offline_across_the_restart() -> None:
    hub = Hub()
    for name in ("short", "long"):
        c = hub.connected(name, level=5, clean=False, properties={SESSION_EXPIRY: 60})
        c.subscribe(("t", 1))
        c.drop()
    hub.advance(30)
    data = hub.broker.snapshot(hub.now)
    assert {s.client_id: s.offline_for for s in data.sessions} == {"short": 30.0, "long": 30.0}
    # 30 s offline before the snapshot + 40 s down = 70 s > 60 s: gone at start-up.
    gone = _restart(hub, data, downtime=40)
    assert "Expiring client short due to timeout." in gone.lines
    assert "short" not in gone.broker.sessions

    kept = _restart(hub, downtime=20)  # 50 s so far: 10 s left
    assert set(kept.broker.sessions) == {"short", "long"}
    kept.advance(11)
    assert kept.broker.sessions == {}


def test_message_expiry_continues_across_the_restart() -> None:
    hub = Hub()
    sub = hub.connected("sub", level=5, clean=False, properties={SESSION_EXPIRY: 1000})
    sub.subscribe(("t", 1))
    sub.drop()
    pub = hub.connected("pub", level=5)
    props = {MESSAGE_EXPIRY: 100, USER_PROPERTY: [("k", "v")]}
    pub.send(Publish("t", b"lives 100 s", 1, False, False, 1, props))
    pub.send(Publish("t", b"lives 20 s", 1, False, False, 2, {MESSAGE_EXPIRY: 20}))
    hub.advance(10)

    fresh = _restart(hub, downtime=30)  # 40 s after publishing
    back = fresh.client("sub", level=5)
    back.connect(clean=False, properties={SESSION_EXPIRY: 1000})
    got = [p for p in back.pending if isinstance(p, Publish)]
    assert [(p.payload, p.properties) for p in got] == [
        (b"lives 100 s", {MESSAGE_EXPIRY: 60, USER_PROPERTY: [("k", "v")]})
    ]


def test_shared_subscription_members_and_their_queue_survive() -> None:
    hub = Hub()
    for name in ("m1", "m2"):
        c = hub.connected(name, level=5, clean=False, properties={SESSION_EXPIRY: 600})
        c.subscribe(("$share/g/t", 1))
        c.drop()
    pub = hub.connected("pub")
    pub.publish_complete("t", b"a", 1, packet_id=1)
    pub.publish_complete("t", b"b", 1, packet_id=2)

    fresh = _restart(hub)
    got: list[bytes] = []
    for name in ("m1", "m2"):
        back = fresh.client(name, level=5)
        back.connect(clean=False, properties={SESSION_EXPIRY: 600})
        got += [p.payload for p in back.pending if isinstance(p, Publish)]
    assert sorted(got) == [b"a", b"b"]
    assert set(fresh.broker.shared[("g", "t")].members) == {
        fresh.broker.sessions["m1"],
        fresh.broker.sessions["m2"],
    }


def test_retained_messages_come_back_in_the_same_subscribe_order() -> None:
    hub = Hub()
    pub = hub.connected("pub")
    for topic in ("b/2", "a/1", "b/1", "a", "c/x/y", "a/2"):
        pub.publish(topic, topic.encode(), 0, retain=True)
    pub.publish("b/2", b"", 0, retain=True)  # cleared
    pub.publish("b/2", b"b/2 again", 0, retain=True)

    def order(h: Hub) -> list[bytes]:
        sub = h.connected("sub")
        sub.subscribe(("#", 0))
        return [p.payload for p in sub.pending if isinstance(p, Publish)]

    before = order(hub)
    assert len(before) == 6
    assert order(_restart(hub)) == before


def test_a_client_connected_at_the_snapshot_counts_as_offline_from_then() -> None:
    hub = Hub()
    online = hub.connected(
        "online", level=5, clean=False, keepalive=1000, properties={SESSION_EXPIRY: 60}
    )
    online.subscribe(("t", 1))
    hub.advance(500)  # connected all along: its expiry has not started
    assert hub.broker.sessions["online"].connection is not None
    data = hub.broker.snapshot(hub.now)
    assert [(s.client_id, s.offline_for) for s in data.sessions] == [("online", 0.0)]
    assert "online" in _restart(hub, data, downtime=59).broker.sessions
    assert "online" not in _restart(hub, hub.broker.snapshot(hub.now), downtime=61).broker.sessions
