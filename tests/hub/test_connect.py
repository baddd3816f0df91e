"""CONNECT rules: CONNACK codes, client ids, auth, takeover, limits, log lines."""

from __future__ import annotations

import pytest

from m2mhub.mqtt.packets import Connack, Connect, Disconnect, Pingreq, Pingresp, Publish, Will
from tests.hub.harness import Hub


def test_connect_accepted_logs_like_mosquitto() -> None:
    hub = Hub()
    c = hub.client("Sub1")
    ack = c.connect(clean=False)
    assert ack == Connack(False, 0)
    peer = c.conn.peer
    assert hub.lines == [
        f"New connection from {peer} on port 1883.",
        f"New client connected from {peer} as Sub1 (p2, c0, k60).",
        "No will message specified.",
        "Sending CONNACK to Sub1 (0, 0)",
    ]


def test_protocol_numbers_in_log_follow_mosquitto() -> None:
    hub = Hub()
    hub.connected("old", level=3)
    hub.connected("new", level=5)
    assert any("as old (p1, c1, k60)." in line for line in hub.lines)
    assert any("as new (p5, c1, k60)." in line for line in hub.lines)


def test_empty_id_with_clean_session_gets_assigned_id() -> None:
    hub = Hub()
    c = hub.client("")
    assert c.connect(clean=True) == Connack(False, 0)
    assert c.conn.client_id == "auto-00000001"
    assert not c.closed


def test_empty_id_v5_gets_assigned_client_identifier_property() -> None:
    hub = Hub()
    c = hub.client("", level=5)
    ack = c.connect(clean=True)
    assert isinstance(ack, Connack) and ack.reason_code == 0
    assert ack.properties[0x12] == "auto-00000001"


def test_empty_id_without_clean_session_refused_in_311() -> None:
    hub = Hub()
    c = hub.client("")
    assert c.connect(clean=False) == Connack(False, 0x02)
    assert c.closed
    assert "Sending CONNACK to 127.0.0.1 (0, 2)" in hub.lines


def test_empty_id_refused_in_31() -> None:
    hub = Hub()
    c = hub.client("", level=3)
    assert c.connect(clean=True) == Connack(False, 0x02)
    assert c.closed


def test_long_id_accepted_in_31_like_mosquitto() -> None:
    hub = Hub()
    c = hub.client("x" * 30, level=3)
    assert c.connect() == Connack(False, 0)


def test_bad_protocol_level_gets_connack_1_and_close() -> None:
    hub = Hub()
    c = hub.client("lvl")
    data = bytearray(b"\x10\x0f\x00\x04MQTT\x07\x02\x00\x3c\x00\x03lvl")
    c.send_bytes(bytes(data))
    assert bytes(c.sink.data) == b"\x20\x02\x00\x01"
    assert c.closed
    assert sum("disconnected due to protocol error" in line for line in hub.lines) == 1


def test_packet_before_connect_closes() -> None:
    hub = Hub()
    c = hub.client("x")
    c.send(Pingreq())
    assert c.closed
    assert c.sink.data == b""
    assert hub.lines[-1].startswith(
        f"Client <unknown> ({c.conn.peer}) disconnected due to protocol error"
    )


def test_second_connect_closes() -> None:
    hub = Hub()
    c = hub.connected("twice")
    c.connect()
    assert c.closed
    assert hub.lines[-1] == "Client twice disconnected due to protocol error (second CONNECT)."


def test_anonymous_refused_when_not_allowed() -> None:
    hub = Hub(allow_anonymous=False)
    c = hub.client("anon")
    assert c.connect() == Connack(False, 0x05)
    assert c.closed
    assert hub.lines[-2:] == [
        "Sending CONNACK to 127.0.0.1 (0, 5)",
        f"Client <unknown> ({c.conn.peer}) disconnected, not authorised.",
    ]
    c5 = hub.client("anon5", level=5)
    ack = c5.connect()
    assert isinstance(ack, Connack) and ack.reason_code == 0x87


class _Passwords:
    def check(self, username: str | None, password: bytes | None, client_id: str) -> bool:
        return username == "alice" and password == b"secret"


def test_authenticator_decides_for_named_users() -> None:
    hub = Hub(allow_anonymous=False)
    hub.broker.authenticator = _Passwords()
    good = hub.client("good")
    assert good.connect(username="alice", password=b"secret") == Connack(False, 0)
    assert any("as good (p2, c1, k60, u'alice')." in line for line in hub.lines)
    bad = hub.client("bad")
    assert bad.connect(username="alice", password=b"wrong") == Connack(False, 0x05)
    assert bad.closed and not good.closed


