"""Connection and session rules over raw sockets, on mosquitto and m2mhub alike.

Client id rules, sessionPresent, QoS 2 exactly-once inbound, resending with DUP after a
reconnect, the in-flight window and the offline queue limits.
"""

from __future__ import annotations

import pytest

from tests.interop import raw
from tests.interop.conftest import Broker, BrokerFactory
from tests.interop.raw import RawClient

pytestmark = pytest.mark.interop


def publish_all(port: int, topic: str, payloads: list[bytes], qos: int = 1) -> None:
    """Publish and wait for every acknowledgement, so the broker has routed them all."""
    with RawClient(port) as p:
        p.connect("")
        for i, payload in enumerate(payloads, start=1):
            p.send(raw.publish(topic, payload, qos=qos, pid=i))
            if qos == 1:
                p.expect(raw.PUBACK)
            elif qos == 2:
                p.expect(raw.PUBREC)
                p.send(raw.ack(raw.PUBREL, i))
                p.expect(raw.PUBCOMP)
        p.send(raw.PINGREQ_BYTES)
        p.expect(raw.PINGRESP)
        p.send(raw.DISCONNECT_BYTES)


def test_empty_client_id(broker: Broker) -> None:
    with RawClient(broker.port) as c:
        assert c.connect("", clean=True).body == b"\x00\x00"
    with RawClient(broker.port) as c:
        # 3.1.1: an empty id needs a clean session; refused with "identifier rejected".
        assert c.connect("", clean=False).body == b"\x00\x02"
        assert c.wait_closed() == []
    with RawClient(broker.port, level=5) as c:
        connack = c.connect("", clean=True)
        assert connack.body[:2] == b"\x00\x00"
        assert b"\x12\x00" in connack.body  # Assigned Client Identifier property


def test_session_present_flag(broker: Broker) -> None:
    def connack(clean: bool) -> bytes:
        with RawClient(broker.port) as c:
            body = c.connect("sp", clean=clean).body
            c.send(raw.DISCONNECT_BYTES)
            c.wait_closed()
            return body

    assert connack(clean=False) == b"\x00\x00"
    assert connack(clean=False) == b"\x01\x00"
    assert connack(clean=True) == b"\x00\x00"
    assert connack(clean=False) == b"\x00\x00"


def test_qos2_inbound_exactly_once(broker: Broker) -> None:
    with RawClient(broker.port) as sub, RawClient(broker.port) as pub:
        sub.connect("x-sub")
        sub.subscribe([("flow/x", 2)])
        pub.connect("x-pub")
        pub.send(raw.publish("flow/x", b"once", qos=2, pid=5))
        assert pub.expect(raw.PUBREC).pid() == 5
        # The same PUBLISH again (DUP) before PUBREL: acknowledged, not forwarded again.
        pub.send(raw.publish("flow/x", b"once", qos=2, pid=5, dup=True))
        assert pub.expect(raw.PUBREC).pid() == 5
        pub.send(raw.ack(raw.PUBREL, 5))
        assert pub.expect(raw.PUBCOMP).pid() == 5
        pub.send(raw.publish("flow/x", b"end", qos=0))
        got = [p.publish_fields()[2] for p in sub.collect_until(b"end")]
        assert got == [b"once", b"end"]


def test_unacknowledged_qos1_resent_with_dup_on_reconnect(broker: Broker) -> None:
    with RawClient(broker.port) as sub:
        sub.connect("dup1", clean=False)
        sub.subscribe([("flow/dup", 1)])
        publish_all(broker.port, "flow/dup", [b"unacked"])
        first = sub.expect(raw.PUBLISH)
        assert not first.flags & 8
    # Gone without PUBACK; the session keeps the message in flight.
    with RawClient(broker.port) as sub:
        assert sub.connect("dup1", clean=False).body == b"\x01\x00"
        again = sub.expect(raw.PUBLISH)
        assert again.flags & 8, "resent without DUP"
        assert again.publish_fields()[1:] == first.publish_fields()[1:]
        sub.send(raw.ack(raw.PUBACK, again.publish_fields()[1]))
        sub.send(raw.DISCONNECT_BYTES)
    with RawClient(broker.port) as sub:  # acknowledged now: not sent a third time
        sub.connect("dup1", clean=False)
        publish_all(broker.port, "flow/dup", [b"end"])
        got = [p.publish_fields()[2] for p in sub.collect_until(b"end")]
        assert got == [b"end"]


def test_qos2_pubrel_resent_on_reconnect(broker: Broker) -> None:
    with RawClient(broker.port) as sub:
        sub.connect("dup2", clean=False)
        sub.subscribe([("flow/q2", 2)])
        publish_all(broker.port, "flow/q2", [b"two"], qos=2)
        pid = sub.expect(raw.PUBLISH).publish_fields()[1]
        sub.send(raw.ack(raw.PUBREC, pid))
        assert sub.expect(raw.PUBREL).pid() == pid
    # Gone before PUBCOMP: on reconnect the broker resends PUBREL, not the PUBLISH.
    with RawClient(broker.port) as sub:
        assert sub.connect("dup2", clean=False).body == b"\x01\x00"
        assert sub.expect(raw.PUBREL).pid() == pid
        sub.send(raw.ack(raw.PUBCOMP, pid))
        publish_all(broker.port, "flow/q2", [b"end"])
        got = [p.publish_fields()[2] for p in sub.collect_until(b"end")]
        assert got == [b"end"]


