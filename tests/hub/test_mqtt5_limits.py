"""MQTT 5 limits: our Receive Maximum (0x93), our Maximum Packet Size (``max_packet_size``,
0x95), our Topic Alias Maximum for inbound aliases (0x94, 0x82), and the client's Maximum
Packet Size for what we send (live, retained, queued, resent: dropped with a notice)."""

from __future__ import annotations

import pytest

from m2mhub.mqtt.codec import encode
from m2mhub.mqtt.packets import Connack, Disconnect, Publish, Pubrec, Pubrel
from tests.hub.harness import Client, Hub

PROP_RECEIVE_MAXIMUM = 0x21
PROP_TOPIC_ALIAS_MAXIMUM = 0x22
PROP_TOPIC_ALIAS = 0x23
PROP_MAXIMUM_PACKET_SIZE = 0x27
PROP_SESSION_EXPIRY = 0x11


def _connack(hub: Hub, level: int = 5) -> Connack:
    ack = hub.client("c", level).connect()
    assert isinstance(ack, Connack)
    return ack


def _disconnected_with(client: Client, code: int) -> None:
    got = client.received()
    assert [type(p) for p in got][-1:] == [Disconnect], got
    assert isinstance(got[-1], Disconnect) and got[-1].reason_code == code
    assert client.closed


def _failure_lines(hub: Hub, client_id: str) -> list[str]:
    return [line for line in hub.lines if line.startswith(f"Client {client_id} disconnected due")]


# ------------------------------------------------------------------ CONNACK


def test_connack_advertises_our_limits_like_mosquitto() -> None:
    """mosquitto 2.0.11 with ``max_packet_size 200``: 0x22 = 10, 0x27 = 200, 0x21 = 20."""
    props = _connack(Hub(max_packet_size=200)).properties
    assert props[PROP_TOPIC_ALIAS_MAXIMUM] == 10
    assert props[PROP_MAXIMUM_PACKET_SIZE] == 200
    assert props[PROP_RECEIVE_MAXIMUM] == 20


def test_connack_without_max_packet_size_names_none() -> None:
    assert PROP_MAXIMUM_PACKET_SIZE not in _connack(Hub()).properties


def test_receive_maximum_follows_max_inflight_messages() -> None:
    assert _connack(Hub(max_inflight_messages=5)).properties[PROP_RECEIVE_MAXIMUM] == 5
    # 0 means no limit: the protocol's default (65,535) applies and is not sent.
    assert PROP_RECEIVE_MAXIMUM not in _connack(Hub(max_inflight_messages=0)).properties


# ------------------------------------------------------------------ Receive Maximum


def _qos2(client: Client, mid: int, payload: bytes = b"x", dup: bool = False) -> list[object]:
    client.send(Publish("t", payload, 2, dup=dup, packet_id=mid))
    return list(client.received())


def test_one_more_unreleased_qos2_than_receive_maximum_is_0x93() -> None:
    hub = Hub(max_inflight_messages=3)
    sub = hub.connected("sub")
    sub.subscribe(("t", 2))
    pub = hub.connected("pub", level=5)
    for mid in (1, 2, 3):
        assert [type(p) for p in _qos2(pub, mid)] == [Pubrec]
    pub.send(Publish("t", b"4", 2, packet_id=4))
    _disconnected_with(pub, 0x93)
    assert len(_failure_lines(hub, "pub")) == 1
    assert "unacknowledged" in _failure_lines(hub, "pub")[0]
    # The subscriber is untouched and the broker carries on.
    assert not sub.closed
    other = hub.connected("other")
    other.publish("t", b"fine", qos=0)
    assert [p.payload for p in sub.publishes()] == [b"fine"]


def test_released_flows_free_the_quota_and_resends_do_not_count() -> None:
    hub = Hub(max_inflight_messages=2)
    pub = hub.connected("pub", level=5)
    _qos2(pub, 1)
    _qos2(pub, 2)
    # A resent PUBLISH (DUP) of a flow already counted is not a new one.
    assert [type(p) for p in _qos2(pub, 2, dup=True)] == [Pubrec]
    pub.send(Pubrel(1))
    pub.received()
    assert [type(p) for p in _qos2(pub, 3)] == [Pubrec]
    assert not pub.closed


