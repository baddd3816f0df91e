"""The asyncio MQTTClient against a real mosquitto started by the test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from m2mhub.client import (
    ConnectionLostError,
    ConnectionRefusedByBroker,
    Message,
    MQTTClient,
    MQTTClientError,
    Will,
)
from m2mhub.client.debug_log import packet_log_lines
from m2mhub.mqtt.packets import Packet, Pingresp
from tests.client.cli_support import scripted_peer
from tests.support import Proc, free_tcp_port, mosquitto_broker

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


class _CuttableProxy:
    """A TCP proxy to the broker whose client-to-broker direction can be muted, then cut."""

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.mute_upstream = False
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            while data := await src.read(65536):
                if not (up and self.mute_upstream):
                    dst.write(data)

        await asyncio.gather(
            pipe(reader, up_writer, True), pipe(up_reader, writer, False), return_exceptions=True
        )

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        assert self.server is not None
        self.server.close()


def test_unacknowledged_publish_is_resent_with_dup_after_reconnect(tmp_path: Path) -> None:
    """A QoS 1 message lost on the way is sent again, DUP set, when the session resumes."""

    async def main(port: int, log: Proc) -> None:
        lines: list[str] = []

        def on_packet(direction: str, packet: Packet, client_id: str) -> None:
            lines.extend(packet_log_lines(direction, packet, client_id))

        async with MQTTClient() as watcher:
            await watcher.connect("127.0.0.1", port)
            await watcher.subscribe([("client/dup", 1)])
            proxy = _CuttableProxy(port)
            proxy_port = await proxy.start()
            client = MQTTClient(on_packet=on_packet)
            await client.connect("127.0.0.1", proxy_port, "dup-client", clean_session=False)
            proxy.mute_upstream = True
            pending = client.publish_nowait("client/dup", b"once", qos=1)
            proxy.cut()
            with pytest.raises(ConnectionLostError):
                await pending
            assert await client.connect("127.0.0.1", port, "dup-client", clean_session=False)
            message = await _next(watcher)
            assert (message.topic, message.payload) == ("client/dup", b"once")
            await client.disconnect()
            await client.connect("127.0.0.1", port, "dup-client", clean_session=True)
            await client.disconnect()
        resent = "Client dup-client sending PUBLISH (d1, q1, r0, m1, 'client/dup', ... (4 bytes))"
        assert lines.count(resent) == 1
        assert "Client dup-client received PUBACK (Mid: 1, RC:0)" in lines
        log.wait_for_line("Received PUBLISH from dup-client (d1, q1, r0, m1, 'client/dup'")

    with mosquitto_broker(tmp_path) as (log, port):
        run(main(port, log))


def test_a_broker_that_stops_answering_pings_is_detected() -> None:
    def silent_after_connack(packet: bytes) -> bytes | None:
        return bytes.fromhex("20020000") if packet[0] >> 4 == 1 else b""

    async def main(port: int) -> None:
        client = MQTTClient()
        await client.connect("127.0.0.1", port, keepalive=1)
        with pytest.raises(ConnectionLostError, match="PINGRESP"):
            await client.next_message(timeout=10)
        assert not client.connected

    with scripted_peer(silent_after_connack) as port:
        run(main(port))


def test_mqtt5_disconnect_from_the_broker_carries_its_reason() -> None:
    """mosquitto 2.0.11 just closes on a takeover, so a scripted peer sends the DISCONNECT."""

    def disconnect_on_subscribe(packet: bytes) -> bytes | None:
        kind = packet[0] >> 4
        if kind == 1:
            return bytes.fromhex("2003000000")  # MQTT 5 CONNACK, no properties
        return bytes.fromhex("e0028e00") if kind == 8 else b""  # DISCONNECT 0x8E

    async def main(port: int) -> None:
        seen: list[str] = []

        def on_packet(direction: str, packet: Packet, client_id: str) -> None:
            seen.extend(packet_log_lines(direction, packet, client_id))

        client = MQTTClient(on_packet=on_packet)
        await client.connect("127.0.0.1", port, "taken-over", protocol=5)
        with pytest.raises(ConnectionLostError) as info:
            await client.subscribe([("t", 0)])
        assert info.value.reason_code == 0x8E
        assert "Session taken over" in str(info.value)
        assert seen[-1] == "Received DISCONNECT (142)"  # libmosquitto's line
        assert not client.connected

    with scripted_peer(disconnect_on_subscribe) as port:
        run(main(port))
