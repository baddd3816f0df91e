"""Keepalive enforced at 1.5 times the interval; any packet counts as activity."""

from __future__ import annotations

from m2mhub.mqtt.packets import Pingreq, Pingresp
from tests.hub.harness import Hub


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
