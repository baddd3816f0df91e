"""A deliberately independent, minimal MQTT encoder and raw-socket client for interop tests.

It does not use m2mhub's codec on purpose: the interop tests must catch codec bugs, and they
must be able to send bytes that a correct codec would refuse to build.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            byte |= 0x80
        out.append(byte)
        if not n:
            return bytes(out)


def utf8(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(raw)) + raw


def packet(ptype: int, flags: int, body: bytes) -> bytes:
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def connect(
    client_id: str = "",
    *,
    clean: bool = True,
    keepalive: int = 60,
    level: int = 4,
    proto_name: bytes = b"MQTT",
    will: tuple[str, bytes, int, bool] | None = None,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT for level 3 (MQIsdp), 4 (3.1.1) or 5; ``will`` is (topic, payload, qos, retain)."""
    if level == 3 and proto_name == b"MQTT":
        proto_name = b"MQIsdp"
    flags = 0x02 if clean else 0
    if will is not None:
        flags |= 0x04 | (will[2] << 3) | (0x20 if will[3] else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = utf8(proto_name) + bytes([level, flags]) + struct.pack("!H", keepalive)
    if level == 5:
        body += b"\x00"  # no CONNECT properties
    body += utf8(client_id)
    if will is not None:
        if level == 5:
            body += b"\x00"  # no will properties
        body += utf8(will[0]) + utf8(will[1])
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += utf8(password)
    return packet(CONNECT, 0, body)


def subscribe(pid: int, filters: list[tuple[str, int]], *, level: int = 4, flags: int = 2) -> bytes:
    body = struct.pack("!H", pid) + (b"\x00" if level == 5 else b"")
    for topic, qos in filters:
        body += utf8(topic) + bytes([qos])
    return packet(SUBSCRIBE, flags, body)


def unsubscribe(pid: int, filters: list[str], *, level: int = 4) -> bytes:
    body = struct.pack("!H", pid) + (b"\x00" if level == 5 else b"")
    for topic in filters:
        body += utf8(topic)
    return packet(UNSUBSCRIBE, 2, body)


def publish(
    topic: str | bytes,
    payload: bytes,
    *,
    qos: int = 0,
    retain: bool = False,
    pid: int = 1,
    dup: bool = False,
    level: int = 4,
    props: bytes = b"",
) -> bytes:
    """PUBLISH; ``props`` are raw MQTT 5 property bytes (their length is prefixed here)."""
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = utf8(topic)
    if qos:
        body += struct.pack("!H", pid)
    if level == 5:
        body += varint(len(props)) + props
    return packet(PUBLISH, flags, body + payload)


def ack(ptype: int, pid: int) -> bytes:
    """PUBACK, PUBREC, PUBREL (flags 2) or PUBCOMP."""
    return packet(ptype, 2 if ptype == PUBREL else 0, struct.pack("!H", pid))


PINGREQ_BYTES = packet(PINGREQ, 0, b"")
DISCONNECT_BYTES = packet(DISCONNECT, 0, b"")


@dataclass
class Packet:
    ptype: int
    flags: int
    body: bytes

    @property
    def qos(self) -> int:
        return (self.flags >> 1) & 3

    @property
    def retain(self) -> bool:
        return bool(self.flags & 1)

    def publish_fields(self, level: int = 4) -> tuple[str, int, bytes]:
        """(topic, packet id or 0, payload) of a PUBLISH."""
        (tlen,) = struct.unpack_from("!H", self.body)
        topic = self.body[2 : 2 + tlen].decode()
        pos = 2 + tlen
        pid = 0
        if self.qos:
            (pid,) = struct.unpack_from("!H", self.body, pos)
            pos += 2
        if level == 5:
            plen, used = read_varint(self.body, pos)
            pos += used + plen
        return topic, pid, self.body[pos:]

    def pid(self) -> int:
        return int(struct.unpack_from("!H", self.body)[0])


def read_varint(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    value, mult, used = 0, 1, 0
    while True:
        byte = buf[pos + used]
        used += 1
        value += (byte & 0x7F) * mult
        mult *= 128
        if not byte & 0x80:
            return value, used


class Closed(Exception):
    """The peer closed the connection."""


class RawClient:
    """One TCP connection speaking raw MQTT bytes."""

    def __init__(self, port: int, level: int = 4) -> None:
        self.level = level
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.closed = False

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no packet in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("no packet in time") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise Closed()
        self.buf += chunk

    def read(self, timeout: float = 5.0) -> Packet:
        """The next packet; raises Closed on EOF and TimeoutError when none arrives in time."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                try:
                    length, used = read_varint(self.buf, 1)
                except IndexError:
                    length, used = -1, 0
                if length >= 0 and len(self.buf) >= 1 + used + length:
                    first = self.buf[0]
                    body = bytes(self.buf[1 + used : 1 + used + length])
                    del self.buf[: 1 + used + length]
                    return Packet(first >> 4, first & 0x0F, body)
            self._fill(deadline)

    def expect(self, ptype: int, timeout: float = 5.0) -> Packet:
        pkt = self.read(timeout)
        assert pkt.ptype == ptype, f"expected packet type {ptype}, got {pkt}"
        return pkt

    def wait_closed(self, timeout: float = 5.0) -> list[Packet]:
        """Read until the peer closes; returns the packets seen before the close."""
        seen: list[Packet] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                seen.append(self.read(max(0.0, deadline - time.monotonic())))
            except Closed:
                return seen

    def connect(self, client_id: str = "", **kw: object) -> Packet:
        """Send CONNECT and return the CONNACK."""
        self.send(connect(client_id, level=self.level, **kw))  # type: ignore[arg-type]
        return self.expect(CONNACK)

    def subscribe(self, filters: list[tuple[str, int]], pid: int = 1) -> Packet:
        self.send(subscribe(pid, filters, level=self.level))
        return self.expect(SUBACK)

    def collect_until(self, last_payload: bytes, timeout: float = 10.0) -> list[Packet]:
        """Acknowledge and collect PUBLISHes until one carries ``last_payload`` (included).

        QoS 1 gets PUBACK, QoS 2 gets PUBREC and its PUBREL gets PUBCOMP, so the broker's flows
        complete whatever order the packets arrive in.
        """
        got: list[Packet] = []
        deadline = time.monotonic() + timeout
        while True:
            pkt = self.read(max(0.0, deadline - time.monotonic()))
            if pkt.ptype == PUBREL:
                self.send(ack(PUBCOMP, pkt.pid()))
                continue
            assert pkt.ptype == PUBLISH, f"expected PUBLISH, got {pkt}"
            _, pid, payload = pkt.publish_fields(self.level)
            if pkt.qos == 1:
                self.send(ack(PUBACK, pid))
            elif pkt.qos == 2:
                self.send(ack(PUBREC, pid))
            got.append(pkt)
            if payload == last_payload:
                return got

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