def test_receive_maximum_starts_afresh_on_each_connection() -> None:
    """MQTT 5 4.9: the send quota is re-initialised per connection, so QoS 2 flows left over
    from the previous connection do not count; they still complete with PUBREL."""
    hub = Hub(max_inflight_messages=2)
    props = {PROP_SESSION_EXPIRY: 60}
    pub = hub.connected("pub", level=5, properties=props)
    _qos2(pub, 1)
    _qos2(pub, 2)
    pub.drop()
    again = hub.client("pub", level=5)
    ack = again.connect(clean=False, properties=props)
    assert isinstance(ack, Connack) and ack.session_present
    assert [type(p) for p in _qos2(again, 3)] == [Pubrec]
    again.send(Pubrel(1))  # an old flow completes: the quota of this connection is unchanged
    again.received()
    assert [type(p) for p in _qos2(again, 4)] == [Pubrec]
    again.send(Publish("t", b"5", 2, packet_id=5))
    _disconnected_with(again, 0x93)


def test_311_clients_are_not_held_to_a_receive_maximum_they_were_never_told() -> None:
    hub = Hub(max_inflight_messages=2)
    pub = hub.connected("pub")
    for mid in range(1, 6):
        assert [type(p) for p in _qos2(pub, mid)] == [Pubrec]
    assert not pub.closed


# ------------------------------------------------------------------ Maximum Packet Size (ours)


@pytest.mark.parametrize("level", [4, 5], ids=["3.1.1", "5.0"])
def test_packet_over_max_packet_size_disconnects(level: int) -> None:
    hub = Hub(max_packet_size=50)
    sub = hub.connected("sub")
    sub.subscribe(("t", 0))
    big = hub.connected("big", level=level)
    fits = encode(Publish("t", b"x" * 40), level)
    assert len(fits) <= 50
    big.send_bytes(fits)
    assert [p.payload for p in sub.publishes()] == [b"x" * 40]
    big.send(Publish("t", b"x" * 60))
    if level == 5:
        _disconnected_with(big, 0x95)
    else:
        assert big.received() == [] and big.closed
    [line] = _failure_lines(hub, "big")
    assert "oversize packet" in line
    assert sub.publishes() == [] and not sub.closed


def test_oversize_packet_refused_from_its_fixed_header() -> None:
    """The broker does not wait for (or buffer) the body of a packet announced too large."""
    hub = Hub(max_packet_size=1000)
    big = hub.connected("big", level=5)
    # PUBLISH announcing a 1 MB remaining length; only the fixed header is sent.
    big.send_bytes(b"\x30\x80\x80\x40")
    _disconnected_with(big, 0x95)
    assert big.conn.reader.buffered <= 4


def test_max_packet_size_counts_the_whole_packet() -> None:
    """Fixed header included (MQTT 5 3.1.2.11.4): exactly the limit passes, one more fails."""
    packet = encode(Publish("t", b"x" * 30), 5)
    hub = Hub(max_packet_size=len(packet))
    pub = hub.connected("pub", level=5)
    pub.send_bytes(packet)
    assert not pub.closed
    pub.send_bytes(encode(Publish("t", b"x" * 31), 5))
    _disconnected_with(pub, 0x95)


def test_oversize_connect_is_closed() -> None:
    hub = Hub(max_packet_size=30)
    c = hub.client("c" * 40, level=5)
    assert c.connect() is None
    assert c.closed
    assert len([line for line in hub.lines if "oversize packet" in line]) == 1


# ------------------------------------------------------------------ inbound topic aliases


def _alias(client: Client, topic: str, alias: int, payload: bytes = b"x") -> None:
    client.send(Publish(topic, payload, properties={PROP_TOPIC_ALIAS: alias}))


def test_inbound_alias_is_set_then_used() -> None:
    hub = Hub()
    sub = hub.connected("sub")
    sub.subscribe(("a/long/topic", 0))
    pub = hub.connected("pub", level=5)
    _alias(pub, "a/long/topic", 10, b"1")
    _alias(pub, "", 10, b"2")
    assert [(p.topic, p.payload) for p in sub.publishes()] == [
        ("a/long/topic", b"1"),
        ("a/long/topic", b"2"),
    ]


