"""Bad input: the offender is closed (3.1.1) or told why (5.0), one log line names it, and
nobody else notices -- other clients keep working and no queued message is lost."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.mqtt.packets import Connack, Disconnect, Pingreq, Publish
from tests.hub.harness import Hub

# (name, bytes sent after a successful CONNECT, 5.0 reason code expected in DISCONNECT)
BAD_PACKETS = [
    ("reserved packet type 0", b"\x00\x00", 0x81),
    ("reserved flags on SUBSCRIBE", b"\x80\x06\x00\x01\x00\x01a\x00", 0x81),
    ("PUBLISH with QoS 3", b"\x36\x05\x00\x01a\x00\x01", 0x81),
    ("wildcard in PUBLISH topic", b"\x30\x05\x00\x03a/+", 0x90),
    ("invalid subscription filter", b"\x82\x07\x00\x01\x00\x02a#\x00", 0x8F),
    ("packet id 0 in PUBLISH", b"\x32\x05\x00\x01a\x00\x00", 0x82),
    ("remaining length too long", b"\x30\xff\xff\xff\xff\x01", 0x81),
    ("second CONNECT", b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01x", 0x82),
    ("SUBSCRIBE without filters", b"\x82\x03\x00\x01\x00", 0x82),
]


def _v5_variant(data: bytes) -> bytes:
    """The same packet for a 5.0 connection (property length byte where needed)."""
    if data[:1] == b"\x82" and len(data) > 5:
        body = data[2:4] + b"\x00" + data[4:]
        return bytes((0x82, len(body))) + body
    if data[:1] in (b"\x10",):
        return b"\x10\x0e\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x01x"
    return data


def _bystanders(hub: Hub):  # type: ignore[no-untyped-def]
    """A live subscriber, a live publisher, and a persistent session with a queued message."""
    live = hub.connected("live")
    live.subscribe(("news", 1))
    away = hub.connected("away", clean=False)
    away.subscribe(("news", 1))
    away.disconnect()
    pub = hub.connected("pub")
    pub.publish_complete("news", b"before", 1)
    assert [p.payload for p in live.publishes()] == [b"before"]
    return live, pub


def _check_bystanders(hub: Hub, live, pub) -> None:  # type: ignore[no-untyped-def]
    pub.publish_complete("news", b"after", 1, packet_id=9)
    assert [p.payload for p in live.publishes()] == [b"after"]
    back = hub.client("away")
    assert back.connect(clean=False) == Connack(True, 0)
    got = [p.payload for p in back.pending if isinstance(p, Publish)]
    assert got == [b"before", b"after"]


@pytest.mark.parametrize(("name", "data", "code"), BAD_PACKETS, ids=[b[0] for b in BAD_PACKETS])
def test_bad_packet_311(name: str, data: bytes, code: int) -> None:
    hub = Hub()
    live, pub = _bystanders(hub)
    bad = hub.connected("bad")
    start = len(hub.lines)
    bad.send_bytes(data)
    assert bad.closed
    assert bad.received() == []  # 3.1.1: a plain close
    notices = [line for line in hub.lines[start:] if "Client bad disconnected due to" in line]
    assert len(notices) == 1, hub.lines[start:]
    _check_bystanders(hub, live, pub)


@pytest.mark.parametrize(("name", "data", "code"), BAD_PACKETS, ids=[b[0] for b in BAD_PACKETS])
def test_bad_packet_v5_gets_disconnect_with_reason(name: str, data: bytes, code: int) -> None:
    hub = Hub()
    live, pub = _bystanders(hub)
    bad = hub.connected("bad", level=5)
    start = len(hub.lines)
    bad.send_bytes(_v5_variant(data))
    assert bad.closed
    (disconnect,) = bad.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == code
    notices = [line for line in hub.lines[start:] if "Client bad disconnected due to" in line]
    assert len(notices) == 1, hub.lines[start:]
    # The Reason String says what the log line says.
    assert notices[0].endswith(f"({disconnect.properties[0x1F]}).")
    _check_bystanders(hub, live, pub)


def test_byte_at_a_time_is_the_same_as_all_at_once() -> None:
    hub = Hub()
    sub = hub.connected("sub")
    sub.subscribe(("t", 1))
    slow = hub.client("slow")
    from m2mhub.mqtt.codec import encode
    from m2mhub.mqtt.packets import Connect, Subscribe, SubscriptionOptions

    stream = (
        encode(Connect(client_id="slow"), 4)
        + encode(Publish("t", b"drip", 1, packet_id=3), 4)
        + encode(Subscribe(4, [("x", SubscriptionOptions(qos=0))]), 4)
    )
    for i in range(len(stream)):
        slow.send_bytes(stream[i : i + 1])
    assert [p.payload for p in sub.publishes()] == [b"drip"]
    assert len(slow.received()) == 3  # CONNACK, PUBACK, SUBACK


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.integers(min_value=1, max_value=17))
def test_random_garbage_never_crashes_the_broker(garbage: bytes, chunk: int) -> None:
    hub = Hub()
    live = hub.connected("live")
    live.subscribe(("t", 0))
    fuzz = hub.connected("fuzz")
    for i in range(0, len(garbage), chunk):
        fuzz.send_bytes(garbage[i : i + chunk])
    hub.advance(1)
    pub = hub.connected("pub2")
    pub.publish("t", b"ok")
    assert [p.payload for p in live.publishes()][-1:] == [b"ok"]


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=100))
def test_random_garbage_before_connect(garbage: bytes) -> None:
    hub = Hub()
    c = hub.client("g")
    c.send_bytes(garbage)
    hub.advance(40)
    assert c.closed or c.conn.state == 1


def test_internal_error_costs_one_connection_only() -> None:
    hub = Hub()
    live, pub = _bystanders(hub)
    victim = hub.connected("victim")

    def explode(*_args: object) -> None:
        raise RuntimeError("boom")

    hub.broker._handlers[type(Pingreq())] = explode
    victim.send(Pingreq())
    assert victim.closed
    assert hub.lines[-1] == "Client victim disconnected due to internal error (RuntimeError: boom)."
    del hub.broker._handlers[type(Pingreq())]
    hub.broker._handlers[Pingreq] = hub.broker._on_pingreq
    _check_bystanders(hub, live, pub)
