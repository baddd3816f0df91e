"""Where the codec claims to do what mosquitto does, send the same bytes to a real mosquitto.

Each case is a byte string a client sends after (or instead of) a valid CONNECT. mosquitto
"accepts" it when it still answers a PINGREQ afterwards and "refuses" it when it closes the
connection; our PacketReader accepts when it decodes everything without an MQTTError.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from m2mhub.mqtt.codec import PacketReader, encode
from m2mhub.mqtt.errors import MQTTError
from m2mhub.mqtt.packets import Connect
from tests.support import mosquitto_broker

pytestmark = pytest.mark.interop


def s16(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def connect(level: int, flags: int = 0x02, payload: bytes = b"", name: bytes = b"") -> bytes:
    """A raw CONNECT; for 5.0 ``payload`` starts with the property block (default: none)."""
    name = name or (b"MQIsdp" if level & 0x7F == 3 else b"MQTT")
    if not payload:
        payload = (b"\x00" if level & 0x7F == 5 else b"") + s16(b"cmp")
    body = s16(name) + bytes((level, flags)) + b"\x00\x3c" + payload
    return bytes((0x10, len(body))) + body


def valid_connect(level: int) -> bytes:
    return encode(Connect(level, "cmp", protocol_name="MQIsdp" if level == 3 else "MQTT"), level)


def packet(first: int, body: bytes) -> bytes:
    return bytes((first, len(body))) + body


# (name, level, sent after a valid CONNECT?, bytes); the first ACCEPTED cases are accepted by
# both, the rest refused by both.
CASES: list[tuple[str, int, bool, bytes]] = [
    # accepted by both
    ("publish QoS 0 with DUP", 4, True, packet(0x38, s16(b"a/b") + b"x")),
    ("3.1 CONNECT reserved bit", 3, False, connect(3, 0x03)),
    ("3.1 empty SUBSCRIBE", 3, True, packet(0x82, b"\x00\x01")),
    ("3.1 SUBSCRIBE without header QoS", 3, True, packet(0x80, b"\x00\x01" + s16(b"a") + b"\x00")),
    ("3.1.1 $share/g is an ordinary filter", 4, True,
     packet(0x82, b"\x00\x01" + s16(b"$share/g") + b"\x00")),
    ("bridge bit in protocol level", 0x84, False, connect(0x84)),
    ("5.0 PUBLISH with a property", 5, True, packet(0x30, s16(b"a") + b"\x02\x01\x01")),
    # refused by both (ACCEPTED marks the boundary)
    ("control character in topic", 4, True, packet(0x30, s16(b"a\x01b"))),
    ("DEL in topic", 4, True, packet(0x30, s16(b"a\x7fb"))),
    ("U+FFFF in client id", 4, False, connect(4, payload=s16("a\uffff".encode()))),
    ("U+0085 in client id", 4, False, connect(4, payload=s16("a\u0085".encode()))),
    ("wildcard in PUBLISH topic", 4, True, packet(0x30, s16(b"a/+"))),
    ("empty PUBLISH topic", 4, True, packet(0x30, s16(b""))),
    ("PUBLISH QoS 3", 4, True, packet(0x36, s16(b"a") + b"\x00\x01")),
    ("PUBLISH packet id 0", 4, True, packet(0x32, s16(b"a") + b"\x00\x00")),
    ("'#' not last", 4, True, packet(0x82, b"\x00\x01" + s16(b"a/#/b") + b"\x00")),
    ("'+' inside a level", 4, True, packet(0x82, b"\x00\x01" + s16(b"a/b+") + b"\x00")),
    ("empty 3.1.1 SUBSCRIBE", 4, True, packet(0x82, b"\x00\x01")),
    ("empty 3.1.1 UNSUBSCRIBE", 4, True, packet(0xA2, b"\x00\x01")),
    ("3.1.1 SUBSCRIBE flags 0", 4, True, packet(0x80, b"\x00\x01" + s16(b"a") + b"\x00")),
    ("3.1.1 PUBREL flags 0", 4, True, packet(0x60, b"\x00\x01")),
    ("3.1.1 SUBSCRIBE option bits", 4, True, packet(0x82, b"\x00\x01" + s16(b"a") + b"\x04")),
    ("3.1.1 CONNECT reserved bit", 4, False, connect(4, 0x03)),
    ("password without username, 3.1.1", 4, False, connect(4, 0x42, s16(b"c") + s16(b"p"))),
    ("password without username, 3.1", 3, False, connect(3, 0x42, s16(b"c") + s16(b"p"))),
    ("will QoS without will flag", 4, False, connect(4, 0x0A)),
    ("remaining length over 4 bytes", 4, True, b"\x30\xff\xff\xff\xff\x01"),
    ("packet type 0", 4, True, b"\x00\x00"),
    ("AUTH in 3.1.1", 4, True, b"\xf0\x00"),
    ("DISCONNECT with a body in 3.1.1", 4, True, b"\xe0\x01\x00"),
    ("5.0 unknown property", 5, True, packet(0x30, s16(b"a") + b"\x02\x7f\x00")),
    ("5.0 retain handling 3", 5, True, packet(0x82, b"\x00\x01\x00" + s16(b"a") + b"\x30")),
    ("5.0 subscription option reserved bits", 5, True,
     packet(0x82, b"\x00\x01\x00" + s16(b"a") + b"\x40")),
    ("5.0 Topic Alias 0", 5, True, packet(0x30, s16(b"a") + b"\x03\x23\x00\x00")),
    ("5.0 Receive Maximum 0", 5, False, connect(5, payload=b"\x03\x21\x00\x00" + s16(b"c"))),
    ("unknown protocol name", 4, False, connect(4, name=b"FOO")),
]  # fmt: skip

ACCEPTED = 7


def mosquitto_accepts(port: int, wire: bytes) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(wire + b"\xc0\x00")
        got = b""
        while b"\xd0\x00" not in got:
            try:
                data = sock.recv(4096)
            except ConnectionResetError:
                return False
            if not data:
                return False
            got += data
        return True


def codec_accepts(wire: bytes) -> bool:
    reader = PacketReader()
    try:
        reader.feed_all(wire + b"\xc0\x00")
    except MQTTError:
        return False
    return reader.buffered == 0


@pytest.fixture(scope="module")
def mosquitto_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp: Path = tmp_path_factory.mktemp("mosquitto")
    with mosquitto_broker(tmp) as (_, port):
        yield port


@pytest.mark.parametrize(("name", "level", "after_connect", "wire"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_same_verdict_as_mosquitto(
    mosquitto_port: int, name: str, level: int, after_connect: bool, wire: bytes
) -> None:
    full = valid_connect(level) + wire if after_connect else wire
    expected = [c[0] for c in CASES].index(name) < ACCEPTED
    assert mosquitto_accepts(mosquitto_port, full) is expected
    assert codec_accepts(full) is expected
