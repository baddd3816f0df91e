"""The asyncio TCP shell over real loopback sockets."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from m2mhub.hub.broker import Broker
from m2mhub.hub.log import BrokerLog
from m2mhub.hub.settings import BrokerSettings
from m2mhub.mqtt.codec import PacketReader, encode
from m2mhub.mqtt.packets import (
    Connack,
    Connect,
    Packet,
    Puback,
    Publish,
    Suback,
    Subscribe,
    SubscriptionOptions,
)
from m2mhub.net.mqtt_server import MqttServer, listeners_from_settings

TIMEOUT = 10.0


class RawClient:
    """A minimal MQTT 3.1.1 client on asyncio streams, for driving the server in tests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.packets = PacketReader(protocol_level=4)
        self.queue: list[Packet] = []

    @classmethod
    async def connect(cls, port: int, client_id: str, keepalive: int = 60) -> RawClient:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        c = cls(r, w)
        c.send(Connect(client_id=client_id, keepalive=keepalive))
        assert await c.next() == Connack(False, 0)
        return c

    def send(self, packet: Packet) -> None:
        self.writer.write(encode(packet, 4))

    async def next(self) -> Packet:
        while not self.queue:
            data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
            if not data:
                raise EOFError
            self.queue.extend(self.packets.feed_all(data))
        return self.queue.pop(0)

    async def closed_by_server(self) -> bool:
        try:
            while True:
                await self.next()
        except EOFError:
            return True

    def close(self) -> None:
        self.writer.close()


def run(
    test: Callable[[MqttServer, list[str]], Awaitable[None]], uvloop: bool = False, **settings: Any
) -> list[str]:
    """Start a broker on a free port, run ``test(server, log_lines)``, shut down."""
    settings.setdefault("sys_interval", 0)

    async def main() -> list[str]:
        s = BrokerSettings(**settings)
        log = BrokerLog(("all",), collect=True)
        loop = asyncio.get_running_loop()
        broker = Broker(s, log, now=loop.time())
        server = MqttServer()
        await server.start(broker, [("127.0.0.1", 0)])
        assert log.lines is not None
        try:
            await asyncio.wait_for(test(server, log.lines), 30)
        finally:
            await server.close()
        return log.lines

    if uvloop:
        module = pytest.importorskip("uvloop")
        return module.run(main())  # type: ignore[no-any-return]
    return asyncio.run(main())


