"""Shared subscriptions ``$share/{group}/{filter}``: round robin, QoS, retained, leaving."""

from __future__ import annotations

import pytest

from m2mhub.mqtt.packets import Disconnect, Publish, Suback, Subscribe, SubscriptionOptions
from tests.hub.harness import Client, Hub


def _payloads(client: Client) -> list[bytes]:
    return [p.payload for p in client.publishes()]


def test_round_robin_within_a_group_and_each_group_gets_every_message() -> None:
    hub = Hub()
    a = hub.connected("a", level=5)
    b = hub.connected("b", level=5)
    c = hub.connected("c", level=5)
    other = hub.connected("other", level=5)
    plain = hub.connected("plain", level=5)
    for member in (a, b, c):
        member.subscribe(("$share/g/s/+", 0))
    other.subscribe(("$share/h/s/#", 0))
    plain.subscribe(("s/x", 0))
    pub = hub.connected("pub", level=5)
    for i in range(6):
        pub.publish("s/x", str(i).encode())
    assert _payloads(a) == [b"0", b"3"]
    assert _payloads(b) == [b"1", b"4"]
    assert _payloads(c) == [b"2", b"5"]
    assert _payloads(other) == [str(i).encode() for i in range(6)]
    assert len(_payloads(plain)) == 6


def test_member_qos_honoured() -> None:
    hub = Hub()
    q1 = hub.connected("q1", level=5)
    q0 = hub.connected("q0", level=5)
    q1.subscribe(("$share/g/t", 1))
    q0.subscribe(("$share/g/t", 0))
    pub = hub.connected("pub", level=5)
    pub.publish_complete("t", b"first", 2, packet_id=1)
    pub.publish_complete("t", b"second", 2, packet_id=2)
    assert [(p.payload, p.qos) for p in q1.publishes()] == [(b"first", 1)]
    assert [(p.payload, p.qos) for p in q0.publishes()] == [(b"second", 0)]


def test_no_retained_messages_on_shared_subscribe() -> None:
    hub = Hub()
    hub.connected("pub", level=5).publish("t", b"kept", retain=True)
    sub = hub.connected("sub", level=5)
    assert sub.subscribe(("$share/g/t", 1)).reason_codes == [1]
    assert [p for p in sub.pending if isinstance(p, Publish)] == []


def test_unsubscribe_and_disconnect_leave_the_group() -> None:
    hub = Hub()
    a = hub.connected("a", level=5)
    b = hub.connected("b", level=5)
    a.subscribe(("$share/g/t", 0))
    b.subscribe(("$share/g/t", 0))
    pub = hub.connected("pub", level=5)
    got = a.unsubscribe("$share/g/t")
    assert got and got[0].reason_codes == [0]  # type: ignore[attr-defined]
    pub.publish("t", b"1")
    pub.publish("t", b"2")
    assert _payloads(a) == []
    assert _payloads(b) == [b"1", b"2"]
    b.send(Disconnect())
    assert hub.broker.shared == {}
    assert hub.broker.tree.match("t") == []


def test_offline_member_skipped_while_another_is_connected() -> None:
    hub = Hub()
    gone = hub.connected("gone", level=5, clean=False, properties={0x11: 300})
    here = hub.connected("here", level=5)
    gone.subscribe(("$share/g/t", 1))
    here.subscribe(("$share/g/t", 1))
    gone.drop()
    pub = hub.connected("pub", level=5)
    for i in range(3):
        pub.publish_complete("t", str(i).encode(), 1, packet_id=i + 1)
    assert _payloads(here) == [b"0", b"1", b"2"]


def test_subscription_identifier_of_the_member() -> None:
    hub = Hub()
    a = hub.connected("a", level=5)
    a.send(Subscribe(1, [("$share/g/t", SubscriptionOptions(qos=0))], {0x0B: [9]}))
    assert isinstance(a.received()[0], Suback)
    hub.connected("pub", level=5).publish("t", b"m")
    assert [p.properties.get(0x0B) for p in a.publishes()] == [[9]]


def test_no_local_on_shared_subscription_is_a_protocol_error() -> None:
    hub = Hub()
    a = hub.connected("a", level=5)
    a.send(Subscribe(1, [("$share/g/t", SubscriptionOptions(qos=0, no_local=True))]))
    got = a.received()
    assert isinstance(got[-1], Disconnect) and got[-1].reason_code == 0x82
    assert a.closed


def test_unacknowledged_messages_move_when_a_member_leaves() -> None:
    hub = Hub()
    a = hub.connected("a", level=5)
    b = hub.connected("b", level=5)
    a.subscribe(("$share/g/t", 1))
    b.subscribe(("$share/g/t", 1))
    pub = hub.connected("pub", level=5)
    for i in range(4):
        pub.publish_complete("t", str(i).encode(), 1, packet_id=i + 1)
    assert _payloads(a) == [b"0", b"2"]  # never acknowledged
    assert _payloads(b) == [b"1", b"3"]
    a.drop()  # clean session: it ends, and its unacknowledged messages go to b
    assert [(p.payload, p.qos) for p in b.publishes()] == [(b"0", 1), (b"2", 1)]


def test_unsubscribe_moves_only_that_groups_messages() -> None:
    hub = Hub()
    a = hub.connected("a", level=5)
    b = hub.connected("b", level=5)
    a.subscribe(("$share/g/t", 1), ("plain", 1))
    b.subscribe(("$share/g/t", 1))
    pub = hub.connected("pub", level=5)
    pub.publish_complete("t", b"shared", 1, packet_id=1)
    pub.publish_complete("plain", b"mine", 1, packet_id=2)
    assert _payloads(a) == [b"shared", b"mine"]
    a.unsubscribe("$share/g/t")
    assert _payloads(b) == [b"shared"]
    assert hub.broker.sessions["a"].inflight and len(hub.broker.sessions["a"].inflight) == 1


@pytest.mark.parametrize(
    "topic_filter", ["$share/g+/x", "$share/g", "$share//x", "$share/g/", "$share/g/a/#/b"]
)
def test_malformed_shared_filter_gets_0x8f_and_the_rest_is_granted(topic_filter: str) -> None:
    hub = Hub()
    sub = hub.connected("sub", level=5)
    ack = sub.subscribe((topic_filter, 1), ("plain/x", 1))
    assert ack.reason_codes == [0x8F, 1]
    assert sum("refused subscription" in line for line in hub.lines) == 1
    pub = hub.connected("pub")
    pub.publish("plain/x", b"m")
    assert [p.payload for p in sub.publishes()] == [b"m"]


def test_malformed_shared_filter_in_3_1_1_gets_0x80() -> None:
    hub = Hub()
    sub = hub.connected("sub")
    assert sub.subscribe(("$share/g", 1), ("plain/x", 0)).reason_codes == [0x80, 0]
