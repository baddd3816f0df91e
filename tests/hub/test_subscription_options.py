"""MQTT 5 SUBSCRIBE options: No Local, Retain As Published, Retain Handling (3.x unchanged)."""

from __future__ import annotations

from m2mhub.mqtt.packets import Publish, Suback, Subscribe, SubscriptionOptions
from tests.hub.harness import Client, Hub


def _subscribe(client: Client, topic_filter: str, options: SubscriptionOptions) -> list[Publish]:
    """Subscribe with full options; returns the PUBLISHes (retained) that followed the SUBACK."""
    client.send(Subscribe(1, [(topic_filter, options)]))
    got = client.received()
    assert got and isinstance(got[0], Suback), got
    return [p for p in got[1:] if isinstance(p, Publish)]


def test_no_local_skips_own_publishes_only() -> None:
    hub = Hub()
    me = hub.connected("me", level=5)
    other = hub.connected("other", level=5)
    _subscribe(me, "t", SubscriptionOptions(qos=1, no_local=True))
    assert [p for p in me.publish("t", b"mine") if isinstance(p, Publish)] == []
    other.publish("t", b"theirs")
    assert [p.payload for p in me.publishes()] == [b"theirs"]


def test_without_no_local_own_publishes_come_back() -> None:
    hub = Hub()
    me = hub.connected("me", level=5)
    _subscribe(me, "t", SubscriptionOptions(qos=1))
    got = me.publish("t", b"mine")
    assert [p.payload for p in got if isinstance(p, Publish)] == [b"mine"]


def test_retain_as_published_keeps_flag_on_live_delivery() -> None:
    hub = Hub()
    keep = hub.connected("keep", level=5)
    clear = hub.connected("clear", level=5)
    v3 = hub.connected("v3", level=4)
    pub = hub.connected("pub", level=5)
    _subscribe(keep, "t", SubscriptionOptions(qos=0, retain_as_published=True))
    _subscribe(clear, "t", SubscriptionOptions(qos=0))
    v3.subscribe(("t", 0))
    pub.publish("t", b"r", retain=True)
    assert [p.retain for p in keep.publishes()] == [True]
    assert [p.retain for p in clear.publishes()] == [False]
    assert [p.retain for p in v3.publishes()] == [False]


def test_retain_as_published_for_queued_qos1() -> None:
    hub = Hub()
    keep = hub.connected("keep", level=5)
    pub = hub.connected("pub", level=5)
    _subscribe(keep, "t", SubscriptionOptions(qos=1, retain_as_published=True))
    pub.publish_complete("t", b"r", 1, retain=True)
    got = keep.publishes()
    assert [(p.payload, p.retain, p.qos) for p in got] == [(b"r", True, 1)]


def test_retain_handling_0_sends_retained_on_every_subscribe() -> None:
    hub = Hub()
    hub.connected("pub", level=5).publish("t", b"kept", retain=True)
    sub = hub.connected("sub", level=5)
    first = _subscribe(sub, "t", SubscriptionOptions(qos=0, retain_handling=0))
    again = _subscribe(sub, "t", SubscriptionOptions(qos=0, retain_handling=0))
    assert [(p.payload, p.retain) for p in first] == [(b"kept", True)]
    assert [(p.payload, p.retain) for p in again] == [(b"kept", True)]


def test_retain_handling_1_only_for_a_new_subscription() -> None:
    hub = Hub()
    hub.connected("pub", level=5).publish("t", b"kept", retain=True)
    sub = hub.connected("sub", level=5)
    first = _subscribe(sub, "t", SubscriptionOptions(qos=0, retain_handling=1))
    again = _subscribe(sub, "t", SubscriptionOptions(qos=0, retain_handling=1))
    assert [p.payload for p in first] == [b"kept"]
    assert again == []


def test_retain_handling_2_never_sends_retained() -> None:
    hub = Hub()
    hub.connected("pub", level=5).publish("t", b"kept", retain=True)
    sub = hub.connected("sub", level=5)
    assert _subscribe(sub, "t", SubscriptionOptions(qos=0, retain_handling=2)) == []
    hub.connected("pub2", level=5).publish("t", b"live")
    assert [p.payload for p in sub.publishes()] == [b"live"]


def test_mqtt311_gets_retained_on_resubscribe_and_own_messages() -> None:
    hub = Hub()
    v3 = hub.connected("v3", level=4)
    v3.publish("t", b"kept", retain=True)
    v3.subscribe(("t", 0))
    assert [(p.payload, p.retain) for p in v3.pending if isinstance(p, Publish)] == [
        (b"kept", True)
    ]
    v3.subscribe(("t", 0))
    assert [p.payload for p in v3.pending if isinstance(p, Publish)] == [b"kept"]
    got = v3.publish("t", b"own", retain=True)
    assert [(p.payload, p.retain) for p in got if isinstance(p, Publish)] == [(b"own", False)]


def test_overlapping_subscriptions_no_local_needs_all_and_rap_needs_one() -> None:
    hub = Hub()
    me = hub.connected("me", level=5)
    _subscribe(me, "o/#", SubscriptionOptions(qos=1, no_local=True))
    _subscribe(me, "o/+", SubscriptionOptions(qos=0, retain_as_published=True))
    got = [p for p in me.publish("o/x", b"own", retain=True) if isinstance(p, Publish)]
    assert [(p.payload, p.qos, p.retain) for p in got] == [(b"own", 0, True)]
    _subscribe(me, "o/+", SubscriptionOptions(qos=0, no_local=True))
    assert [p for p in me.publish("o/x", b"again") if isinstance(p, Publish)] == []
    hub.connected("other", level=5).publish("o/x", b"theirs")
    assert [(p.payload, p.qos, p.retain) for p in me.publishes()] == [(b"theirs", 0, False)]