def test_inflight_window(make_broker: BrokerFactory) -> None:
    broker = make_broker(["max_inflight_messages 2"])
    with RawClient(broker.port) as sub:
        sub.connect("window")
        sub.subscribe([("flow/w", 1)])
        publish_all(broker.port, "flow/w", [b"m%d" % i for i in range(5)])
        first = [sub.expect(raw.PUBLISH) for _ in range(2)]
        # Everything was routed before this PINGREQ, so a third PUBLISH would come before
        # the PINGRESP if the window let it through.
        sub.send(raw.PINGREQ_BYTES)
        assert sub.read().ptype == raw.PINGRESP
        got = [p.publish_fields()[2] for p in first]
        for pkt in first:
            sub.send(raw.ack(raw.PUBACK, pkt.publish_fields()[1]))
        got += [p.publish_fields()[2] for p in sub.collect_until(b"m4")]
        assert got == [b"m0", b"m1", b"m2", b"m3", b"m4"]


def test_offline_queue_limit(make_broker: BrokerFactory) -> None:
    broker = make_broker(["max_queued_messages 3"])
    with RawClient(broker.port) as sub:
        sub.connect("limited", clean=False)
        sub.subscribe([("flow/q", 1)])
        sub.send(raw.DISCONNECT_BYTES)
    publish_all(broker.port, "flow/q", [b"m%d" % i for i in range(6)])
    with RawClient(broker.port) as sub:
        sub.connect("limited", clean=False)
        publish_all(broker.port, "flow/q", [b"end"])
        got = [p.publish_fields()[2] for p in sub.collect_until(b"end")]
    if broker.kind == "m2mhub":
        assert got == [b"m3", b"m4", b"m5", b"end"]  # issue 2: the oldest are dropped first
    else:
        assert got == [b"m0", b"m1", b"m2", b"end"]  # mosquitto 2.0.11 drops the newest


def test_queue_qos0_messages(make_broker: BrokerFactory) -> None:
    broker = make_broker(["queue_qos0_messages true"])
    with RawClient(broker.port) as sub:
        sub.connect("q0", clean=False)
        sub.subscribe([("flow/q0", 1)])
        sub.send(raw.DISCONNECT_BYTES)
    publish_all(broker.port, "flow/q0", [b"zero"], qos=0)
    with RawClient(broker.port) as sub:
        sub.connect("q0", clean=False)
        publish_all(broker.port, "flow/q0", [b"end"])
        got = [(p.qos, p.publish_fields()[2]) for p in sub.collect_until(b"end")]
        assert got == [(0, b"zero"), (1, b"end")]


def test_max_keepalive_v5_server_keep_alive(make_broker: BrokerFactory) -> None:
    broker = make_broker(["max_keepalive 10"])
    with RawClient(broker.port, level=5) as c:
        connack = c.connect("ka", keepalive=60)
        assert connack.body[:2] == b"\x00\x00"
        assert b"\x13\x00\x0a" in connack.body  # Server Keep Alive: 10


@pytest.mark.parametrize("level", [4, 5], ids=["3.1.1", "5.0"])
def test_takeover_closes_the_old_connection(broker: Broker, level: int) -> None:
    with RawClient(broker.port, level) as old, RawClient(broker.port, level) as new:
        assert old.connect("twin").body[1] == 0
        assert new.connect("twin").body[1] == 0
        seen = old.wait_closed()
        if level == 4 or broker.kind == "mosquitto":  # mosquitto 2.0.11 just closes
            assert seen == []
        else:  # DISCONNECT "Session taken over"
            assert [(p.ptype, p.body[:1]) for p in seen] == [(raw.DISCONNECT, b"\x8e")]
        new.send(raw.PINGREQ_BYTES)
        assert new.expect(raw.PINGRESP)


@pytest.mark.parametrize("level", [4, 5], ids=["3.1.1", "5.0"])
def test_takeover_publishes_the_old_connections_will(broker: Broker, level: int) -> None:
    with RawClient(broker.port) as watcher:
        watcher.connect("will-watcher")
        watcher.subscribe([("flow/will/#", 1)])
        with RawClient(broker.port, level) as old, RawClient(broker.port, level) as new:
            old.connect("twin-will", will=("flow/will/t", b"old will", 1, False))
            new.connect("twin-will")
            old.wait_closed()
            watcher.send(raw.publish("flow/will/end", b"end"))
            got = [p.publish_fields()[2] for p in watcher.collect_until(b"end")]
            assert got == [b"old will", b"end"]


@pytest.mark.parametrize("level", [4, 5], ids=["3.1.1", "5.0"])
def test_retain_unavailable(make_broker: BrokerFactory, level: int) -> None:
    broker = make_broker(["retain_available false"])
    with RawClient(broker.port, level) as c:
        c.connect("retainer")
        c.send(raw.publish("flow/r", b"x", retain=True, level=level))
        seen = c.wait_closed()
        if level == 4:
            assert seen == []
        else:  # DISCONNECT "Retain not supported"
            assert [(p.ptype, p.body[:1]) for p in seen] == [(raw.DISCONNECT, b"\x9a")]


@pytest.mark.parametrize(("reason", "will_sent"), [(0x00, False), (0x04, True)])
def test_v5_disconnect_reason_decides_the_will(
    broker: Broker, reason: int, will_sent: bool
) -> None:
    with RawClient(broker.port) as watcher:
        watcher.connect("v5-will-watcher")
        watcher.subscribe([("flow/v5will/#", 1)])
        with RawClient(broker.port, level=5) as c:
            c.connect("v5-will", will=("flow/v5will/t", b"will", 1, False))
            c.send(raw.packet(raw.DISCONNECT, 0, bytes([reason, 0])))
            c.wait_closed()
        watcher.send(raw.publish("flow/v5will/end", b"end"))
        got = [p.publish_fields()[2] for p in watcher.collect_until(b"end")]
        assert got == ([b"will"] if will_sent else []) + [b"end"]
