"""The codec against real peers' bytes: mosquitto_pub/mosquitto_sub and paho-mqtt as clients,
and the mosquitto broker as server.

Every packet a peer puts on the wire must decode, and re-encode to exactly the same bytes.
A small capture server (plain sockets, not our broker) answers the clients just enough for
them to run their whole exchange.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from m2mhub.mqtt.codec import decode, encode
from m2mhub.mqtt.packets import (
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionOptions,
    Unsuback,
    Unsubscribe,
)
from tests.support import free_tcp_port, mosquitto_broker, require, running

pytestmark = pytest.mark.interop
TIMEOUT = 10.0


def split_packets(buf: bytearray) -> list[bytes]:
    """Cut complete packets off the front of ``buf`` (independent of the codec under test)."""
    out: list[bytes] = []
    while len(buf) >= 2:
        length, shift, i = 0, 0, 1
        while True:
            if i >= len(buf):
                return out
            b = buf[i]
            length |= (b & 0x7F) << shift
            shift += 7
            i += 1
            if not b & 0x80:
                break
        if len(buf) < i + length:
            return out
        out.append(bytes(buf[: i + length]))
        del buf[: i + length]
    return out


class Capture:
    """Accepts one client, answers like a minimal broker and records every packet's bytes."""

    def __init__(self) -> None:
        self.port = free_tcp_port()
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.server.settimeout(TIMEOUT)
        self.raw: list[bytes] = []
        self.level = 4
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            self.done.set()
            return
        conn.settimeout(TIMEOUT)
        buf = bytearray()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                for raw in split_packets(buf):
                    self.raw.append(raw)
                    reply = self._answer(raw)
                    if reply is None:
                        return
                    conn.sendall(reply)
        except OSError:
            return
        finally:
            conn.close()
            self.server.close()
            self.done.set()

    def _answer(self, raw: bytes) -> bytes | None:
        ptype = raw[0] >> 4
        if ptype == 1:
            packet = decode(raw)
            assert isinstance(packet, Connect)
            self.level = packet.protocol_level
            return encode(Connack(), self.level)
        packet = decode(raw, self.level)
        if isinstance(packet, Publish):
            if packet.qos == 1:
                return encode(Puback(packet.packet_id or 0), self.level)
            if packet.qos == 2:
                return encode(Pubrec(packet.packet_id or 0), self.level)
            return b""
        if isinstance(packet, Pubrel):
            return encode(Pubcomp(packet.packet_id), self.level)
        if isinstance(packet, Subscribe):
            granted = [o.qos for _, o in packet.subscriptions]
            # and one message, so that `mosquitto_sub -C 1` finishes
            return encode(Suback(packet.packet_id, granted), self.level) + encode(
                Publish("a/b", b"hi"), self.level
            )
        if isinstance(packet, Unsubscribe):
            codes = [0] * len(packet.topic_filters) if self.level == 5 else []
            return encode(Unsuback(packet.packet_id, codes), self.level)
        if isinstance(packet, Pingreq):
            return b"\xd0\x00"
        if isinstance(packet, Disconnect):
            return None
        return b""

    def packets(self) -> list[Packet]:
        """Decode what was captured, checking every packet re-encodes byte for byte."""
        assert self.done.wait(TIMEOUT), "client did not finish"
        assert self.raw, "nothing captured"
        out: list[Packet] = []
        level = None
        for raw in self.raw:
            packet = decode(raw, level)
            if isinstance(packet, Connect):
                level = packet.protocol_level
            assert level is not None
            assert encode(packet, level).hex(" ") == raw.hex(" "), packet
            out.append(packet)
        return out


@contextmanager
def capture() -> Iterator[Capture]:
    cap = Capture()
    try:
        yield cap
    finally:
        cap.server.close()


VERSIONS = [("mqttv31", 3), ("mqttv311", 4), ("mqttv5", 5)]


@pytest.mark.parametrize(("flag", "level"), VERSIONS)
def test_mosquitto_pub_bytes(flag: str, level: int) -> None:
    exe = require("mosquitto_pub")
    v5 = ["-D", "connect", "session-expiry-interval", "60",
          "-D", "publish", "message-expiry-interval", "30",
          "-D", "publish", "user-property", "k", "v"] if level == 5 else []  # fmt: skip
    with capture() as cap:
        args = [exe, "-h", "127.0.0.1", "-p", str(cap.port), "-V", flag, "-i", "golden",
                "-u", "user", "-P", "pw", "--will-topic", "w/t", "--will-payload", "bye",
                "--will-qos", "1", "--will-retain", "-t", "a/b", "-m", "hello", "-q", "2", "-r",
                *v5]  # fmt: skip
        with running(args) as proc:
            assert proc.wait(TIMEOUT) == 0, proc.output()
        got = cap.packets()
    connect = got[0]
    assert isinstance(connect, Connect)
    assert (connect.protocol_level, connect.client_id, connect.username, connect.password) == (
        level,
        "golden",
        "user",
        b"pw",
    )
    assert connect.will is not None and connect.will.topic == "w/t"
    assert (connect.will.payload, connect.will.qos, connect.will.retain) == (b"bye", 1, True)
    publish = got[1]
    assert isinstance(publish, Publish)
    assert (publish.topic, publish.payload, publish.qos, publish.retain) == (
        "a/b",
        b"hello",
        2,
        True,
    )
    if level == 5:
        assert connect.properties == {0x11: 60, 0x21: 20}  # mosquitto_pub adds Receive Maximum
        assert publish.properties == {0x02: 30, 0x26: [("k", "v")]}
    assert [type(p) for p in got[2:]] == [Pubrel, Disconnect]


