"""QoS 0/1/2 in both directions, in-flight window, DUP resend, QoS 2 exactly once."""

from __future__ import annotations

import pytest

from m2mhub.mqtt.packets import Puback, Pubcomp, Publish, Pubrec, Pubrel
from tests.hub.harness import Hub


@pytest.mark.parametrize("pub_qos", [0, 1, 2])
@pytest.mark.parametrize("sub_qos", [0, 1, 2])
def test_delivered_at_min_of_publish_and_subscription_qos(pub_qos: int, sub_qos: int) -> None:
    hub = Hub()
    sub = hub.connected("sub")
    sub.subscribe(("t/x", sub_qos))
    pub = hub.connected("pub")
    pub.publish_complete("t/x", b"hello", pub_qos)
    got = sub.publishes()
    assert len(got) == 1
    msg = got[0]
    assert (msg.topic, msg.payload, msg.qos, msg.retain, msg.dup) == (
        "t/x",
        b"hello",
        min(pub_qos, sub_qos),
        False,
        False,
    )
    assert (msg.packet_id is None) == (msg.qos == 0)


def test_qos1_log_lines_match_mosquitto() -> None:
    hub = Hub()
    sub = hub.connected("Sub1", clean=False)
    sub.subscribe(("test/message", 1))
    pub = hub.connected("X")
    start = len(hub.lines)
    pub.publish("test/message", b"MESSAGE 1", qos=1, packet_id=1)
    sub.send(Puback(1))
    assert hub.lines[start:] == [
        "Received PUBLISH from X (d0, q1, r0, m1, 'test/message', ... (9 bytes))",
        "Sending PUBLISH to Sub1 (d0, q1, r0, m1, 'test/message', ... (9 bytes))",
        "Sending PUBACK to X (m1, rc0)",
        "Received PUBACK from Sub1 (Mid: 1, RC:0)",
    ]


def test_qos2_outbound_flow() -> None:
    hub = Hub()
    sub = hub.connected("sub")
    sub.subscribe(("t", 2))
    pub = hub.connected("pub")
    pub.publish_complete("t", b"m", 2)
    (msg,) = sub.publishes()
    assert msg.qos == 2 and msg.packet_id is not None
    sub.send(Pubrec(msg.packet_id))
    assert sub.received() == [Pubrel(msg.packet_id)]
    sub.send(Pubcomp(msg.packet_id))
    assert sub.received() == []
    assert not sub.conn.session.inflight  # type: ignore[union-attr]


def test_qos2_inbound_exactly_once() -> None:
    hub = Hub()
    sub = hub.connected("sub")
    sub.subscribe(("t", 2))
    pub = hub.connected("pub")
    assert pub.publish("t", b"once", qos=2, packet_id=5) == [Pubrec(5)]
    # The publisher did not see the PUBREC and sends again with DUP: no second copy.
    assert pub.publish("t", b"once", qos=2, packet_id=5, dup=True) == [Pubrec(5)]
    assert sub.publishes() == []  # released only by PUBREL, as mosquitto does
    pub.send(Pubrel(5))
    assert pub.received() == [Pubcomp(5)]
    assert [p.payload for p in sub.publishes()] == [b"once"]
    # A repeated PUBREL is answered but forwards nothing.
    pub.send(Pubrel(5))
    assert pub.received() == [Pubcomp(5)]
    assert sub.publishes() == []


def test_inflight_window_queues_the_rest() -> None:
    hub = Hub(max_inflight_messages=2)
    sub = hub.connected("sub")
    sub.subscribe(("t", 1))
    pub = hub.connected("pub")
    for i in range(5):
        pub.publish_complete("t", b"%d" % i, 1, packet_id=i + 1)
    first = sub.publishes()
    assert [p.payload for p in first] == [b"0", b"1"]
    sub.send(Puback(first[0].packet_id or 0))
    assert [p.payload for p in sub.publishes()] == [b"2"]
    sub.send(Puback(first[1].packet_id or 0))
    nxt = sub.publishes()
    assert [p.payload for p in nxt] == [b"3"]
    sub.send(Puback(nxt[0].packet_id or 0))
    assert [p.payload for p in sub.publishes()] == [b"4"]


def test_qos0_not_held_back_by_full_window() -> None:
    hub = Hub(max_inflight_messages=1)
    sub = hub.connected("sub")
    sub.subscribe(("t", 1))
    pub = hub.connected("pub")
    pub.publish_complete("t", b"a", 1, packet_id=1)
    pub.publish_complete("t", b"b", 1, packet_id=2)
    pub.publish("t", b"c", 0)
    assert [p.payload for p in sub.publishes()] == [b"a", b"c"]


def test_unacked_resent_with_dup_on_reconnect() -> None:
    hub = Hub()
    sub = hub.connected("sub", clean=False)
    sub.subscribe(("t", 2))
    pub = hub.connected("pub")
    pub.publish_complete("t", b"one", 1, packet_id=1)
    pub.publish_complete("t", b"two", 2, packet_id=2)
    one, two = sub.publishes()
    assert not one.dup and not two.dup
    sub.send(Pubrec(two.packet_id or 0))
    assert sub.received() == [Pubrel(two.packet_id or 0)]
    sub.drop()
    back = hub.client("sub")
    ack = back.connect(clean=False)
    assert ack is not None and ack.session_present  # type: ignore[union-attr]
    again = back.pending
    assert again == [
        Publish("t", b"one", 1, False, True, one.packet_id),
        Pubrel(two.packet_id or 0),
    ]
    back.send(Puback(one.packet_id or 0))
    back.send(Pubcomp(two.packet_id or 0))
    assert not back.conn.session.inflight  # type: ignore[union-attr]


def test_outgoing_packet_ids_skip_ids_in_flight() -> None:
    hub = Hub()
    sub = hub.connected("sub")
    sub.subscribe(("t", 1))
    session = sub.conn.session
    assert session is not None
    session.next_mid = 65534
    pub = hub.connected("pub")
    for i in range(3):
        pub.publish_complete("t", b"x", 1, packet_id=i + 1)
    assert [p.packet_id for p in sub.publishes()] == [65535, 1, 2]


def test_upgrade_outgoing_qos() -> None:
    hub = Hub(upgrade_outgoing_qos=True)
    sub = hub.connected("sub")
    sub.subscribe(("t", 2))
    pub = hub.connected("pub")
    pub.publish("t", b"up", 0)
    assert [(p.payload, p.qos) for p in sub.publishes()] == [(b"up", 2)]


def test_puback_says_no_matching_subscribers_to_a_5_0_publisher() -> None:
    """0x10 when nobody is subscribed (as mosquitto); 0 with a subscriber, and always in 3.1.1."""
    hub = Hub()
    pub5 = hub.connected("pub5", level=5)
    pub4 = hub.connected("pub4")
    start = len(hub.lines)
    (ack,) = pub5.publish("t/none", b"x", qos=1, packet_id=1)
    assert ack.reason_code == 0x10
    assert "Sending PUBACK to pub5 (m1, rc16)" in hub.lines[start:]
    (ack,) = pub4.publish("t/none", b"x", qos=1, packet_id=1)
    assert isinstance(ack, Puback) and ack.reason_code == 0
    (rec,) = pub5.publish("t/none", b"x", qos=2, packet_id=2)
    assert isinstance(rec, Pubrec) and rec.reason_code == 0
    sub = hub.connected("sub")
    sub.subscribe(("t/some", 0))
    (ack,) = pub5.publish("t/some", b"x", qos=1, packet_id=3)
    assert ack.reason_code == 0
