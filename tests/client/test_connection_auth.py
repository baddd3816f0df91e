"""MQTT 5 enhanced authentication in the sans-IO client: bytes in, bytes out, a real SCRAM
server exchange on the broker's side of the wire."""

from __future__ import annotations

import pytest

from m2mhub.auth.enhanced import Continue, Success
from m2mhub.auth.scram import ScramCredentials, ScramServerExchange, ScramSha256Client
from m2mhub.client.connection import (
    AuthenticationFailed,
    ClientConnection,
    ConnackReceived,
    ReauthenticationCompleted,
    State,
)
from m2mhub.mqtt.codec import PacketReader, encode
from m2mhub.mqtt.errors import ProtocolError
from m2mhub.mqtt.packets import Auth, Connack, Connect, Disconnect, Packet

METHOD, DATA = 0x15, 0x16
USERS = {"alice": ScramCredentials.from_password("secret")}


def sent(conn: ClientConnection) -> list[Packet]:
    reader = PacketReader(5)
    return reader.feed_all(conn.data_to_send())


def bytes_of(packet: Packet) -> bytes:
    return encode(packet, 5)


def start(password: str = "secret") -> tuple[ClientConnection, ScramServerExchange, bytes]:
    """A client that sent CONNECT with SCRAM, and the server's answer to it."""
    conn = ClientConnection(5)
    conn.connect(Connect(client_id="c"), 0.0, ScramSha256Client("alice", password))
    (connect,) = sent(conn)
    assert isinstance(connect, Connect)
    assert connect.properties[METHOD] == "SCRAM-SHA-256"
    server = ScramServerExchange(USERS.get, None)
    challenge = server.step(connect.properties[DATA])
    assert isinstance(challenge, Continue)
    return conn, server, challenge.data


def test_challenge_answered_then_connack_verified() -> None:
    conn, server, challenge = start()
    assert conn.receive_data(bytes_of(Auth(0x18, {METHOD: "SCRAM-SHA-256", DATA: challenge}))) == []
    (answer,) = sent(conn)
    assert isinstance(answer, Auth) and answer.reason_code == 0x18
    final = server.step(answer.properties[DATA])
    assert isinstance(final, Success) and final.data is not None
    (event,) = conn.receive_data(
        bytes_of(Connack(False, 0, {METHOD: "SCRAM-SHA-256", DATA: final.data}))
    )
    assert isinstance(event, ConnackReceived) and event.reason_code == 0
    assert conn.state is State.CONNECTED


def test_connack_without_the_servers_proof_is_refused() -> None:
    conn, _, _ = start()
    (event,) = conn.receive_data(bytes_of(Connack(False, 0, {METHOD: "SCRAM-SHA-256"})))
    assert isinstance(event, AuthenticationFailed)
    assert conn.state is State.CLOSED
    assert sent(conn) == [Disconnect(0x80)]


def test_challenge_with_another_method_is_a_protocol_error() -> None:
    conn, _, challenge = start()
    with pytest.raises(ProtocolError):
        conn.receive_data(bytes_of(Auth(0x18, {METHOD: "OTHER", DATA: challenge})))


def test_auth_without_a_method_in_use_is_a_protocol_error() -> None:
    conn = ClientConnection(5)
    conn.connect(Connect(client_id="c"), 0.0)
    conn.receive_data(bytes.fromhex("2003000000"))
    with pytest.raises(ProtocolError):
        conn.receive_data(bytes_of(Auth(0x18, {METHOD: "SCRAM-SHA-256"})))


def test_reauthentication() -> None:
    conn, server, challenge = start()
    conn.receive_data(bytes_of(Auth(0x18, {METHOD: "SCRAM-SHA-256", DATA: challenge})))
    final = server.step(sent(conn)[0].properties[DATA])  # type: ignore[union-attr]
    assert isinstance(final, Success) and final.data is not None
    conn.receive_data(bytes_of(Connack(False, 0, {METHOD: "SCRAM-SHA-256", DATA: final.data})))
    conn.reauthenticate(1.0)
    (again,) = sent(conn)
    assert isinstance(again, Auth) and again.reason_code == 0x19
    server = ScramServerExchange(USERS.get, "alice")
    challenge2 = server.step(again.properties[DATA])
    assert isinstance(challenge2, Continue)
    conn.receive_data(bytes_of(Auth(0x18, {METHOD: "SCRAM-SHA-256", DATA: challenge2.data})))
    final2 = server.step(sent(conn)[0].properties[DATA])  # type: ignore[union-attr]
    assert isinstance(final2, Success) and final2.data is not None
    (event,) = conn.receive_data(bytes_of(Auth(0x00, {METHOD: "SCRAM-SHA-256", DATA: final2.data})))
    assert isinstance(event, ReauthenticationCompleted)
    assert conn.state is State.CONNECTED
    with pytest.raises(ProtocolError):  # no re-authentication in progress any more
        conn.receive_data(bytes_of(Auth(0x00, {METHOD: "SCRAM-SHA-256"})))


def test_enhanced_authentication_needs_mqtt5() -> None:
    with pytest.raises(ValueError):
        ClientConnection(4).connect(Connect(client_id="c"), 0.0, ScramSha256Client("a", "b"))
