"""Retained messages: stored, replaced, cleared, sent with the retain flag on subscribe."""

from __future__ import annotations

from m2mhub.mqtt.packets import Publish
from tests.hub.harness import Hub


def test_retained_sent_on_subscribe_with_retain_flag_and_min_qos() -> None:
    hub = Hub()
    pub = hub.connected("pub")
    pub.publish_complete("a/b", b"one", 2, retain=True)
    sub = hub.connected("sub")
    sub.subscribe(("a/+", 1))
    (msg,) = [p for p in sub.pending if isinstance(p, Publish)]
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == ("a/b", b"one", 1, True)


def test_live_delivery_clears_retain_flag() -> None:
    hub = Hub()
    sub = hub.connected("sub")
    sub.subscribe(("a", 0))
    pub = hub.connected("pub")
    pub.publish("a", b"x", retain=True)
    (msg,) = sub.publishes()
    assert msg.retain is False


def test_replaced_and_cleared() -> None:
    hub = Hub()
    pub = hub.connected("pub")
    pub.publish("a", b"first", retain=True)
    pub.publish("a", b"second", retain=True)
    assert hub.broker.retained("a") == (b"second", 0, {})
    pub.publish("a", b"", retain=True)
    assert hub.broker.retained("a") is None
    sub = hub.connected("sub")
    sub.subscribe(("#", 0))
    assert sub.pending == []


def test_retain_available_false_disconnects_publisher() -> None:
    hub = Hub(retain_available=False)
    other = hub.connected("other")
    other.subscribe(("a", 0))
    pub = hub.connected("pub")
    pub.publish("a", b"x", retain=True)
    assert pub.closed
    assert hub.broker.retained("a") is None
    assert other.publishes() == []


def test_retain_available_false_v5_gets_reason_0x9a() -> None:
    hub = Hub(retain_available=False)
    pub = hub.connected("pub", level=5)
    got = pub.publish("a", b"x", retain=True)
    assert [getattr(p, "reason_code", None) for p in got] == [0x9A]
    assert pub.closed


def test_many_retained_matched_by_wildcard_filter() -> None:
    hub = Hub()
    pub = hub.connected("pub")
    for i in range(5):
        pub.publish(f"room/{i}/temp", b"%d" % i, retain=True)
    pub.publish("other/x", b"no", retain=True)
    sub = hub.connected("sub")
    sub.subscribe(("room/+/temp", 0))
    assert sorted(p.payload for p in sub.pending if isinstance(p, Publish)) == [
        b"0",
        b"1",
        b"2",
        b"3",
        b"4",
    ]
