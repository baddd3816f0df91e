"""Keepalive enforced at 1.5 times the interval; any packet counts as activity."""

from __future__ import annotations

import pytest

from m2mhub.mqtt.packets import Connack, Disconnect, Pingreq, Pingresp
from tests.hub.harness import Client, Hub


def test_silent_client_closed_after_one_and_a_half_keepalives() -> None:
    hub = Hub()
    c = hub.connected("k", keepalive=60)
    start = hub.now
    hub.advance(31)  # past the connect timeout, whose timer entry is now gone
    assert hub.broker.next_deadline() == start + 90
    hub.advance(58.9)
    assert not c.closed
    hub.advance(0.2)
    assert c.closed
    assert hub.lines[-1] == "Client k has exceeded timeout, disconnecting."


def test_ping_keeps_connection_alive() -> None:
    hub = Hub()
    c = hub.connected("k", keepalive=10)
    for _ in range(5):
        hub.advance(10)
        c.send(Pingreq())
        assert c.received() == [Pingresp()]
    assert not c.closed
    hub.advance(15.1)
    assert c.closed


def test_keepalive_zero_never_times_out() -> None:
    hub = Hub()
    c = hub.connected("k", keepalive=0)
    hub.advance(100_000)
    assert not c.closed


def test_connection_without_connect_times_out() -> None:
    hub = Hub()
    c = hub.client("nothing")
    hub.advance(31)
    assert c.closed


def _v5_client_asking(hub: Hub, keepalive: int) -> tuple[Client, Connack]:
    c = hub.client("k5", level=5)
    ack = c.connect(keepalive=keepalive)
    assert isinstance(ack, Connack) and ack.reason_code == 0
    return c, ack


@pytest.mark.parametrize("asked", [0, 31, 65535])
def test_server_keep_alive_given_and_enforced(asked: int) -> None:
    """A 5.0 client asking for 0 or more than max_keepalive gets Server Keep Alive, and the
    broker holds it to that value, at 1.5 times, with DISCONNECT 0x8D."""
    hub = Hub(max_keepalive=30)
    c, ack = _v5_client_asking(hub, asked)
    assert ack.properties[0x13] == 30
    hub.advance(44.9)
    assert not c.closed
    hub.advance(0.2)
    assert c.closed
    assert c.received() == [Disconnect(0x8D, {0x1F: "keep alive timeout"})]


def test_server_keep_alive_counts_from_the_last_packet() -> None:
    hub = Hub(max_keepalive=30)
    c, _ = _v5_client_asking(hub, 0)
    hub.advance(40)
    c.send(Pingreq())
    assert c.received() == [Pingresp()]
    hub.advance(44.9)
    assert not c.closed
    hub.advance(0.2)
    assert c.closed


def test_keepalive_within_max_keepalive_kept_as_asked() -> None:
    hub = Hub(max_keepalive=30)
    c, ack = _v5_client_asking(hub, 20)
    assert 0x13 not in ack.properties
    hub.advance(29.9)
    assert not c.closed
    hub.advance(0.2)
    assert c.received() == [Disconnect(0x8D, {0x1F: "keep alive timeout"})]


def test_311_keepalive_above_max_keepalive_enforced_as_asked() -> None:
    """3.1.1 has no Server Keep Alive; mosquitto 2.0.11 accepts the client's value."""
    hub = Hub(max_keepalive=30)
    c = hub.connected("k4", keepalive=60)
    hub.advance(89.9)
    assert not c.closed
    hub.advance(0.2)
    assert c.closed and c.received() == []