@pytest.mark.parametrize(("flag", "level"), VERSIONS)
def test_mosquitto_sub_bytes(flag: str, level: int) -> None:
    exe = require("mosquitto_sub")
    with capture() as cap:
        args = [exe, "-h", "127.0.0.1", "-p", str(cap.port), "-V", flag, "-i", "subgolden",
                "-t", "a/+", "-t", "b/#", "-q", "1", "-C", "1", "-c"]  # fmt: skip
        if level == 5:
            args += ["-D", "subscribe", "subscription-identifier", "7"]
        with running(args) as proc:
            assert proc.wait(TIMEOUT) == 0, proc.output()
            assert "hi" in proc.output()
        got = cap.packets()
    connect = got[0]
    assert isinstance(connect, Connect) and not connect.clean_start
    subscribe = got[1]
    assert isinstance(subscribe, Subscribe)
    if level == 5:
        assert subscribe.properties == {0x0B: [7]}
    opts = SubscriptionOptions(1)
    assert subscribe.subscriptions == [("a/+", opts), ("b/#", opts)]
    assert isinstance(got[-1], Disconnect)


@pytest.mark.parametrize("level", [4, 5])
def test_paho_bytes(level: int) -> None:
    mqtt = pytest.importorskip("paho.mqtt.client")
    with capture() as cap:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id="paho-golden",
            protocol=mqtt.MQTTv5 if level == 5 else mqtt.MQTTv311,
        )
        client.connect("127.0.0.1", cap.port, keepalive=30)
        client.loop_start()
        try:
            client.publish("p/q", b"payload", qos=1).wait_for_publish(TIMEOUT)
            client.publish("p/q", b"two", qos=2).wait_for_publish(TIMEOUT)
            subscribed = threading.Event()
            unsubscribed = threading.Event()
            client.on_subscribe = lambda *a: subscribed.set()
            client.on_unsubscribe = lambda *a: unsubscribed.set()
            client.subscribe([("s/+", 1), ("t/#", 2)])
            assert subscribed.wait(TIMEOUT)
            client.unsubscribe("s/+")
            assert unsubscribed.wait(TIMEOUT)
        finally:
            client.disconnect()
            client.loop_stop()
        got = cap.packets()
    kinds = [type(p) for p in got]
    assert kinds[:3] == [Connect, Publish, Publish]
    assert Subscribe in kinds and Unsubscribe in kinds and kinds[-1] is Disconnect
    assert isinstance(got[0], Connect) and got[0].client_id == "paho-golden"


def _exchange(sock: socket.socket, buf: bytearray, wire: bytes, count: int) -> list[bytes]:
    sock.sendall(wire)
    got: list[bytes] = []
    while len(got) < count:
        got += split_packets(buf)
        if len(got) >= count:
            break
        data = sock.recv(65536)
        assert data, f"broker closed; got {got}"
        buf += data
    return got


@pytest.mark.parametrize("level", [3, 4, 5])
def test_mosquitto_broker_bytes(tmp_path: Path, level: int) -> None:
    """Everything a real mosquitto sends decodes and re-encodes to the same bytes."""
    name = "MQIsdp" if level == 3 else "MQTT"
    with mosquitto_broker(tmp_path) as (_, port):
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        buf = bytearray()
        steps: list[tuple[Packet, int]] = [
            (Connect(level, "golden", True, 30, protocol_name=name), 1),
            (Subscribe(1, [("g/#", SubscriptionOptions(2)), ("h", SubscriptionOptions(1))]), 1),
            (Publish("g/r", b"retained", 1, True, False, 2), 2),  # PUBACK + forwarded PUBLISH
            (Publish("g/x", b"two", 2, False, False, 3), 1),  # PUBREC
            (Pubrel(3), 2),  # PUBCOMP + forwarded PUBLISH
            (Pingreq(), 1),
            (Unsubscribe(4, ["h"]), 1),
        ]
        received: list[bytes] = []
        for packet, count in steps:
            received += _exchange(sock, buf, encode(packet, level), count)
        for raw in received:
            packet = decode(raw, level)
            assert encode(packet, level).hex(" ") == raw.hex(" "), packet
            if isinstance(packet, Publish) and packet.qos == 1:
                sock.sendall(encode(Puback(packet.packet_id or 0), level))
        kinds = {type(decode(raw, level)) for raw in received}
        assert {Connack, Suback, Puback, Pubrec, Pubcomp, Publish, Unsuback} <= kinds
        sock.sendall(encode(Disconnect(), level))
        sock.close()
