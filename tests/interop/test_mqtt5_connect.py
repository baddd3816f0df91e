"""MQTT 5 CONNECT/CONNACK against mosquitto 2.0.11 and m2mhub: an unknown Authentication
Method (mosquitto_pub and paho), ``max_qos``, ``retain_available``, Request Response
Information, Request Problem Information.

CONNACK properties are parsed here by a few lines of independent code (not m2mhub's codec).
"""

from __future__ import annotations

import struct
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.interop import raw
from tests.interop.conftest import Broker, BrokerFactory, start_broker
from tests.interop.raw import RawClient
from tests.support import require

_BYTE = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
_TWO = {0x13, 0x21, 0x22, 0x23}
_FOUR = {0x02, 0x11, 0x18, 0x27}
_STRING = {0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F}


def props_of(body: bytes, pos: int) -> dict[int, object]:
    """The properties starting at ``pos`` (the property length varint) of a packet body."""
    length, used = raw.read_varint(body, pos)
    pos += used
    end = pos + length
    props: dict[int, object] = {}
    while pos < end:
        pid = body[pos]
        pos += 1
        if pid in _BYTE:
            props[pid] = body[pos]
            pos += 1
        elif pid in _TWO:
            props[pid] = struct.unpack_from("!H", body, pos)[0]
            pos += 2
        elif pid in _FOUR:
            props[pid] = struct.unpack_from("!I", body, pos)[0]
            pos += 4
        elif pid in _STRING or pid == 0x16:
            (n,) = struct.unpack_from("!H", body, pos)
            value = body[pos + 2 : pos + 2 + n]
            props[pid] = value if pid == 0x16 else value.decode()
            pos += 2 + n
        else:
            raise AssertionError(f"property 0x{pid:02X} not expected here")
    return props


def connect5(port: int, client_id: str, props: bytes = b"", flags: int = 0x02, tail: bytes = b""):  # type: ignore[no-untyped-def]
    c = RawClient(port, 5)
    body = raw.utf8(b"MQTT") + bytes([5, flags]) + struct.pack("!H", 60)
    body += raw.varint(len(props)) + props + raw.utf8(client_id) + tail
    c.send(raw.packet(raw.CONNECT, 0, body))
    return c, c.expect(raw.CONNACK)


