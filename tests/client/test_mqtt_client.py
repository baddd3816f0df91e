"""The asyncio MQTTClient against a real mosquitto started by the test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from m2mhub.client import (
    ConnectionRefusedByBroker,
    Message,
    MQTTClient,
    MQTTClientError,
    Will,
)
from m2mhub.mqtt.packets import Packet, Pingresp
from tests.support import free_tcp_port, mosquitto_broker

pytestmark = pytest.mark.interop


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


@pytest.fixture(scope="module")
def broker_port(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with mosquitto_broker(tmp_path_factory.mktemp("mosq")) as (_, port):
        yield port


async def _next(client: MQTTClient) -> Message:
    return await client.next_message(timeout=5)


@pytest.mark.parametrize("protocol", [3, 4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_and_receive(broker_port: int, protocol: int, qos: int) -> None:
    topic = f"client/roundtrip/{protocol}/{qos}"

    async def main() -> None:
        async with MQTTClient() as sub, MQTTClient() as pub:
            await sub.connect("127.0.0.1", broker_port, protocol=protocol)
            assert await sub.subscribe([(topic, 2)]) == [2]
            await pub.connect("127.0.0.1", broker_port, protocol=protocol)
            assert await pub.publish(topic, b"hello \x00 bytes", qos=qos) in (0, 0x10)
            message = await _next(sub)
            assert (message.topic, message.payload, message.qos) == (
                topic,
                b"hello \x00 bytes",
                qos,
            )
            assert not message.retain

    run(main())


def test_mqtt5_broker_assigns_client_id(broker_port: int) -> None:
    async def main() -> None:
        async with MQTTClient() as client:
            await client.connect("127.0.0.1", broker_port, protocol=5)
            assert client.client_id.startswith("auto-")

    run(main())


def test_persistent_session_gets_queued_messages_after_reconnect(broker_port: int) -> None:
    topic = "client/persist"

    async def main() -> None:
        sub = MQTTClient()
        present = await sub.connect("127.0.0.1", broker_port, "persist-1", clean_session=False)
        await sub.subscribe([(topic, 2)])
        await sub.disconnect()
        async with MQTTClient() as pub:
            await pub.connect("127.0.0.1", broker_port)
            for n, qos in enumerate((0, 1, 2)):
                await pub.publish(topic, f"m{n}", qos=qos)
        present = await sub.connect("127.0.0.1", broker_port, "persist-1", clean_session=False)
        assert present
        got = [await _next(sub), await _next(sub)]
        assert [(m.payload, m.qos) for m in got] == [(b"m1", 1), (b"m2", 2)]
        await sub.disconnect()
        # Clean up the session so reruns start fresh.
        await sub.connect("127.0.0.1", broker_port, "persist-1", clean_session=True)
        await sub.disconnect()

    run(main())


def test_retained_message_and_unsubscribe(broker_port: int) -> None:
    topic = "client/retained"

    async def main() -> None:
        async with MQTTClient() as pub, MQTTClient() as sub:
            await pub.connect("127.0.0.1", broker_port)
            await pub.publish(topic, b"kept", qos=1, retain=True)
            await sub.connect("127.0.0.1", broker_port)
            await sub.subscribe([(topic, 1)])
            message = await _next(sub)
            assert (message.payload, message.retain) == (b"kept", True)
            await sub.unsubscribe([topic])
            await sub.subscribe([("client/marker", 0)])
            await pub.publish(topic, b"", qos=1, retain=True)  # clears, and is not for us now
            await pub.publish("client/marker", b"end", qos=1)
            assert (await _next(sub)).topic == "client/marker"

    run(main())


def test_will_is_sent_on_abnormal_close_only(broker_port: int) -> None:
    async def main() -> None:
        async with MQTTClient() as watcher:
            await watcher.connect("127.0.0.1", broker_port)
            await watcher.subscribe([("client/will/#", 1)])
            polite = MQTTClient()
            await polite.connect(
                "127.0.0.1", broker_port, will=Will("client/will/polite", b"gone", 1)
            )
            await polite.disconnect()
            crash = MQTTClient()
            await crash.connect(
                "127.0.0.1", broker_port, will=Will("client/will/crash", b"died", 1, False)
            )
            crash.abort()
            await crash.wait_closed()
            message = await _next(watcher)
            assert (message.topic, message.payload, message.qos) == (
                "client/will/crash",
                b"died",
                1,
            )

    run(main())


@pytest.mark.parametrize(
    ("protocol", "code", "text"),
    [(4, 5, "Connection Refused: not authorised."), (5, 0x87, "Not authorized")],
)
def test_refused_connection_raises_with_connack_code(
    tmp_path: Path, protocol: int, code: int, text: str
) -> None:
    async def main(port: int) -> None:
        client = MQTTClient()
        with pytest.raises(ConnectionRefusedByBroker) as info:
            await client.connect("127.0.0.1", port, protocol=protocol)
        assert info.value.code == code
        assert str(info.value) == text
        assert not client.connected

    with mosquitto_broker(tmp_path, ["allow_anonymous false"]) as (_, port):
        run(main(port))


def test_unreachable_broker_raises_oserror() -> None:
    async def main() -> None:
        with pytest.raises(ConnectionRefusedError):
            await MQTTClient().connect("127.0.0.1", free_tcp_port())

    run(main())


def test_keepalive_pings(broker_port: int) -> None:
    async def main() -> None:
        pong = asyncio.Event()

        def on_packet(direction: str, packet: Packet, client_id: str) -> None:
            if isinstance(packet, Pingresp):
                pong.set()

        async with MQTTClient(on_packet=on_packet) as client:
            await client.connect("127.0.0.1", broker_port, keepalive=1)
            await asyncio.wait_for(pong.wait(), 5)
            assert client.connected

    run(main())


def test_messages_iterator_ends_on_disconnect_and_publish_fails_after(broker_port: int) -> None:
    async def main() -> None:
        client = MQTTClient()
        await client.connect("127.0.0.1", broker_port)
        await client.subscribe([("client/iter", 0)])
        await client.publish("client/iter", b"one")
        received: list[bytes] = []

        async def consume() -> None:
            async for message in client.messages():
                received.append(message.payload)
                await client.disconnect()

        await consume()
        assert received == [b"one"]
        with pytest.raises(MQTTClientError):
            await client.publish("client/iter", b"two")

    run(main())


def test_many_pipelined_qos1_messages_respect_the_window(broker_port: int) -> None:
    async def main() -> None:
        async with MQTTClient(max_inflight=5) as sub, MQTTClient(max_inflight=5) as pub:
            await sub.connect("127.0.0.1", broker_port)
            await sub.subscribe([("client/window", 1)])
            await pub.connect("127.0.0.1", broker_port)
            futures: list[Awaitable[int]] = [
                pub.publish_nowait("client/window", str(n), qos=1) for n in range(200)
            ]
            await asyncio.gather(*futures)
            got = [(await _next(sub)).payload for _ in range(200)]
            assert got == [str(n).encode() for n in range(200)]

    run(main())
