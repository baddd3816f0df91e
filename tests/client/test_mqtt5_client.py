"""MQTTClient's MQTT 5 surface over real sockets, against a real mosquitto and m2mhub serve:
properties by name, reason codes and reason strings, CONNACK properties, the broker's
DISCONNECT, inbound topic aliases and the broker's Receive Maximum."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from m2mhub.client import ConnectionLostError, MQTTClient, MQTTProperties
from m2mhub.mqtt.packets import Packet, Puback, Publish
from tests.interop.conftest import BROKERS, Broker, start_broker

pytestmark = pytest.mark.interop

CONFIG = ["max_keepalive 30", "max_inflight_messages 2"]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


@pytest.fixture(scope="module", params=BROKERS)
def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    with start_broker(str(request.param), tmp_path_factory.mktemp("c5"), CONFIG) as running:
        yield running


def unique(prefix: str) -> str:
    return f"c5/{prefix}/{uuid.uuid4().hex[:8]}"


def test_properties_reach_the_subscriber_by_name(broker: Broker) -> None:
    topic = unique("props")
    sent = MQTTProperties(
        payload_format_indicator=1,
        message_expiry_interval=600,
        content_type="application/json",
        response_topic="replies/1",
        correlation_data=b"\x00id-1",
        user_properties=[("k", "1"), ("a", "2"), ("k", "3")],
    )

    async def main() -> None:
        async with MQTTClient() as sub, MQTTClient() as pub:
            await sub.connect("127.0.0.1", broker.port, protocol=5)
            granted = await sub.subscribe(
                [(topic, 1)], MQTTProperties(subscription_identifiers=[42])
            )
            assert granted == [1] and granted.reason_codes == [1]
            await pub.connect("127.0.0.1", broker.port, protocol=5)
            await pub.publish(topic, b"{}", qos=1, properties=sent)
            message = await sub.next_message(timeout=5)
            props = message.properties
            assert props.payload_format_indicator == 1
            assert props.message_expiry_interval is not None
            assert 590 <= props.message_expiry_interval <= 600
            assert props.content_type == "application/json"
            assert props.response_topic == "replies/1"
            assert props.correlation_data == b"\x00id-1"
            assert props.user_properties == [("k", "1"), ("a", "2"), ("k", "3")]
            assert props.subscription_identifiers == [42]
            assert props.topic_alias is None and props.reason_string is None

    run(main())


def test_connack_properties_after_connect(broker: Broker) -> None:
    async def main() -> None:
        async with MQTTClient() as client:
            await client.connect("127.0.0.1", broker.port, protocol=5, keepalive=60)
            props = client.connack_properties
            assert props.assigned_client_identifier == client.client_id != ""
            assert props.server_keep_alive == 30  # max_keepalive 30
            assert props.receive_maximum == 2  # max_inflight_messages 2
            assert props.topic_alias_maximum == 10
        async with MQTTClient() as old:
            await old.connect("127.0.0.1", broker.port, protocol=4)
            assert old.connack_properties == {}

    run(main())


def test_reason_codes_of_publish_subscribe_and_unsubscribe(broker: Broker) -> None:
    async def main() -> None:
        async with MQTTClient() as client:
            await client.connect("127.0.0.1", broker.port, protocol=5)
            result = await client.publish(unique("nobody"), b"x", qos=1)
            assert result == result.reason_code == 0x10  # No matching subscribers
            assert result.mid > 0
            qos0 = await client.publish(unique("nobody"), b"x", qos=0)
            assert qos0 == 0
            assert await client.subscribe([(unique("a"), 2), (unique("b"), 0)]) == [2, 0]
            gone = await client.unsubscribe([unique("never")])
            assert gone == gone.reason_codes == [0x11]  # No subscription existed

    run(main())


def test_a_broker_disconnect_gives_its_reason_code_and_text(broker: Broker) -> None:
    """Session takeover: m2mhub sends DISCONNECT 0x8E as the specification says; mosquitto
    2.0.11 closes the old connection without a DISCONNECT, so there is no reason code."""
    client_id = f"takeover-{uuid.uuid4().hex[:6]}"

    async def main() -> None:
        async with MQTTClient() as first, MQTTClient() as second:
            await first.connect("127.0.0.1", broker.port, client_id, protocol=5)
            await second.connect("127.0.0.1", broker.port, client_id, protocol=5)
            await first.wait_closed()
            error = first.error
            assert isinstance(error, ConnectionLostError)
            if broker.kind == "mosquitto":
                assert error.reason_code is None
                return
            assert error.reason_code == 0x8E
            assert error.reason_string == "session taken over"  # m2mhub's Reason String
            assert str(error) == (
                "broker sent DISCONNECT: Session taken over (0x8E): session taken over"
            )

    run(main())


def test_inbound_topic_aliases_are_resolved(broker: Broker) -> None:
    """mosquitto never sends aliases; m2mhub does once the client allows them."""
    topic = unique("alias")
    wire_topics: list[str] = []  # as received, before the client resolves an alias

    def watch(direction: str, packet: Packet, _: str) -> None:
        if direction == "received" and isinstance(packet, Publish):
            wire_topics.append(packet.topic)

    async def main() -> None:
        sub = MQTTClient(on_packet=watch)
        async with sub, MQTTClient() as pub:
            await sub.connect("127.0.0.1", broker.port, protocol=5, topic_alias_maximum=5)
            await sub.subscribe([(topic, 1), (topic + "/b", 1)])
            await pub.connect("127.0.0.1", broker.port, protocol=5)
            for n in range(3):
                await pub.publish(topic, f"m{n}", qos=1)
                await pub.publish(topic + "/b", f"b{n}", qos=0)
            got = []
            while len(got) < 6:
                message = await sub.next_message(timeout=5)
                got.append((message.topic, message.payload, message.properties.topic_alias))
        assert sorted(t for t, _, _ in got) == [topic] * 3 + [topic + "/b"] * 3
        if broker.kind == "m2mhub":
            assert wire_topics.count("") == 4  # each topic named once, then by alias
            assert {alias for _, _, alias in got} == {1, 2}
        else:
            assert "" not in wire_topics

    run(main())


def test_the_brokers_receive_maximum_is_honoured(broker: Broker) -> None:
    """The broker allows 2 unacknowledged QoS 1 messages; the client never sends a third."""
    topic = unique("recvmax")
    outstanding = [0]
    most = [0]

    def watch(direction: str, packet: Packet, _: str) -> None:
        if direction == "sending" and isinstance(packet, Publish) and packet.qos:
            outstanding[0] += 1
            most[0] = max(most[0], outstanding[0])
        elif direction == "received" and isinstance(packet, Puback):
            outstanding[0] -= 1

    async def main() -> None:
        async with MQTTClient(on_packet=watch, max_inflight=100) as client:
            await client.connect("127.0.0.1", broker.port, protocol=5)
            futures = [client.publish_nowait(topic, b"x", qos=1) for _ in range(30)]
            assert await asyncio.gather(*futures) == [0x10] * 30

    run(main())
    assert most[0] == 2
