"""MQTT 5 in the sans-IO client: inbound topic aliases, Receive Maximum, ack properties, and
the DISCONNECT the client sends when the broker breaks the protocol. Bytes in, bytes out."""

from __future__ import annotations

import pytest

from m2mhub.client.connection import (
    ClientConnection,
    ConnackReceived,
    MessageReceived,
    PublishCompleted,
    State,
    SubscribeCompleted,
    UnsubscribeCompleted,
)
from m2mhub.mqtt.codec import decode, encode
from m2mhub.mqtt.errors import MQTTError
from m2mhub.mqtt.packets import (
    MQTT_5,
    Connack,
    Connect,
    Disconnect,
    Puback,
    Publish,
    Suback,
    Unsuback,
)

TOPIC_ALIAS_MAXIMUM, TOPIC_ALIAS, RECEIVE_MAXIMUM, REASON_STRING = 0x22, 0x23, 0x21, 0x1F


def connected(**connect_properties: int) -> ClientConnection:
    names = {"topic_alias_maximum": TOPIC_ALIAS_MAXIMUM, "receive_maximum": RECEIVE_MAXIMUM}
    props = {names[k]: v for k, v in connect_properties.items()}
    conn = ClientConnection(MQTT_5)
    conn.connect(Connect(client_id="c", properties=props), now=0.0)
    sent = decode(conn.data_to_send(), MQTT_5)
    assert isinstance(sent, Connect) and sent.properties == props
    assert isinstance(conn.receive_data(encode(Connack(), MQTT_5))[0], ConnackReceived)
    return conn


def publish(topic: str, alias: int | None = None, qos: int = 0, pid: int | None = None) -> bytes:
    props = {TOPIC_ALIAS: alias} if alias is not None else {}
    return encode(Publish(topic, b"x", qos, packet_id=pid, properties=props), MQTT_5)


def topics(events: list[object]) -> list[str]:
    return [e.publish.topic for e in events if isinstance(e, MessageReceived)]


def test_inbound_topic_alias_is_set_by_a_topic_and_used_by_an_empty_one() -> None:
    conn = connected(topic_alias_maximum=2)
    events = conn.receive_data(publish("a/b", alias=1) + publish("", alias=1))
    events += conn.receive_data(publish("c", alias=2) + publish("", alias=2) + publish("", 1))
    assert topics(events) == ["a/b", "a/b", "c", "c", "a/b"]
    # A topic with a known alias sets it anew.
    events = conn.receive_data(publish("d", alias=1) + publish("", alias=1))
    assert topics(events) == ["d", "d"]
    # The alias stays visible to the user (mosquitto_sub's %A prints it).
    assert events[1].publish.properties == {TOPIC_ALIAS: 1}  # type: ignore[attr-defined]


def test_aliases_belong_to_one_network_connection() -> None:
    conn = connected(topic_alias_maximum=1)
    conn.receive_data(publish("a", alias=1))
    conn.connection_lost()
    conn.connect(Connect(client_id="c", properties={TOPIC_ALIAS_MAXIMUM: 1}), now=0.0)
    conn.receive_data(encode(Connack(), MQTT_5))
    conn.data_to_send()
    with pytest.raises(MQTTError) as caught:
        conn.receive_data(publish("", alias=1))
    assert caught.value.reason_code == 0x82


@pytest.mark.parametrize(
    ("maximum", "data", "code"),
    [
        (0, publish("a", alias=1), 0x94),  # we allowed none
        (2, publish("a", alias=3), 0x94),  # above our Topic Alias Maximum
        (2, publish("", alias=2), 0x82),  # an alias never set
    ],
)
def test_a_bad_inbound_alias_sends_disconnect_with_its_reason_code(
    maximum: int, data: bytes, code: int
) -> None:
    conn = connected(topic_alias_maximum=maximum) if maximum else connected()
    with pytest.raises(MQTTError) as caught:
        conn.receive_data(data)
    assert caught.value.reason_code == code
    assert decode(conn.data_to_send(), MQTT_5) == Disconnect(code)
    assert conn.state is State.CLOSED


def test_receive_maximum_exceeded_by_the_broker_is_disconnect_0x93() -> None:
    conn = connected(receive_maximum=2)
    conn.receive_data(publish("t", qos=2, pid=1) + publish("t", qos=2, pid=2))
    conn.data_to_send()  # two PUBRECs; no PUBREL yet, so both still count
    conn.receive_data(publish("t", qos=2, pid=2))  # a resend is not a new message
    conn.data_to_send()
    with pytest.raises(MQTTError) as caught:
        conn.receive_data(publish("t", qos=2, pid=3))
    assert caught.value.reason_code == 0x93
    assert decode(conn.data_to_send(), MQTT_5) == Disconnect(0x93)


def test_receive_maximum_counts_only_messages_awaiting_pubrel() -> None:
    conn = connected(receive_maximum=1)
    for pid in (1, 2, 3):
        conn.receive_data(publish("t", qos=2, pid=pid))
        conn.receive_data(bytes([0x62, 0x02, 0, pid]))  # PUBREL: delivered, slot free
    assert conn.state is State.CONNECTED


def test_acknowledgements_carry_their_properties() -> None:
    conn = connected()
    mid = conn.publish("t", b"x", qos=1, now=0.0)
    props = {REASON_STRING: "no one listens", 0x26: [("k", "v")]}
    [done] = conn.receive_data(encode(Puback(mid, 0x10, props), MQTT_5))
    assert isinstance(done, PublishCompleted)
    assert (done.reason_code, done.properties) == (0x10, props)
    sub = conn.subscribe([("a", 1), ("b", 2)], now=0.0)
    [subbed] = conn.receive_data(encode(Suback(sub, [1, 0x87], {REASON_STRING: "b?"}), MQTT_5))
    assert isinstance(subbed, SubscribeCompleted)
    assert (subbed.reason_codes, subbed.properties) == ([1, 0x87], {REASON_STRING: "b?"})
    unsub = conn.unsubscribe(["a"], now=0.0)
    [unsubbed] = conn.receive_data(encode(Unsuback(unsub, [0x11], {REASON_STRING: "x"}), MQTT_5))
    assert isinstance(unsubbed, UnsubscribeCompleted)
    assert (unsubbed.reason_codes, unsubbed.properties) == ([0x11], {REASON_STRING: "x"})