@pytest.mark.parametrize("uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_subscribe_publish_over_tcp(uvloop: bool) -> None:
    async def scenario(server: MqttServer, lines: list[str]) -> None:
        port = server.ports[0]
        sub = await RawClient.connect(port, "sub")
        sub.send(Subscribe(1, [("a/#", SubscriptionOptions(qos=1))]))
        assert await sub.next() == Suback(1, [1])
        pub = await RawClient.connect(port, "pub")
        pub.send(Publish("a/b", b"hello", 0))
        msg = await sub.next()
        assert isinstance(msg, Publish) and msg.payload == b"hello"
        pub.close()
        sub.close()

    lines = run(scenario, uvloop=uvloop)
    assert lines[0].startswith("Opening ipv4 listen socket on port ")


def test_keepalive_enforced_by_the_timer() -> None:
    async def scenario(server: MqttServer, lines: list[str]) -> None:
        c = await RawClient.connect(server.ports[0], "sleepy", keepalive=1)
        assert await c.closed_by_server()

    lines = run(scenario)
    assert "Client sleepy has exceeded timeout, disconnecting." in lines


def test_slow_reader_does_not_stall_others() -> None:
    async def scenario(server: MqttServer, lines: list[str]) -> None:
        port = server.ports[0]
        stuck = await RawClient.connect(port, "stuck")  # subscribes, then never reads
        stuck.send(Subscribe(1, [("load", SubscriptionOptions(qos=0))]))
        assert isinstance(await stuck.next(), Suback)
        fast = await RawClient.connect(port, "fast")
        fast.send(Subscribe(1, [("load", SubscriptionOptions(qos=0))]))
        assert isinstance(await fast.next(), Suback)
        pub = await RawClient.connect(port, "pub")
        payload = b"x" * 1024
        rounds, per_round = 80, 100  # ~8 MB: far beyond what the stuck reader's sockets hold
        for _ in range(rounds):
            for _ in range(per_round):
                pub.send(Publish("load", payload, 0))
            await pub.writer.drain()
            got = 0
            while got < per_round:  # the fast subscriber keeps getting every message
                if isinstance(await fast.next(), Publish):
                    got += 1
        broker = server.broker
        assert broker.stats.publish_dropped > 0  # the stuck client lost QoS 0, as mosquitto's would
        for c in (stuck, fast, pub):
            c.close()

    run(scenario)


def test_listeners_from_settings_local_only_default() -> None:
    assert listeners_from_settings(BrokerSettings()) == [("127.0.0.1", 1883), ("::1", 1883)]


@contextmanager
def broker_thread(**settings: Any) -> Iterator[tuple[int, list[str]]]:
    """The broker on its own event loop in a thread, for driving real client programs."""
    started = threading.Event()
    state: dict[str, Any] = {}

    def target() -> None:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            s = BrokerSettings(sys_interval=0, **settings)
            log = BrokerLog(("all",), collect=True)
            server = MqttServer()
            await server.start(Broker(s, log, now=loop.time()), [("127.0.0.1", 0)])
            stop = asyncio.Event()
            state.update(port=server.ports[0], lines=log.lines, loop=loop, stop=stop)
            started.set()
            await stop.wait()
            await server.close()

        asyncio.run(main())

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert started.wait(TIMEOUT)
    try:
        yield state["port"], state["lines"]
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(TIMEOUT)


@pytest.mark.interop
def test_mosquitto_clients_persistent_session_qos1() -> None:
    for exe in ("mosquitto_sub", "mosquitto_pub"):
        if shutil.which(exe) is None:
            pytest.skip(f"{exe} is not installed")
    with broker_thread() as (port, lines):
        sub_args = ["mosquitto_sub", "-p", str(port), "-i", "Sub1", "-t", "test/message",
                    "-q", "1", "-c", "-W", "10"]  # fmt: skip
        first = subprocess.run([*sub_args, "-C", "1", "-E"], timeout=TIMEOUT, check=True)
        assert first.returncode == 0
        subprocess.run(["mosquitto_pub", "-p", str(port), "-t", "test/message",
                        "-m", "MESSAGE 3", "-q", "1"], timeout=TIMEOUT, check=True)  # fmt: skip
        got = subprocess.run([*sub_args, "-C", "1"], timeout=TIMEOUT, check=True,
                             capture_output=True, text=True)  # fmt: skip
        assert got.stdout == "MESSAGE 3\n"
        assert any("as Sub1 (p2, c0, k60)." in line for line in lines)


def test_qos1_burst_is_lossless_with_small_window_and_queue() -> None:
    async def scenario(server: MqttServer, lines: list[str]) -> None:
        port = server.ports[0]
        sub = await RawClient.connect(port, "sub")
        sub.send(Subscribe(1, [("burst", SubscriptionOptions(qos=1))]))
        assert isinstance(await sub.next(), Suback)
        pub = await RawClient.connect(port, "pub")
        count = 3000  # 30x max_queued_messages: without flow control most would be dropped
        for i in range(count):
            pub.send(Publish("burst", b"%d" % i, 1, packet_id=i % 60000 + 1))
        await pub.writer.drain()
        got: list[bytes] = []
        while len(got) < count:
            msg = await sub.next()
            if isinstance(msg, Publish):
                got.append(msg.payload)
                sub.send(Puback(msg.packet_id or 0))
        assert got == [b"%d" % i for i in range(count)]
        assert server.broker.stats.publish_dropped == 0
        pub.close()
        sub.close()

    run(scenario, max_inflight_messages=5, max_queued_messages=100)


def test_ipv6_loopback_listener_logs_like_mosquitto() -> None:
    async def main() -> list[str]:
        log = BrokerLog(("all",), collect=True)
        broker = Broker(BrokerSettings(sys_interval=0), log, now=asyncio.get_running_loop().time())
        server = MqttServer()
        try:
            await server.start(broker, [("::1", 0)])
        except OSError:
            pytest.skip("no IPv6 loopback here")
        try:
            r, w = await asyncio.open_connection("::1", server.ports[0])
            w.write(encode(Connect(client_id="six"), 4))
            assert PacketReader(4).feed_all(await asyncio.wait_for(r.read(100), TIMEOUT)) == [
                Connack(False, 0)
            ]
            w.close()
        finally:
            await server.close()
        assert log.lines is not None
        return log.lines

    lines = asyncio.run(main())
    assert lines[0].startswith("Opening ipv6 listen socket on port ")
    assert any(line.startswith("New client connected from ::1:") for line in lines)


@pytest.mark.interop
def test_mosquitto_clients_v5_session_expiry_and_retained() -> None:
    for exe in ("mosquitto_sub", "mosquitto_pub"):
        if shutil.which(exe) is None:
            pytest.skip(f"{exe} is not installed")
    with broker_thread() as (port, lines):
        sub_args = ["mosquitto_sub", "-p", str(port), "-V", "5", "-i", "v5sub", "-t", "v5/#",
                    "-q", "2", "-c", "-x", "60", "-W", "10", "-v"]  # fmt: skip
        subprocess.run([*sub_args, "-C", "1", "-E"], timeout=TIMEOUT, check=True)
        for qos, text in ((1, "one"), (2, "two")):
            pub_args = ["mosquitto_pub", "-p", str(port), "-V", "5", "-t", f"v5/{text}",
                        "-m", text, "-q", str(qos), "-r"]  # fmt: skip
            subprocess.run(pub_args, timeout=TIMEOUT, check=True)
        got = subprocess.run([*sub_args, "-C", "4"], timeout=TIMEOUT, check=True,
                             capture_output=True, text=True)  # fmt: skip
        # Each twice, as with mosquitto 2.0.11: queued for the 5.0 session while it was away,
        # and again as retained messages when mosquitto_sub re-subscribes (retain handling 0).
        assert sorted(got.stdout.splitlines()) == ["v5/one one"] * 2 + ["v5/two two"] * 2
        assert any("as v5sub (p5, c0, k60)." in line for line in lines)


@pytest.mark.parametrize("nodelay", [True, False])
def test_set_tcp_nodelay_decides_the_socket_option(nodelay: bool) -> None:
    import socket

    from m2mhub.config import parse_config_text

    settings = parse_config_text(f"set_tcp_nodelay {str(nodelay).lower()}\n").settings
    assert settings.set_tcp_nodelay is nodelay

    async def scenario(server: MqttServer, lines: list[str]) -> None:
        client = await RawClient.connect(server.ports[0], "nagle")
        (conn,) = server.broker.connections
        sock = conn.sink.get_extra_info("socket")
        assert bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) is nodelay
        client.close()

    run(scenario, set_tcp_nodelay=nodelay)
