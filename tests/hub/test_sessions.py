"""Clean and persistent sessions: sessionPresent, offline queueing, limits and drop counts."""

from __future__ import annotations

from m2mhub.mqtt.packets import Connack, Puback, Publish
from tests.hub.harness import Hub


def _offline_subscriber(hub: Hub, qos: int = 1) -> None:
    sub = hub.connected("sub", clean=False)
    sub.subscribe(("t/#", qos))
    sub.disconnect()


def test_persistent_session_keeps_subscription_and_queues_qos1_and_qos2() -> None:
    hub = Hub()
    _offline_subscriber(hub, qos=2)
    pub = hub.connected("pub")
    pub.publish_complete("t/a", b"q0", 0)
    pub.publish_complete("t/a", b"q1", 1)
    pub.publish_complete("t/a", b"q2", 2)
    back = hub.client("sub")
    assert back.connect(clean=False) == Connack(True, 0)
    got = [p for p in back.pending if isinstance(p, Publish)]
    assert [(p.payload, p.qos) for p in got] == [(b"q1", 1), (b"q2", 2)]
    # The subscription is still there for new messages.
    pub.publish_complete("t/b", b"live", 1)
    assert [p.payload for p in back.publishes()] == [b"live"]


def test_queue_qos0_messages_option() -> None:
    hub = Hub(queue_qos0_messages=True)
    _offline_subscriber(hub)
    pub = hub.connected("pub")
    pub.publish_complete("t/a", b"q0", 0)
    back = hub.client("sub")
    back.connect(clean=False)
    assert [(p.payload, p.qos) for p in back.pending if isinstance(p, Publish)] == [(b"q0", 0)]


def test_max_queued_messages_drops_oldest_and_counts() -> None:
    hub = Hub(max_queued_messages=3)
    _offline_subscriber(hub)
    pub = hub.connected("pub")
    for i in range(5):
        pub.publish_complete("t/a", b"%d" % i, 1, packet_id=i + 1)
    assert hub.broker.stats.publish_dropped == 2
    assert hub.broker.sessions["sub"].dropped == 2
    assert "Outgoing messages are being dropped for client sub." in hub.lines
    back = hub.client("sub")
    back.connect(clean=False)
    assert [p.payload for p in back.pending if isinstance(p, Publish)] == [b"2", b"3", b"4"]


def test_offline_queue_respects_inflight_window_on_reconnect() -> None:
    hub = Hub(max_inflight_messages=2)
    _offline_subscriber(hub)
    pub = hub.connected("pub")
    for i in range(4):
        pub.publish_complete("t/a", b"%d" % i, 1, packet_id=i + 1)
    back = hub.client("sub")
    back.connect(clean=False)
    first = [p for p in back.pending if isinstance(p, Publish)]
    assert [p.payload for p in first] == [b"0", b"1"]
    for p in first:
        back.send(Puback(p.packet_id or 0))
    assert [p.payload for p in back.publishes()] == [b"2", b"3"]


def test_clean_session_forgets_everything() -> None:
    hub = Hub()
    sub = hub.connected("sub", clean=True)
    sub.subscribe(("t/#", 1))
    sub.disconnect()
    assert "sub" not in hub.broker.sessions
    pub = hub.connected("pub")
    pub.publish_complete("t/a", b"x", 1)
    back = hub.client("sub")
    assert back.connect(clean=False) == Connack(False, 0)
    assert back.pending == []


def test_clean_connect_discards_persistent_session() -> None:
    hub = Hub()
    _offline_subscriber(hub)
    pub = hub.connected("pub")
    pub.publish_complete("t/a", b"x", 1)
    back = hub.client("sub")
    assert back.connect(clean=True) == Connack(False, 0)
    assert back.pending == []
    pub.publish_complete("t/a", b"y", 1)
    assert back.publishes() == []  # the old subscription is gone too


def test_session_present_on_takeover_of_persistent_session() -> None:
    hub = Hub()
    hub.connected("p", clean=False)
    again = hub.client("p")
    assert again.connect(clean=False) == Connack(True, 0)


def test_v5_session_expiry_interval_makes_session_persistent() -> None:
    hub = Hub()
    sub = hub.connected("s5", level=5, clean=True, properties={0x11: 300})
    sub.subscribe(("t", 1))
    sub.disconnect()
    pub = hub.connected("pub")
    pub.publish_complete("t", b"kept", 1)
    back = hub.client("s5", level=5)
    ack = back.connect(clean=False, properties={0x11: 300})
    assert isinstance(ack, Connack) and ack.session_present
    assert [p.payload for p in back.pending if isinstance(p, Publish)] == [b"kept"]