@pytest.mark.parametrize("alias", [0, 11, 65535])
def test_inbound_alias_out_of_range_is_0x94(alias: int) -> None:
    hub = Hub()
    pub = hub.connected("pub", level=5)
    _alias(pub, "a/b", alias)
    _disconnected_with(pub, 0x94)
    assert len(_failure_lines(hub, "pub")) == 1


def test_unknown_inbound_alias_is_a_protocol_error() -> None:
    """Matches mosquitto 2.0.11 (DISCONNECT 0x82, "disconnected due to protocol error")."""
    hub = Hub()
    pub = hub.connected("pub", level=5)
    _alias(pub, "", 3)
    _disconnected_with(pub, 0x82)
    [line] = _failure_lines(hub, "pub")
    assert "protocol error" in line


def test_inbound_aliases_do_not_survive_a_reconnect() -> None:
    hub = Hub()
    props = {PROP_SESSION_EXPIRY: 60}
    pub = hub.connected("pub", level=5, properties=props)
    _alias(pub, "a/b", 1)
    pub.drop()
    again = hub.client("pub", level=5)
    again.connect(clean=False, properties=props)
    _alias(again, "", 1)
    _disconnected_with(again, 0x82)


# ------------------------------------------------------------------ Maximum Packet Size (client's)


def _dropped(hub: Hub) -> list[str]:
    return [line for line in hub.lines if line.startswith("Dropping too large outgoing")]


def test_retained_message_over_the_clients_maximum_is_dropped() -> None:
    hub = Hub()
    pub = hub.connected("pub")
    pub.publish("r/big", b"x" * 60, retain=True)
    pub.publish("r/small", b"ok", retain=True)
    sub = hub.connected("sub", level=5, properties={PROP_MAXIMUM_PACKET_SIZE: 40})
    sub.subscribe(("r/#", 1))
    assert [p.payload for p in sub.pending if isinstance(p, Publish)] == [b"ok"]
    assert _dropped(hub) == ["Dropping too large outgoing PUBLISH for sub (68 bytes)"]
    assert hub.broker.stats.publish_dropped == 0  # as mosquitto: not a dropped message


def test_queued_message_over_the_clients_maximum_is_dropped() -> None:
    hub = Hub()
    props = {PROP_MAXIMUM_PACKET_SIZE: 40, PROP_SESSION_EXPIRY: 60}
    sub = hub.connected("sub", level=5, properties=props)
    sub.subscribe(("q", 1))
    sub.drop()
    pub = hub.connected("pub")
    pub.publish_complete("q", b"x" * 60, 1, packet_id=1)
    pub.publish_complete("q", b"ok", 1, packet_id=2)
    again = hub.client("sub", level=5)
    again.connect(clean=False, properties=props)
    assert [p.payload for p in again.pending if isinstance(p, Publish)] == [b"ok"]
    assert _dropped(hub) == ["Dropping too large outgoing PUBLISH for sub (66 bytes)"]
    session = again.conn.session
    assert session is not None and list(session.inflight) == [2]  # only "ok" awaits PUBACK


def test_resend_over_a_smaller_maximum_after_reconnect_is_dropped() -> None:
    """Sent while the client allowed it, unacknowledged, and the client comes back with a
    smaller Maximum Packet Size: the resend is dropped, the rest go on."""
    hub = Hub()
    sub = hub.connected("sub", level=5, properties={PROP_SESSION_EXPIRY: 60})
    sub.subscribe(("q", 1))
    pub = hub.connected("pub")
    pub.publish_complete("q", b"x" * 60, 1, packet_id=1)
    pub.publish_complete("q", b"ok", 1, packet_id=2)
    assert [p.payload for p in sub.publishes()] == [b"x" * 60, b"ok"]  # neither acknowledged
    sub.drop()
    again = hub.client("sub", level=5)
    again.connect(clean=False, properties={PROP_SESSION_EXPIRY: 60, PROP_MAXIMUM_PACKET_SIZE: 40})
    resent = [p for p in again.pending if isinstance(p, Publish)]
    assert [(p.payload, p.dup) for p in resent] == [(b"ok", True)]
    assert _dropped(hub) == ["Dropping too large outgoing PUBLISH for sub (66 bytes)"]
    session = again.conn.session
    assert session is not None and list(session.inflight) == [resent[0].packet_id]
