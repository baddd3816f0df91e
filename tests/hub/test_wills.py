"""Will messages: published on ungraceful close, keepalive timeout and protocol error only."""

from __future__ import annotations

from m2mhub.mqtt.packets import Disconnect, Will
from tests.hub.harness import Hub


def _watcher(hub: Hub):  # type: ignore[no-untyped-def]
    w = hub.connected("watch")
    w.subscribe(("will/#", 2))
    return w


def test_will_sent_on_ungraceful_close_with_qos() -> None:
    hub = Hub()
    watch = _watcher(hub)
    dying = hub.connected("dying", will=Will("will/dying", b"gone", 1, False))
    dying.drop()
    (msg,) = watch.publishes()
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == ("will/dying", b"gone", 1, False)
    assert "Client dying closed its connection." in hub.lines


def test_retained_will_is_retained() -> None:
    hub = Hub()
    dying = hub.connected("dying", will=Will("will/r", b"bye", 0, True))
    dying.drop()
    assert hub.broker.retained("will/r") == (b"bye", 0, {})
    late = hub.connected("late")
    late.subscribe(("will/#", 0))
    assert [(p.payload, p.retain) for p in late.pending] == [(b"bye", True)]


def test_no_will_after_disconnect() -> None:
    hub = Hub()
    watch = _watcher(hub)
    polite = hub.connected("polite", will=Will("will/p", b"gone"))
    polite.disconnect()
    polite.drop()
    assert watch.publishes() == []
    assert "Client polite disconnected." in hub.lines


def test_v5_disconnect_with_will_message_sends_will() -> None:
    hub = Hub()
    watch = _watcher(hub)
    c = hub.connected("c5", level=5, will=Will("will/c5", b"w"))
    c.send(Disconnect(0x04))
    assert [p.payload for p in watch.publishes()] == [b"w"]


def test_will_sent_on_keepalive_timeout() -> None:
    hub = Hub()
    watch = _watcher(hub)
    hub.connected("sleepy", keepalive=10, will=Will("will/sleepy", b"zz", 2))
    hub.advance(14)
    assert watch.publishes() == []
    hub.advance(1.1)
    (msg,) = watch.publishes()
    assert (msg.payload, msg.qos) == (b"zz", 2)
    assert "Client sleepy has exceeded timeout, disconnecting." in hub.lines


def test_will_sent_on_protocol_error() -> None:
    hub = Hub()
    watch = _watcher(hub)
    bad = hub.connected("bad", will=Will("will/bad", b"oops"))
    bad.send_bytes(b"\x00\x00")
    assert bad.closed
    assert [p.payload for p in watch.publishes()] == [b"oops"]


def test_will_sent_on_takeover() -> None:
    hub = Hub()
    watch = _watcher(hub)
    hub.connected("twin", will=Will("will/twin", b"old"))
    hub.connected("twin")
    assert [p.payload for p in watch.publishes()] == [b"old"]


def _delayed(hub: Hub, delay: int, expiry: int = 300):  # type: ignore[no-untyped-def]
    return hub.connected(
        "late",
        level=5,
        properties={0x11: expiry},
        will=Will("will/late", b"bye", 0, False, {0x18: delay}),
    )


def test_v5_will_delay_sends_after_the_delay() -> None:
    hub = Hub()
    watch = _watcher(hub)
    _delayed(hub, 10).drop()
    assert watch.publishes() == []
    hub.advance(9)
    assert watch.publishes() == []
    hub.advance(1)
    (msg,) = watch.publishes()
    assert msg.payload == b"bye"


def test_v5_will_delay_cancelled_by_reconnect() -> None:
    hub = Hub()
    watch = _watcher(hub)
    _delayed(hub, 10).drop()
    hub.advance(5)
    back = hub.client("late", level=5)
    back.connect(clean=False, properties={0x11: 300})
    hub.advance(10)
    assert watch.publishes() == []


def test_v5_will_sent_when_session_ends_before_the_delay() -> None:
    hub = Hub()
    watch = _watcher(hub)
    _delayed(hub, 100, expiry=5).drop()
    hub.advance(5)
    assert [p.payload for p in watch.publishes()] == [b"bye"]
    hub.advance(100)
    assert watch.publishes() == []


def test_v5_will_delay_ignored_for_a_session_that_ends_at_disconnect() -> None:
    hub = Hub()
    watch = _watcher(hub)
    _delayed(hub, 100, expiry=0).drop()
    assert [p.payload for p in watch.publishes()] == [b"bye"]
