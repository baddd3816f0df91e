"""DISCONNECT both ways: the server tells 5.0 clients why it closes (3.x connections are just
closed), and a client's DISCONNECT may change its Session Expiry Interval where allowed."""

from __future__ import annotations

import pytest

from m2mhub.mqtt.packets import Connack, Disconnect, Pingreq, Will
from tests.hub.harness import Client, Hub

SESSION_EXPIRY = 0x11
REASON_STRING = 0x1F


def _watcher(hub: Hub) -> Client:
    w = hub.connected("watch")
    w.subscribe(("will/#", 1))
    return w


def _notices(hub: Hub, start: int, client_id: str) -> list[str]:
    return [line for line in hub.lines[start:] if line.startswith(f"Client {client_id} ")]


# ------------------------------------------------------------------ server-sent DISCONNECT


@pytest.mark.parametrize(
    ("level", "expected"), [(4, []), (5, [Disconnect(0x8D, {REASON_STRING: "keep alive timeout"})])]
)
def test_keepalive_timeout(level: int, expected: list[Disconnect]) -> None:
    hub = Hub()
    c = hub.connected("k", level=level, keepalive=10)
    hub.advance(15.1)
    assert c.closed
    assert c.received() == expected
    assert hub.lines[-1] == "Client k has exceeded timeout, disconnecting."


def test_no_reason_string_for_a_client_that_asked_for_no_problem_information() -> None:
    hub = Hub()
    c = hub.connected("quiet", level=5, keepalive=10, properties={0x17: 0})
    hub.advance(15.1)
    assert c.received() == [Disconnect(0x8D)]


def test_shutdown_tells_5_0_clients_and_just_closes_3_1_1() -> None:
    hub = Hub()
    v5 = hub.connected("v5", level=5)
    v4 = hub.connected("v4", level=4)
    early = hub.client("early", level=5)  # no CONNECT yet: nothing to tell
    hub.broker.shutdown(hub.now)
    assert v5.closed and v4.closed and early.closed
    assert v5.received() == [Disconnect(0x8B, {REASON_STRING: "server shutting down"})]
    assert v4.received() == []
    assert early.received() == []


def test_shutdown_keeps_persistent_sessions_and_sends_no_will() -> None:
    hub = Hub()
    watch = _watcher(hub)
    hub.connected("p", level=5, properties={SESSION_EXPIRY: 60}, will=Will("will/p", b"w"))
    hub.broker.shutdown(hub.now)
    assert "p" in hub.broker.sessions
    assert watch.closed and watch.received() == []


@pytest.mark.parametrize(("old_level", "new_level"), [(5, 5), (5, 4), (4, 5)])
def test_session_taken_over(old_level: int, new_level: int) -> None:
    hub = Hub()
    old = hub.connected("twin", level=old_level)
    new = hub.connected("twin", level=new_level)
    assert old.closed and not new.closed
    assert old.received() == (
        [Disconnect(0x8E, {REASON_STRING: "session taken over"})] if old_level == 5 else []
    )
    assert "Client twin already connected, closing old connection." in hub.lines


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("malformed: reserved packet type", b"\x00\x00", 0x81),
        ("malformed: PUBREL with reserved flags", b"\x60\x02\x00\x01", 0x81),
        (
            "protocol error: second CONNECT",
            b"\x10\x0e\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x01x",
            0x82,
        ),
        ("protocol error: SUBSCRIBE with packet id 0", b"\x82\x06\x00\x00\x00\x00\x01t\x00", 0x82),
    ],
)
def test_protocol_violations_get_their_reason_code(name: str, data: bytes, code: int) -> None:
    hub = Hub()
    watch = _watcher(hub)
    bad = hub.connected("bad", level=5, will=Will("will/bad", b"gone"))
    start = len(hub.lines)
    bad.send_bytes(data)
    assert bad.closed
    assert [p.reason_code for p in bad.received() if isinstance(p, Disconnect)] == [code]
    assert len([n for n in _notices(hub, start, "bad") if "disconnected due to" in n]) == 1
    # A connection the server closes for an error publishes its will (MQTT 5.0 3.1.2.5).
    assert [p.payload for p in watch.publishes()] == [b"gone"]


def test_packet_too_large_from_the_reader_gets_0x95() -> None:
    """Whatever limit the reader enforces, its PacketTooLarge reaches the client as 0x95."""
    hub = Hub()
    bad = hub.connected("big", level=5)
    bad.conn.reader.max_packet_size = 16
    bad.send_bytes(b"\x30\x20\x00\x01t\x00" + b"x" * 28)
    assert bad.closed
    assert [p.reason_code for p in bad.received() if isinstance(p, Disconnect)] == [0x95]
    assert hub.lines[-1].startswith("Client big disconnected due to oversize packet (")


def test_internal_error_gets_0x80_without_details() -> None:
    """A bug in the broker costs the one connection; a 5.0 client learns that the server
    closed it (0x80, Unspecified error), not the internals, which go to the log."""
    hub = Hub()
    victim = hub.connected("victim", level=5)

    def explode(*_args: object) -> None:
        raise RuntimeError("boom")

    hub.broker._handlers[Pingreq] = explode
    victim.send(Pingreq())
    assert victim.closed
    assert victim.received() == [Disconnect(0x80, {REASON_STRING: "internal error"})]
    assert hub.lines[-1] == "Client victim disconnected due to internal error (RuntimeError: boom)."


# ------------------------------------------------------------------ client DISCONNECT


