"""The sans-IO client connection, byte by byte: no sockets, time passed in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.client.connection import (
    ClientConnection,
    ConnackReceived,
    KeepaliveTimeout,
    MessageReceived,
    PongReceived,
    PublishCompleted,
    State,
    SubscribeCompleted,
    UnsubscribeCompleted,
)
from m2mhub.client.debug_log import packet_log_lines
from m2mhub.mqtt.errors import MQTTError, ProtocolError
from m2mhub.mqtt.packets import Connect, Packet, Publish, Will

CONNACK_OK = bytes.fromhex("20020000")
CONNACK_SESSION = bytes.fromhex("20020100")


def connected(level: int = 4, keepalive: int = 60, **kwargs: object) -> ClientConnection:
    conn = ClientConnection(level, **kwargs)  # type: ignore[arg-type]
    conn.connect(Connect(client_id="c", keepalive=keepalive), now=0.0)
    conn.data_to_send()
    connack = CONNACK_OK if level != 5 else bytes.fromhex("2003000000")
    events = conn.receive_data(connack)
    assert isinstance(events[0], ConnackReceived)
    assert conn.state is State.CONNECTED
    return conn


def test_connect_bytes_311_with_will_and_credentials() -> None:
    conn = ClientConnection(4)
    conn.connect(
        Connect(
            client_id="Sub1",
            clean_start=False,
            keepalive=60,
            will=Will("w", b"bye", qos=1, retain=True),
            username="u",
            password=b"p",
        ),
        now=0.0,
    )
    assert conn.data_to_send() == bytes.fromhex(
        "101e00044d51545404ec003c000453756231"  # header, flags 0xEC, keepalive, id
        "00017700036279650001750001"
        "70"
    )


def test_connect_31_uses_mqisdp() -> None:
    conn = ClientConnection(3)
    conn.connect(Connect(client_id="x", keepalive=10), now=0.0)
    data = conn.data_to_send()
    assert data[2:10] == b"\x00\x06MQIsdp"
    assert data[10] == 3


def test_refused_connack_closes() -> None:
    conn = ClientConnection(4)
    conn.connect(Connect(client_id=""), now=0.0)
    [event] = conn.receive_data(bytes.fromhex("20020005"))
    assert isinstance(event, ConnackReceived) and event.reason_code == 5
    assert conn.state is State.CLOSED


def test_qos0_publish_has_no_packet_id_but_a_mid() -> None:
    conn = connected()
    mid = conn.publish("a/b", b"hi", qos=0, now=1.0)
    assert mid == 1
    assert conn.data_to_send() == bytes.fromhex("30070003612f626869")


def test_qos1_flow() -> None:
    conn = connected()
    mid = conn.publish("t", b"x", qos=1, retain=True, now=1.0)
    assert conn.data_to_send() == bytes.fromhex("3306000174000178")
    assert conn.inflight_count == 1
    [event] = conn.receive_data(bytes.fromhex("40020001"))
    assert isinstance(event, PublishCompleted) and (event.mid, event.reason_code) == (mid, 0)
    assert conn.inflight_count == 0


def test_qos2_flow_sends_pubrel_then_completes_on_pubcomp() -> None:
    conn = connected()
    conn.publish("t", b"x", qos=2, now=1.0)
    assert conn.data_to_send() == bytes.fromhex("3406000174000178")
    assert conn.receive_data(bytes.fromhex("50020001")) == []
    assert conn.data_to_send() == bytes.fromhex("62020001")  # PUBREL
    [event] = conn.receive_data(bytes.fromhex("70020001"))
    assert isinstance(event, PublishCompleted) and event.mid == 1


def test_incoming_qos1_is_acked_and_delivered() -> None:
    conn = connected()
    [event] = conn.receive_data(bytes.fromhex("3206000174000778"))
    assert isinstance(event, MessageReceived)
    assert (event.publish.topic, event.publish.payload, event.publish.qos) == ("t", b"x", 1)
    assert conn.data_to_send() == bytes.fromhex("40020007")


def test_incoming_qos2_delivered_once_on_pubrel_even_if_resent() -> None:
    conn = connected()
    publish = bytes.fromhex("3406000174000978")
    dup_publish = bytes.fromhex("3c06000174000978")
    assert conn.receive_data(publish) == []
    assert conn.data_to_send() == bytes.fromhex("50020009")  # PUBREC
    assert conn.receive_data(dup_publish) == []  # re-sent before PUBREL: not delivered
    assert conn.data_to_send() == bytes.fromhex("50020009")
    [event] = conn.receive_data(bytes.fromhex("62020009"))
    assert isinstance(event, MessageReceived) and event.publish.payload == b"x"
    assert conn.data_to_send() == bytes.fromhex("70020009")  # PUBCOMP
    # A late duplicate PUBREL is answered but delivers nothing.
    assert conn.receive_data(bytes.fromhex("62020009")) == []
    assert conn.data_to_send() == bytes.fromhex("70020009")


def test_subscribe_and_unsubscribe() -> None:
    conn = connected()
    mid = conn.subscribe([("a/#", 1), ("b", 2)], now=0.0)
    assert conn.data_to_send() == bytes.fromhex("820c00010003612f230100016202")
    [event] = conn.receive_data(bytes.fromhex("900400010102"))
    assert isinstance(event, SubscribeCompleted) and event.mid == mid
    assert event.reason_codes == [1, 2]
    mid = conn.unsubscribe(["a/#"], now=0.0)
    assert conn.data_to_send() == bytes.fromhex("a20700020003612f23")
    [event] = conn.receive_data(bytes.fromhex("b0020002"))
    assert isinstance(event, UnsubscribeCompleted) and event.mid == mid


def test_keepalive_sends_pingreq_and_detects_a_dead_broker() -> None:
    conn = connected(keepalive=10)
    assert conn.next_deadline() == 10.0
    conn.publish("t", b"", now=4.0)  # sending resets the keepalive clock
    conn.data_to_send()
    assert conn.next_deadline() == 14.0
    conn.handle_timer(13.9)
    assert conn.data_to_send() == b""
    conn.handle_timer(14.0)
    assert conn.data_to_send() == bytes.fromhex("c000")
    [event] = conn.receive_data(bytes.fromhex("d000"))
    assert isinstance(event, PongReceived)
    conn.handle_timer(24.0)
    assert conn.data_to_send() == bytes.fromhex("c000")
    conn.handle_timer(34.0)  # no PINGRESP for a whole keepalive period
    assert isinstance(conn.next_event(), KeepaliveTimeout)


def test_unacked_messages_are_resent_with_dup_after_reconnect() -> None:
    conn = connected()
    conn.publish("t", b"1", qos=1, now=0.0)
    conn.publish("t", b"2", qos=2, now=0.0)
    conn.data_to_send()
    conn.receive_data(bytes.fromhex("50020002"))  # PUBREC for the QoS 2 one
    assert conn.data_to_send() == bytes.fromhex("62020002")
    conn.connection_lost()
    queued = conn.publish("t", b"3", qos=1, now=0.0)  # while offline: waits
    assert conn.data_to_send() == b""
    conn.connect(Connect(client_id="c", clean_start=False), now=1.0)
    conn.data_to_send()
    [event] = conn.receive_data(CONNACK_SESSION)
    assert isinstance(event, ConnackReceived) and event.session_present
    assert conn.data_to_send() == (
        bytes.fromhex("3a06000174000131")  # PUBLISH with DUP, mid 1
        + bytes.fromhex("62020002")  # PUBREL again
        + bytes.fromhex("3206000174000333")  # the message queued while offline
    )
    assert queued == 3


def test_inflight_window_holds_back_messages() -> None:
    conn = connected(max_inflight=2)
    for n in range(4):
        conn.publish("t", bytes([n]), qos=1, now=0.0)
    assert conn.inflight_count == 2 and conn.waiting_count == 2
    conn.data_to_send()
    [event] = conn.receive_data(bytes.fromhex("40020001"))
    assert isinstance(event, PublishCompleted)
    assert conn.data_to_send() == bytes.fromhex("3206000174000302")


def test_packet_ids_skip_ids_in_use_when_wrapping() -> None:
    conn = connected()
    conn.publish("t", b"", qos=1, now=0.0)  # mid 1 stays in flight
    for _ in range(65534):
        conn.publish("t", b"", qos=0, now=0.0)
    assert conn.publish("t", b"", qos=0, now=0.0) == 2


def test_mqtt5_assigned_client_id_and_receive_maximum() -> None:
    conn = ClientConnection(5, max_inflight=20)
    conn.connect(Connect(client_id=""), now=0.0)
    conn.data_to_send()
    # CONNACK: flags 0, rc 0, properties: Receive Maximum 1, Assigned Client Identifier "xy".
    props = bytes.fromhex("210001") + bytes.fromhex("1200027879")
    conn.receive_data(bytes([0x20, 3 + len(props), 0, 0, len(props)]) + props)
    assert conn.client_id == "xy"
    conn.publish("t", b"", qos=1, now=0.0)
    conn.publish("t", b"", qos=1, now=0.0)
    assert conn.inflight_count == 1 and conn.waiting_count == 1


def test_a_broker_sending_subscribe_is_a_protocol_error() -> None:
    conn = connected()
    with pytest.raises(ProtocolError):
        conn.receive_data(bytes.fromhex("8206000100016100"))


def test_garbage_raises_mqtt_error() -> None:
    conn = connected()
    with pytest.raises(MQTTError):
        conn.receive_data(b"\x00\x00")


def test_trace_sees_every_packet_in_order() -> None:
    seen: list[str] = []

    def trace(direction: str, packet: Packet) -> None:
        seen.extend(packet_log_lines(direction, packet, conn.client_id))

    conn = ClientConnection(4, trace=trace)
    conn.connect(Connect(client_id=""), now=0.0)
    conn.receive_data(CONNACK_OK)
    conn.publish("test/message", b"MESSAGE 1", qos=1, now=0.0)
    conn.receive_data(bytes.fromhex("40020001"))
    conn.disconnect(now=0.0)
    assert seen == [
        "Client (null) sending CONNECT",
        "Client (null) received CONNACK (0)",
        "Client (null) sending PUBLISH (d0, q1, r0, m1, 'test/message', ... (9 bytes))",
        "Client (null) received PUBACK (Mid: 1, RC:0)",
        "Client (null) sending DISCONNECT",
    ]
    assert conn.state is State.CLOSED


def test_received_publish_fields() -> None:
    conn = connected()
    [event] = conn.receive_data(bytes.fromhex("31050001746162"))
    assert isinstance(event, MessageReceived)
    assert event.publish == Publish("t", b"ab", 0, True, False, None, {})


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200), chunk=st.integers(min_value=1, max_value=16))
def test_random_bytes_from_a_broker_only_raise_mqtt_errors(data: bytes, chunk: int) -> None:
    conn = connected()
    conn.publish("t", b"x", qos=1, now=0.0)
    conn.publish("t", b"y", qos=2, now=0.0)
    conn.subscribe([("a/#", 1)], now=0.0)
    try:
        for start in range(0, len(data), chunk):
            conn.receive_data(data[start : start + chunk])
            conn.handle_timer(float(start))
    except MQTTError:
        pass


@settings(max_examples=100, deadline=None)
@given(payloads=st.lists(st.binary(max_size=40), max_size=20), qos=st.integers(0, 2))
def test_received_messages_survive_any_split(payloads: list[bytes], qos: int) -> None:
    """A stream of PUBLISH (+PUBREL) packets fed a byte at a time delivers each message once."""
    from m2mhub.mqtt.codec import encode
    from m2mhub.mqtt.packets import Pubrel

    stream = b""
    for n, payload in enumerate(payloads, start=1):
        stream += encode(Publish("t/x", payload, qos, False, False, n if qos else None), 4)
        if qos == 2:
            stream += encode(Pubrel(n), 4)
    conn = connected()
    delivered = [
        event.publish.payload
        for i in range(len(stream))
        for event in conn.receive_data(stream[i : i + 1])
        if isinstance(event, MessageReceived)
    ]
    assert delivered == payloads