def test_persistent_client_expiration() -> None:
    hub = Hub(persistent_client_expiration=3600)
    _offline_subscriber(hub)
    hub.advance(1800)
    assert "sub" in hub.broker.sessions
    hub.advance(1900)
    assert "sub" not in hub.broker.sessions
    assert hub.broker.stats.clients_expired == 1


def test_max_queued_bytes_drops_oldest() -> None:
    hub = Hub(max_queued_bytes=25)
    _offline_subscriber(hub)
    pub = hub.connected("pub")
    for i in range(5):
        pub.publish_complete("t/a", b"%d" % i * 10, 1, packet_id=i + 1)  # 10 bytes each
    back = hub.client("sub")
    back.connect(clean=False)
    got = [p.payload for p in back.pending if isinstance(p, Publish)]
    assert got == [b"3" * 10, b"4" * 10]
    assert hub.broker.stats.publish_dropped == 3


def test_v5_session_expires_after_its_interval() -> None:
    hub = Hub()
    sub = hub.connected("s5", level=5, clean=True, properties={0x11: 30})
    sub.subscribe(("t", 1))
    sub.drop()
    assert hub.broker.next_deadline() == hub.now + 30
    hub.advance(29)
    assert "s5" in hub.broker.sessions
    hub.advance(1)
    assert "s5" not in hub.broker.sessions
    assert "Expiring client s5 due to timeout." in hub.lines


def test_v5_session_expiry_never_unless_persistent_client_expiration() -> None:
    hub = Hub()
    sub = hub.connected("s5", level=5, clean=True, properties={0x11: 0xFFFFFFFF})
    sub.drop()
    hub.advance(10_000_000)
    assert "s5" in hub.broker.sessions
    # As in mosquitto, persistent_client_expiration caps "never" (and 3.1.1 sessions).
    capped = Hub(persistent_client_expiration=60)
    again = capped.connected("s5", level=5, clean=True, properties={0x11: 0xFFFFFFFF})
    again.drop()
    capped.advance(61)
    assert "s5" not in capped.broker.sessions


def _v5_offline(hub: Hub) -> None:
    sub = hub.connected("s5", level=5, properties={0x11: 3600})
    sub.subscribe(("t", 1))
    sub.drop()


def _publish_expiring(hub: Hub, seconds: int, retain: bool = False) -> None:
    pub = hub.connected("pub5", level=5)
    pub.send(Publish("t", b"soon gone", 1, retain, False, 1, {0x02: seconds}))


def test_v5_queued_message_carries_the_time_left() -> None:
    hub = Hub()
    _v5_offline(hub)
    _publish_expiring(hub, 10)
    hub.advance(4)
    back = hub.client("s5", level=5)
    back.connect(clean=False, properties={0x11: 3600})
    (msg,) = [p for p in back.pending if isinstance(p, Publish)]
    assert msg.payload == b"soon gone" and msg.properties[0x02] == 6


def test_v5_queued_message_expires() -> None:
    hub = Hub()
    _v5_offline(hub)
    _publish_expiring(hub, 10)
    hub.advance(11)
    back = hub.client("s5", level=5)
    back.connect(clean=False, properties={0x11: 3600})
    assert [p for p in back.pending if isinstance(p, Publish)] == []


def test_v5_retained_message_expires() -> None:
    hub = Hub()
    _publish_expiring(hub, 10, retain=True)
    assert hub.broker.retained("t") is not None
    hub.advance(11)
    late = hub.connected("late", level=5)
    late.subscribe(("t", 1))
    assert late.pending == []
    assert hub.broker.retained("t") is None


def test_v5_session_expiry_zero_ends_with_the_connection() -> None:
    hub = Hub()
    sub = hub.connected("s5", level=5, properties={0x11: 0})
    sub.subscribe(("t", 1))
    sub.drop()
    assert "s5" not in hub.broker.sessions
    pub = hub.connected("pub")
    pub.publish_complete("t", b"lost", 1)
    back = hub.client("s5", level=5)
    ack = back.connect(clean=False, properties={0x11: 60})
    assert isinstance(ack, Connack) and not ack.session_present
    assert back.pending == []


def test_persistent_client_expiration_counts_from_the_latest_disconnect() -> None:
    hub = Hub(persistent_client_expiration=100)
    _offline_subscriber(hub)
    hub.advance(90)
    back = hub.client("sub")
    assert back.connect(clean=False) == Connack(True, 0)
    hub.advance(50)  # the first deadline passes while connected
    assert "sub" in hub.broker.sessions
    back.disconnect()
    hub.advance(99)
    assert "sub" in hub.broker.sessions
    hub.advance(1)
    assert "sub" not in hub.broker.sessions
    assert "Expiring client sub due to timeout." in hub.lines


