"""MQTT 5.0 reason codes on acknowledgements from and to the broker, with the fake clock.

A 5.0 receiver may refuse a message in its PUBACK or PUBREC (reason code 0x80 or above): the
flow ends there, without PUBREL, and its Receive Maximum slot is free again (MQTT 5.0 3.4.2.1,
3.5.2.1, 4.3.3, 4.9). Acknowledgements for packet identifiers the broker does not know get
0x92 Packet Identifier not found in 5.0, and the plain packet in 3.1.1. A shared subscription
member that leaves hands on only what it has not acknowledged.
"""

from __future__ import annotations

from m2mhub.mqtt.packets import Puback, Pubcomp, Pubrec, Pubrel
from tests.hub.harness import Hub

RECEIVE_MAXIMUM = 0x21
UNSPECIFIED_ERROR = 0x80
QUOTA_EXCEEDED = 0x97
NOT_FOUND = 0x92


def test_pubrec_with_an_error_code_ends_the_flow_and_frees_the_slot() -> None:
    hub = Hub()
    sub = hub.connected("sub5", level=5, properties={RECEIVE_MAXIMUM: 1})
    sub.subscribe(("t", 2))
    pub = hub.connected("pub")
    pub.publish_complete("t", b"refused", 2, packet_id=1)
    pub.publish_complete("t", b"next", 2, packet_id=2)
    (first,) = sub.publishes()  # Receive Maximum 1: the second waits
    assert first.payload == b"refused"
    sub.send(Pubrec(first.packet_id, UNSPECIFIED_ERROR))
    # No PUBREL for a refused message; the next one takes the slot.
    (second,) = sub.received()
    assert getattr(second, "payload", None) == b"next"
    sub.send(Pubrec(second.packet_id))
    assert sub.received() == [Pubrel(second.packet_id)]
    sub.send(Pubcomp(second.packet_id))
    assert sub.received() == []
    assert not sub.conn.session.inflight  # type: ignore[union-attr]
    assert not sub.closed


def test_puback_with_an_error_code_ends_the_flow_and_frees_the_slot() -> None:
    hub = Hub()
    sub = hub.connected("sub5", level=5, properties={RECEIVE_MAXIMUM: 1})
    sub.subscribe(("t", 1))
    pub = hub.connected("pub")
    pub.publish_complete("t", b"refused", 1, packet_id=1)
    pub.publish_complete("t", b"next", 1, packet_id=2)
    (first,) = sub.publishes()
    sub.send(Puback(first.packet_id, QUOTA_EXCEEDED))
    (second,) = sub.publishes()
    assert second.payload == b"next"
    sub.send(Puback(second.packet_id))
    assert sub.received() == []
    assert not sub.conn.session.inflight  # type: ignore[union-attr]


def test_refused_message_is_not_resent_after_reconnect() -> None:
    hub = Hub()
    sub = hub.connected("sub5", level=5, clean=False, properties={0x11: 600})
    sub.subscribe(("t", 1))
    pub = hub.connected("pub")
    pub.publish_complete("t", b"refused", 1, packet_id=1)
    (first,) = sub.publishes()
    sub.send(Puback(first.packet_id, UNSPECIFIED_ERROR))
    sub.drop()
    again = hub.client("sub5", level=5)
    again.connect(clean=False, properties={0x11: 600})
    assert again.publishes() == []


def test_unknown_packet_ids_get_0x92_in_5_0_and_plain_acks_in_3_1_1() -> None:
    hub = Hub()
    c5 = hub.connected("c5", level=5)
    c5.send(Pubrel(77))
    assert c5.received() == [Pubcomp(77, NOT_FOUND)]
    c5.send(Pubrec(78))
    assert c5.received() == [Pubrel(78, NOT_FOUND)]
    assert not c5.closed
    c4 = hub.connected("c4")
    c4.send(Pubrel(77))
    assert c4.received() == [Pubcomp(77)]
    c4.send(Pubrec(78))
    assert c4.received() == [Pubrel(78)]


def test_shared_member_leaving_keeps_qos2_messages_it_already_has() -> None:
    """Moving a leaving member's in-flight messages must not break exactly once: a QoS 2
    message it acknowledged with PUBREC is its own (MQTT 5.0 4.3.3), only the others move."""
    hub = Hub()
    a = hub.connected("a", level=5)
    b = hub.connected("b", level=5)
    a.subscribe(("$share/g/t", 2))
    b.subscribe(("$share/g/t", 2))
    pub = hub.connected("pub", level=5)
    for i in range(4):
        pub.publish_complete("t", str(i).encode(), 2, packet_id=i + 1)
    got_a = a.publishes()
    assert [p.payload for p in got_a] == [b"0", b"2"]
    assert [p.payload for p in b.publishes()] == [b"1", b"3"]
    a.send(Pubrec(got_a[0].packet_id))
    assert a.received() == [Pubrel(got_a[0].packet_id)]
    a.drop()  # session ends: "2" was never acknowledged, "0" was
    assert [(p.payload, p.qos) for p in b.publishes()] == [(b"2", 2)]


def test_a_message_a_shared_member_refused_goes_to_nobody_else() -> None:
    """MQTT-4.8.2-6: a PUBACK or PUBREC with 0x80 or above from a shared subscription member
    discards the message; it is not tried on another member, not even when the refusing one
    leaves."""
    hub = Hub()
    a = hub.connected("a", level=5)
    b = hub.connected("b", level=5)
    a.subscribe(("$share/g/t", 1))
    b.subscribe(("$share/g/t", 2))
    pub = hub.connected("pub", level=5)
    pub.publish_complete("t", b"first", 1, packet_id=1)
    pub.publish_complete("t", b"second", 2, packet_id=2)
    (to_a,) = a.publishes()
    (to_b,) = b.publishes()
    a.send(Puback(to_a.packet_id, UNSPECIFIED_ERROR))
    b.send(Pubrec(to_b.packet_id, UNSPECIFIED_ERROR))
    assert b.received() == []  # no PUBREL for a refused message
    a.drop()
    assert b.publishes() == []  # "first" is not handed on
    c = hub.connected("c", level=5)
    c.subscribe(("$share/g/t", 1))
    b.drop()
    assert c.publishes() == []  # nor is "second"
    c.drop()
    c = hub.connected("c", level=5)
    c.subscribe(("$share/g/t", 1))
    assert c.publishes() == []