def test_plain_disconnect_sends_no_will_and_0x04_does() -> None:
    hub = Hub()
    watch = _watcher(hub)
    hub.connected("a", level=5, will=Will("will/a", b"a")).send(Disconnect(0x00))
    hub.connected("b", level=5, will=Will("will/b", b"b")).send(Disconnect(0x04))
    assert [p.payload for p in watch.publishes()] == [b"b"]


@pytest.mark.parametrize("code", [0x80, 0x81, 0x82, 0x83, 0x93, 0x98, 0x99])
def test_disconnect_with_an_error_code_sends_the_will(code: int) -> None:
    """MQTT 5.0 3.14.4 / 3.1.2.5: only 0x00 discards the will. mosquitto 2.0.11 discards it
    for every code but 0x04 (interop test_lifecycle.py)."""
    hub = Hub()
    watch = _watcher(hub)
    c = hub.connected("e", level=5, will=Will("will/e", b"error"))
    c.send(Disconnect(code))
    assert c.closed and c.received() == []
    assert [p.payload for p in watch.publishes()] == [b"error"]
    assert "Client e disconnected." in hub.lines


@pytest.mark.parametrize("connect_props", [{}, {SESSION_EXPIRY: 0}], ids=["absent", "zero"])
def test_expiry_set_on_disconnect_after_zero_is_a_protocol_error(
    connect_props: dict[int, int],
) -> None:
    """MQTT 5.0 3.14.2.2.2; mosquitto 2.0.11 answers the same (interop test_lifecycle.py)."""
    hub = Hub()
    watch = _watcher(hub)
    c = hub.connected("z", level=5, properties=connect_props, will=Will("will/z", b"z"))
    start = len(hub.lines)
    c.send(Disconnect(0x00, {SESSION_EXPIRY: 60}))
    assert c.closed
    assert c.received() == [
        Disconnect(0x82, {REASON_STRING: "session expiry interval set on DISCONNECT after 0"})
    ]
    assert "z" not in hub.broker.sessions
    assert _notices(hub, start, "z") == [
        "Client z disconnected due to protocol error "
        "(session expiry interval set on DISCONNECT after 0)."
    ]
    assert "Received DISCONNECT from z" not in hub.lines[start:]  # as mosquitto: not logged
    assert [p.payload for p in watch.publishes()] == [b"z"]


def test_expiry_zero_on_disconnect_after_zero_is_allowed() -> None:
    hub = Hub()
    c = hub.connected("z", level=5)
    c.send(Disconnect(0x00, {SESSION_EXPIRY: 0}))
    assert c.closed and c.received() == []
    assert "Client z disconnected." in hub.lines


def test_disconnect_ends_the_session_with_expiry_zero() -> None:
    hub = Hub()
    c = hub.connected("s", level=5, properties={SESSION_EXPIRY: 600})
    c.subscribe(("t", 1))
    c.send(Disconnect(0x00, {SESSION_EXPIRY: 0}))
    assert "s" not in hub.broker.sessions
    back = hub.client("s", level=5)
    ack = back.connect(clean=False, properties={SESSION_EXPIRY: 600})
    assert isinstance(ack, Connack) and not ack.session_present


@pytest.mark.parametrize(("at_connect", "at_disconnect"), [(10, 100), (100, 10)])
def test_disconnect_changes_the_expiry_interval(at_connect: int, at_disconnect: int) -> None:
    hub = Hub()
    c = hub.connected("s", level=5, properties={SESSION_EXPIRY: at_connect})
    c.send(Disconnect(0x00, {SESSION_EXPIRY: at_disconnect}))
    hub.advance(at_disconnect - 1)
    assert "s" in hub.broker.sessions
    hub.advance(1)
    assert "s" not in hub.broker.sessions


def test_disconnect_makes_the_session_never_expire() -> None:
    hub = Hub()
    c = hub.connected("s", level=5, properties={SESSION_EXPIRY: 10})
    c.send(Disconnect(0x00, {SESSION_EXPIRY: 0xFFFFFFFF}))
    hub.advance(10_000_000)
    assert "s" in hub.broker.sessions


def test_each_connection_starts_from_its_connect_value() -> None:
    """The interval set on DISCONNECT lasts until the next CONNECT, which sets its own."""
    hub = Hub()
    c = hub.connected("s", level=5, properties={SESSION_EXPIRY: 10})
    c.send(Disconnect(0x00, {SESSION_EXPIRY: 100}))
    hub.advance(50)
    back = hub.client("s", level=5)
    ack = back.connect(clean=False, properties={SESSION_EXPIRY: 20})
    assert isinstance(ack, Connack) and ack.session_present
    back.drop()
    # The old 100 s deadline (at +50 from now) must not end it; the new 20 s one does.
    hub.advance(19)
    assert "s" in hub.broker.sessions
    hub.advance(1)
    assert "s" not in hub.broker.sessions
    assert hub.broker.stats.clients_expired == 1


def test_stale_expiry_deadline_does_not_end_a_session_that_came_back() -> None:
    hub = Hub()
    c = hub.connected("s", level=5, properties={SESSION_EXPIRY: 10})
    c.drop()
    hub.advance(5)
    back = hub.client("s", level=5)
    back.connect(clean=False, properties={SESSION_EXPIRY: 10})
    hub.advance(6)  # the first deadline passes while connected
    assert "s" in hub.broker.sessions and not back.closed
    back.send(Disconnect(0x00, {SESSION_EXPIRY: 30}))
    hub.advance(29)
    assert "s" in hub.broker.sessions
    hub.advance(1)
    assert "s" not in hub.broker.sessions
