"""Will messages: published on ungraceful close, keepalive timeout and protocol error only."""

from __future__ import annotations

from m2mhub.mqtt.packets import Connack, Disconnect, Publish, Will
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


def test_v5_disconnect_with_will_message_waits_for_the_delay() -> None:
    hub = Hub()
    watch = _watcher(hub)
    _delayed(hub, 10).send(Disconnect(0x04))
    assert watch.publishes() == []
    hub.advance(9.9)
    assert watch.publishes() == []
    hub.advance(0.1)
    assert [p.payload for p in watch.publishes()] == [b"bye"]


def test_v5_disconnect_with_will_message_delay_cancelled_by_reconnect() -> None:
    hub = Hub()
    watch = _watcher(hub)
    _delayed(hub, 10).send(Disconnect(0x04))
    hub.advance(9)
    hub.client("late", level=5).connect(clean=False, properties={0x11: 300})
    hub.advance(100)
    assert watch.publishes() == []


def test_v5_will_sent_at_once_when_disconnect_ends_the_session() -> None:
    """Session Expiry set to 0 on DISCONNECT 0x04 ends the session now, and with it the
    delay (MQTT 5.0 3.1.2.5: whichever comes first). mosquitto 2.0.11 still waits for the
    delay (interop test_lifecycle.py)."""
    hub = Hub()
    watch = _watcher(hub)
    _delayed(hub, 10).send(Disconnect(0x04, {0x11: 0}))
    assert [p.payload for p in watch.publishes()] == [b"bye"]
    hub.advance(100)
    assert watch.publishes() == []


def test_v5_will_delay_equal_to_session_expiry_sends_once() -> None:
    hub = Hub()
    watch = _watcher(hub)
    _delayed(hub, 10, expiry=10).drop()
    hub.advance(9)
    assert watch.publishes() == []
    hub.advance(1)
    assert [p.payload for p in watch.publishes()] == [b"bye"]
    assert "late" not in hub.broker.sessions
    hub.advance(100)
    assert watch.publishes() == []


def test_v5_will_delay_cancelled_by_clean_start_reconnect_as_mosquitto() -> None:
    """A Clean Start reconnection within the delay discards the old session without its will,
    as mosquitto 2.0.11 does (the spec's "new Network Connection" before the delay)."""
    hub = Hub()
    watch = _watcher(hub)
    _delayed(hub, 10).drop()
    hub.advance(5)
    ack = hub.client("late", level=5).connect(clean=True)
    assert isinstance(ack, Connack) and (ack.reason_code, ack.session_present) == (0, False)
    hub.advance(100)
    assert watch.publishes() == []


def test_v5_will_delay_restarts_from_the_latest_disconnect() -> None:
    hub = Hub()
    watch = _watcher(hub)
    _delayed(hub, 10).drop()
    hub.advance(8)
    back = hub.client("late", level=5)
    back.connect(
        clean=False,
        properties={0x11: 300},
        will=Will("will/late", b"second", 0, False, {0x18: 10}),
    )
    back.drop()
    hub.advance(5)  # the first will's time passes: it was cancelled
    assert watch.publishes() == []
    hub.advance(5)
    assert [p.payload for p in watch.publishes()] == [b"second"]


def test_v5_will_properties_passed_on_without_the_delay() -> None:
    hub = Hub()
    watch = hub.connected("watch5", level=5)
    watch.subscribe(("will/#", 1))
    props = {0x18: 5, 0x03: "text/plain", 0x02: 60, 0x26: [("k", "v"), ("k", "w")]}
    c = hub.connected(
        "props", level=5, properties={0x11: 60}, will=Will("will/p", b"x", 1, False, props)
    )
    c.drop()
    hub.advance(5)
    (msg,) = watch.publishes()
    assert msg.properties == {0x03: "text/plain", 0x02: 60, 0x26: [("k", "v"), ("k", "w")]}


def test_v5_will_message_expiry_counts_from_publication() -> None:
    """The will's Message Expiry Interval starts when the will is published, not at CONNECT."""
    hub = Hub()
    offline = hub.connected("off", level=5, properties={0x11: 600})
    offline.subscribe(("will/#", 1))
    offline.drop()
    c = hub.connected(
        "exp",
        level=5,
        properties={0x11: 60},
        will=Will("will/e", b"x", 1, False, {0x18: 20, 0x02: 30}),
    )
    c.drop()
    hub.advance(20)  # will published now, expiring in 30 s
    hub.advance(10)
    back = hub.client("off", level=5)
    back.connect(clean=False, properties={0x11: 600})
    (msg,) = [p for p in back.pending if isinstance(p, Publish)]
    assert msg.properties[0x02] == 20


def test_v5_will_with_invalid_utf8_refused_with_connack_0x99() -> None:
    """MQTT 5.0 3.1.3.2.3 lets the server check a will said to be UTF-8; mosquitto 2.0.11
    does not and accepts it."""
    hub = Hub()
    c = hub.client("w", level=5)
    ack = c.connect(will=Will("will/w", b"\xff\xfe caf\xe9", 0, False, {0x01: 1}))
    assert ack == Connack(False, 0x99, {0x1F: "will payload is not valid UTF-8"})
    assert c.closed
    assert "w" not in hub.broker.sessions
    assert "Client w disconnected, will payload is not valid UTF-8." in hub.lines


def test_v5_will_with_valid_utf8_accepted_and_sent_with_the_indicator() -> None:
    hub = Hub()
    watch = hub.connected("watch", level=5)
    watch.subscribe(("will/#", 0))
    c = hub.client("w", level=5)
    ack = c.connect(will=Will("will/w", "adiós".encode(), 0, False, {0x01: 1}))
    assert isinstance(ack, Connack) and ack.reason_code == 0
    c.drop()
    (msg,) = watch.publishes()
    assert (msg.payload, msg.properties[0x01]) == ("adiós".encode(), 1)


def test_v5_will_message_expiry_counts_from_the_lost_connection() -> None:
    """The broker's clock moves with every event: a connection lost long after the last
    packet anybody sent (no timer fired meanwhile) still dates its will from the loss."""
    hub = Hub()
    offline = hub.connected("off", level=5, properties={0x11: 600})
    offline.subscribe(("will/#", 1))
    offline.drop()
    c = hub.connected(
        "quiet", level=5, keepalive=0, will=Will("will/q", b"x", 1, False, {0x02: 30})
    )
    hub.now += 100  # nothing happens for 100 s, then the socket goes
    c.drop()
    hub.advance(10)
    back = hub.client("off", level=5)
    back.connect(clean=False, properties={0x11: 600})
    (msg,) = [p for p in back.pending if isinstance(p, Publish)]
    assert msg.properties[0x02] == 20


def test_in_process_publish_dates_its_expiry_with_now() -> None:
    hub = Hub()
    offline = hub.connected("off", level=5, properties={0x11: 600})
    offline.subscribe(("t", 1))
    offline.drop()
    hub.now += 100
    hub.broker.publish("t", b"coap", 1, now=hub.now, properties={0x02: 30})
    hub.advance(10)
    back = hub.client("off", level=5)
    back.connect(clean=False, properties={0x11: 600})
    (msg,) = [p for p in back.pending if isinstance(p, Publish)]
    assert (msg.payload, msg.properties[0x02]) == (b"coap", 20)