def test_mosquitto_pub_with_unknown_authentication_method(broker: Broker) -> None:
    """mosquitto 2.0.11 without plugins, and m2mhub without such a method: CONNACK 0x8C."""
    mark = broker.mark()
    done = subprocess.run(
        [
            *(require("mosquitto_pub"), "-p", str(broker.port), "-V", "5", "-i", "authfoo"),
            *("-D", "connect", "authentication-method", "foo", "-t", "a", "-m", "b"),
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode != 0
    assert "Connection error: Bad authentication method" in done.stderr
    broker.wait_log("Client <unknown> disconnected due to", start=mark)
    lines = broker.lines_since(mark)
    assert "Sending CONNACK to authfoo (0, 140)" in lines
    assert "Client <unknown> disconnected due to QoS too high or retain not supported." in lines


def test_paho_with_unknown_authentication_method(broker: Broker) -> None:
    """paho-mqtt 2.2 can send an Authentication Method but has no AUTH packet handling (its
    client.py treats a received AUTH as an unknown command), so this is as far as it goes."""
    got: list[int] = []
    done = threading.Event()

    def on_connect(
        client: mqtt.Client, userdata: object, flags: object, rc: object, p: object
    ) -> None:
        got.append(int(rc.value))  # type: ignore[attr-defined]
        done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, "paho-auth", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.on_connect = on_connect
    props = Properties(PacketTypes.CONNECT)
    props.AuthenticationMethod = "foo"
    props.AuthenticationData = b"hello"
    client.connect("127.0.0.1", broker.port, properties=props)
    client.loop_start()
    try:
        assert done.wait(10)
    finally:
        client.loop_stop()
    assert got == [0x8C]


def test_max_qos(make_broker: BrokerFactory) -> None:
    broker = make_broker(["max_qos 1"])
    c, ack = connect5(broker.port, "mq5")
    assert ack.body[:2] == b"\x00\x00" and props_of(ack.body, 2)[0x24] == 1
    c.send(raw.subscribe(1, [("mq/t", 2)], level=5))
    assert c.expect(raw.SUBACK).body[-1] == 1  # granted QoS 1
    mark = broker.mark()
    c.send(raw.publish("mq/t", b"x", qos=2, level=5))
    seen = c.wait_closed()
    assert [(p.ptype, p.body[:1]) for p in seen] == [(raw.DISCONNECT, b"\x9b")]
    broker.wait_log("Requested QoS not supported on server.", start=mark)
    assert broker.lines_since(mark)[-2:] == [
        "Too high QoS in PUBLISH from mq5, disconnecting.",
        "Bad socket read/write on client mq5: Requested QoS not supported on server.",
    ]
    with RawClient(broker.port) as c4:
        assert c4.connect("mq4").body == b"\x00\x00"
        assert c4.subscribe([("mq/t", 2)]).body == b"\x00\x01\x01"
        c4.send(raw.publish("mq/t", b"x", qos=2))
        assert c4.wait_closed() == []


def test_will_above_max_qos(make_broker: BrokerFactory) -> None:
    broker = make_broker(["max_qos 1"])
    will = b"\x00" + raw.utf8("w/t") + raw.utf8(b"gone")  # no will properties
    c, ack = connect5(broker.port, "w5", flags=0x02 | 0x04 | (2 << 3), tail=will)
    assert ack.body[:2] == b"\x00\x9b"
    assert props_of(ack.body, 2)[0x24] == 1
    assert c.wait_closed() == []
    with RawClient(broker.port) as c4:
        c4.send(raw.connect("w4", will=("w/t", b"gone", 2, False)))
        assert c4.wait_closed() == []


def test_retain_unavailable_is_announced(make_broker: BrokerFactory) -> None:
    broker = make_broker(["retain_available false"])
    c, ack = connect5(broker.port, "r5")
    assert props_of(ack.body, 2)[0x25] == 0
    c.close()


def test_request_response_information(broker: Broker) -> None:
    """mosquitto 2.0.11 ignores Request Response Information; m2mhub answers it (MQTT 5.0
    3.2.2.3.15 lets a server choose) with ``response/<client id>``."""
    c, ack = connect5(broker.port, "rri", props=b"\x19\x01")
    got = props_of(ack.body, 2).get(0x1A)
    assert got == (None if broker.kind == "mosquitto" else "response/rri")
    c.close()


# AUTH 0x19 with a method, from a client whose CONNECT named none: a protocol error.
AUTH_WITHOUT_METHOD = raw.packet(raw.AUTH, 0, b"\x19\x06\x15\x00\x03foo")


def test_auth_from_client_that_named_no_method(broker: Broker) -> None:
    """A protocol error for both; mosquitto 2.0.11 closes silently, m2mhub sends DISCONNECT
    0x82 as MQTT 5.0 4.13.1 asks."""
    c, ack = connect5(broker.port, "nomethod")
    assert ack.body[:2] == b"\x00\x00"
    c.send(AUTH_WITHOUT_METHOD)
    seen = c.wait_closed()
    if broker.kind == "mosquitto":
        assert seen == []
    else:
        assert [(p.ptype, p.body[:1]) for p in seen] == [(raw.DISCONNECT, b"\x82")]


def test_reason_string_unless_problem_information_is_0(tmp_path: Path) -> None:
    """m2mhub only (mosquitto 2.0.11 sends no Reason Strings): the server DISCONNECT carries
    the log line's reason, unless the client set Request Problem Information to 0."""
    with start_broker("m2mhub", tmp_path) as broker:
        c, _ = connect5(broker.port, "rs")
        c.send(AUTH_WITHOUT_METHOD)
        (disconnect,) = c.wait_closed()
        assert disconnect.body[:1] == b"\x82"
        reason = props_of(disconnect.body, 1)[0x1F]
        broker.wait_log(f"Client rs disconnected due to protocol error ({reason}).")
        quiet, _ = connect5(broker.port, "rpi0", props=b"\x17\x00")
        quiet.send(AUTH_WITHOUT_METHOD)
        (disconnect,) = quiet.wait_closed()
        assert disconnect.body == b"\x82"  # no properties at all