def test_v5_session_expiry_not_lengthened_by_persistent_client_expiration() -> None:
    """A 5.0 interval below persistent_client_expiration ends the session first."""
    hub = Hub(persistent_client_expiration=3600)
    hub.connected("s5", level=5, properties={0x11: 30}).drop()
    hub.advance(30)
    assert "s5" not in hub.broker.sessions


def test_v5_live_delivery_carries_the_interval_unchanged() -> None:
    hub = Hub()
    sub = hub.connected("s5", level=5)
    sub.subscribe(("t", 1))
    _publish_expiring(hub, 10)
    (msg,) = sub.publishes()
    assert msg.properties[0x02] == 10


def test_v5_message_expires_while_waiting_for_the_in_flight_window() -> None:
    """A connected client's Receive Maximum 1 keeps the second message queued; it expires
    there and is never sent, the third (no expiry) follows the first."""
    hub = Hub()
    sub = hub.connected("s5", level=5, properties={0x21: 1})
    sub.subscribe(("t", 1))
    pub = hub.connected("pub5", level=5)
    pub.send(Publish("t", b"first", 1, False, False, 1, {0x02: 100}))
    pub.send(Publish("t", b"second", 1, False, False, 2, {0x02: 10}))
    pub.send(Publish("t", b"third", 1, False, False, 3))
    (first,) = sub.publishes()
    assert first.payload == b"first"
    hub.advance(10)
    sub.send(Puback(first.packet_id or 0))
    (third,) = sub.publishes()
    assert third.payload == b"third"


def test_v5_queued_message_sent_with_the_time_left_when_the_window_opens() -> None:
    hub = Hub()
    sub = hub.connected("s5", level=5, properties={0x21: 1})
    sub.subscribe(("t", 1))
    pub = hub.connected("pub5", level=5)
    pub.send(Publish("t", b"first", 1, False, False, 1))
    pub.send(Publish("t", b"second", 1, False, False, 2, {0x02: 10}))
    (first,) = sub.publishes()
    hub.advance(7)
    sub.send(Puback(first.packet_id or 0))
    (second,) = sub.publishes()
    assert (second.payload, second.properties[0x02]) == (b"second", 3)


def test_v5_in_flight_message_resent_after_expiry() -> None:
    """Delivery had started, so MQTT 5.0 4.4 requires the resend, with the least interval
    that still means "expiring" (1: 0 means none). mosquitto 2.0.11 drops it instead
    (interop test_lifecycle.py)."""
    hub = Hub()
    sub = hub.connected("s5", level=5, properties={0x11: 600})
    sub.subscribe(("t", 1))
    _publish_expiring(hub, 10)
    (sent,) = sub.publishes()
    assert sent.properties[0x02] == 10
    sub.drop()
    hub.advance(4)
    back = hub.client("s5", level=5)
    back.connect(clean=False, properties={0x11: 600})
    (again,) = [p for p in back.pending if isinstance(p, Publish)]
    assert (again.dup, again.properties[0x02]) == (True, 6)
    back.drop()
    hub.advance(20)
    late = hub.client("s5", level=5)
    late.connect(clean=False, properties={0x11: 600})
    (last,) = [p for p in late.pending if isinstance(p, Publish)]
    assert (last.dup, last.payload, last.properties[0x02]) == (True, b"soon gone", 1)


def test_v5_retained_message_interval_counts_down() -> None:
    hub = Hub()
    _publish_expiring(hub, 10, retain=True)
    for waited, left in ((4, 6), (5, 1)):
        hub.advance(waited)
        sub = hub.connected(f"late{left}", level=5)
        sub.subscribe(("t", 1))
        (msg,) = [p for p in sub.pending if isinstance(p, Publish)]
        assert (msg.retain, msg.properties[0x02]) == (True, left)
    hub.advance(1)
    gone = hub.connected("gone", level=5)
    gone.subscribe(("t", 1))
    assert gone.pending == []


def test_v5_expiring_message_to_311_subscriber_dropped_when_expired() -> None:
    hub = Hub()
    sub = hub.connected("s4", clean=False)
    sub.subscribe(("t", 1))
    sub.disconnect()
    _publish_expiring(hub, 10)
    hub.advance(10)
    back = hub.client("s4")
    back.connect(clean=False)
    assert back.pending == []