def test_takeover_closes_old_connection() -> None:
    hub = Hub()
    old = hub.connected("dup")
    new = hub.connected("dup")
    assert old.closed and not new.closed
    assert "Client dup already connected, closing old connection." in hub.lines
    # The new connection works.
    new.send(Pingreq())
    assert new.received() == [Pingresp()]


def test_takeover_v5_sends_disconnect_session_taken_over() -> None:
    hub = Hub()
    old = hub.connected("dup", level=5)
    hub.connected("dup", level=5)
    assert old.received() == [Disconnect(0x8E, {0x1F: "session taken over"})]
    assert old.closed


def test_max_connections() -> None:
    hub = Hub(max_connections=2)
    a = hub.connected("a")
    b = hub.connected("b")
    c = hub.client("c")
    assert c.closed
    assert not a.closed and not b.closed
    assert any("denied: max_connections exceeded" in line for line in hub.lines)
    a.disconnect()
    d = hub.client("d")
    assert not d.closed


def test_max_keepalive_v5_sets_server_keep_alive() -> None:
    hub = Hub(max_keepalive=30)
    c = hub.client("k", level=5)
    ack = c.connect(keepalive=120)
    assert isinstance(ack, Connack) and ack.properties[0x13] == 30
    assert c.conn.keepalive == 30


def test_max_keepalive_311_accepted_like_mosquitto_2011() -> None:
    hub = Hub(max_keepalive=30)
    c = hub.client("k")
    assert c.connect(keepalive=120) == Connack(False, 0)


def test_connect_decoded_fields_reach_the_log_with_will() -> None:
    hub = Hub()
    c = hub.client("w")
    c.send(Connect(client_id="w", will=Will("w/t", b"bye", 1, True)))
    assert "Will message specified (3 bytes) (r1, q1)." in hub.lines
    assert "\tw/t" in hub.lines
    assert not any(isinstance(p, Publish) for p in c.received())


def test_unknown_protocol_name_closes_without_connack_like_mosquitto() -> None:
    hub = Hub()
    other = hub.connected("other")
    c = hub.client("x")
    c.send_bytes(b"\x10\x0f\x00\x04ABCD\x04\x02\x00\x3c\x00\x03abc")
    assert c.closed and c.sink.data == b""
    assert hub.lines[-1].startswith(f"Client <unknown> ({c.conn.peer}) disconnected due to")
    assert not other.closed


class _Users:
    """A password file stand-in whose users the test changes (as a SIGHUP reload would)."""

    def __init__(self, **users: bytes) -> None:
        self.users = users

    def check(self, username: str | None, password: bytes | None, client_id: str) -> bool:
        return username is not None and self.users.get(username) == password


@pytest.mark.parametrize("level", [4, 5])
def test_recheck_credentials_closes_clients_the_authenticator_now_refuses(level: int) -> None:
    hub = Hub(allow_anonymous=True)
    users = _Users(alice=b"a", bob=b"b", carol=b"c", watch=b"w")
    hub.broker.authenticator = users
    watcher = hub.connected("watcher", username="watch", password=b"w")
    watcher.subscribe(("will/#", 0))
    alice = hub.connected(
        "alice", level, will=Will("will/a", b"gone", 0, False), username="alice", password=b"a"
    )
    bob = hub.connected("bob", level, clean=False, username="bob", password=b"b")
    carol = hub.connected("carol", level, username="carol", password=b"c")
    anon = hub.connected("anon", level)
    users.users["alice"] = b"changed"
    del users.users["bob"]
    mark = len(hub.lines)
    assert hub.broker.recheck_credentials(hub.now) == ["alice", "bob"]
    hub.broker.flush()
    # As mosquitto 2.0.11: as if they had sent DISCONNECT, without a DISCONNECT packet.
    assert hub.lines[mark:] == ["Client alice disconnected.", "Client bob disconnected."]
    assert alice.closed and bob.closed and alice.received() == [] and bob.received() == []
    assert not (carol.closed or anon.closed or watcher.closed)
    assert watcher.received() == []  # no will
    # The persistent 3.1.1 session stays (5.0 without Session Expiry: it ends with the connection).
    assert ("bob" in hub.broker.sessions) == (level == 4)
    # Nobody else is refused on a second look.
    assert hub.broker.recheck_credentials(hub.now) == []


def test_recheck_credentials_without_an_authenticator_does_nothing() -> None:
    hub = Hub(allow_anonymous=True)
    c = hub.connected("c", username="u", password=b"p")
    assert hub.broker.recheck_credentials(hub.now) == []
    assert not c.closed
