"""aiocoap's client (the lab's library) against the hub's CoAP face, over real UDP.

Most tests talk to `m2mhub serve` in a subprocess; the deregistration test runs the hub in
process so that it can look at the broker's internal subscriptions afterwards.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiocoap
import pytest

from m2mhub.coap.endpoint import CoapConfig
from tests.coap.coapapp_support import ENV, hub_serve, m2mhub_coap, wait_coap
from tests.coap.test_resources_hub import Hub, running_hub
from tests.support import M2MHUB, REPO, free_udp_port, require, running

pytestmark = pytest.mark.interop

LAB = REPO / "examples" / "aiocoap_lab"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with hub_serve(tmp_path_factory.mktemp("hub")) as (_, mqtt_port, coap_port):
        yield mqtt_port, coap_port


def with_context(body: Callable[[aiocoap.Context], Awaitable[None]]) -> None:
    async def main() -> None:
        ctx = await aiocoap.Context.create_client_context()
        try:
            await asyncio.wait_for(body(ctx), 30)
        finally:
            await ctx.shutdown()

    asyncio.run(main())


async def request(
    ctx: aiocoap.Context, code: Any, uri: str, payload: bytes = b"", non: bool = False
) -> Any:
    msg = aiocoap.Message(code=code, uri=uri, payload=payload)
    if non:
        msg.mtype = aiocoap.NON
    return await ctx.request(msg).response


@pytest.mark.parametrize("non", [False, True])
def test_every_method(hub: tuple[int, int], non: bool) -> None:
    base = f"coap://127.0.0.1:{hub[1]}"
    topic = f"{base}/ps/aiocoap/{'non' if non else 'con'}"

    async def body(ctx: aiocoap.Context) -> None:
        r = await request(ctx, aiocoap.GET, f"{base}/time", non=non)
        assert r.code == aiocoap.CONTENT and len(r.payload) == 15
        assert (await request(ctx, aiocoap.GET, topic, non=non)).code == aiocoap.NOT_FOUND
        assert (await request(ctx, aiocoap.PUT, topic, b"a", non)).code == aiocoap.CHANGED
        assert (await request(ctx, aiocoap.GET, topic, non=non)).payload == b"a"
        assert (await request(ctx, aiocoap.POST, topic, b"b", non)).code == aiocoap.CHANGED
        assert (await request(ctx, aiocoap.GET, topic, non=non)).payload == b"a"
        assert (await request(ctx, aiocoap.DELETE, topic, non=non)).code == aiocoap.DELETED
        assert (await request(ctx, aiocoap.GET, topic, non=non)).code == aiocoap.NOT_FOUND
        r = await request(ctx, aiocoap.FETCH, topic, b"x", non)
        assert r.code == aiocoap.METHOD_NOT_ALLOWED

    with_context(body)


def test_alarm_and_ipv6(hub: tuple[int, int]) -> None:
    async def body(ctx: aiocoap.Context) -> None:
        v4 = f"coap://127.0.0.1:{hub[1]}/alarm"
        v6 = f"coap://[::1]:{hub[1]}/alarm"
        assert (await request(ctx, aiocoap.PUT, v4, b"ON")).code == aiocoap.CHANGED
        assert (await request(ctx, aiocoap.GET, v6)).payload == b"ON"
        assert (await request(ctx, aiocoap.PUT, v6, b"OFF")).code == aiocoap.CHANGED
        assert (await request(ctx, aiocoap.GET, v4)).payload == b"OFF"

    with_context(body)


def test_blockwise_large_body_both_ways(hub: tuple[int, int]) -> None:
    body_bytes = bytes(range(256)) * 20  # 5120 bytes: Block1 up, Block2 down

    async def body(ctx: aiocoap.Context) -> None:
        topic = f"coap://127.0.0.1:{hub[1]}/ps/aiocoap/big"
        r = await request(ctx, aiocoap.PUT, topic, body_bytes)
        assert r.code == aiocoap.CHANGED
        got = await request(ctx, aiocoap.GET, topic)
        assert got.code == aiocoap.CONTENT
        assert got.payload == body_bytes

    with_context(body)


def test_observe_alarm_sees_mqtt_publish(hub: tuple[int, int]) -> None:
    pub = require("mosquitto_pub")

    async def body(ctx: aiocoap.Context) -> None:
        uri = f"coap://127.0.0.1:{hub[1]}/alarm"
        await request(ctx, aiocoap.PUT, uri, b"OFF")
        req = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri, observe=0))
        first = await req.response
        assert first.payload == b"OFF" and first.opt.observe is not None
        seen = []
        # One iterator for the whole observation: aiocoap only queues notifications for
        # iterators that exist when they arrive.
        notifications = req.observation.__aiter__()
        for state in ("ON", "OFF"):
            await asyncio.to_thread(
                subprocess.run,
                [pub, "-p", str(hub[0]), "-t", "alarm", "-m", state, "-r", "-q", "1"],
                check=True,
                timeout=10,
            )
            notification = await notifications.__anext__()
            seen.append(notification.payload)
        assert seen == [b"ON", b"OFF"]
        req.observation.cancel()

    with_context(body)


def test_vanished_aiocoap_observer_is_dropped_with_its_subscription() -> None:
    """aiocoap keeps acknowledging after ``observation.cancel()`` (it never deregisters), so
    the hub notices an observer only when it is gone: a CON notification that nobody
    acknowledges ends the observation and the internal MQTT subscription."""

    async def body(hub: Hub) -> None:
        ctx = await aiocoap.Context.create_client_context()
        uri = hub.uri("/ps/aiocoap/gone?qos=1")  # QoS 1: every notification is CON
        req = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri, observe=0))
        await req.response
        topics = hub.face.site.topics
        assert topics.observer_count() == 1
        assert list(topics._subscribers) == [("aiocoap", "gone")]
        notifications = req.observation.__aiter__()
        hub.publish("aiocoap/gone", b"still here", qos=1)
        notification = await notifications.__anext__()
        assert notification.payload == b"still here"
        await ctx.shutdown()  # the client goes away without a word
        hub.publish("aiocoap/gone", b"anyone?", qos=1)
        for _ in range(400):
            if topics.observer_count() == 0:
                break
            await asyncio.sleep(0.02)
        assert topics.observer_count() == 0
        assert topics._subscribers == {}

    async def main() -> None:
        fast = CoapConfig(ack_timeout=0.05, ack_random_factor=1.0, max_retransmit=3)
        async with running_hub(fast) as hub:
            await asyncio.wait_for(body(hub), 30)

    asyncio.run(main())


def test_lab_scripts_run_unchanged(hub: tuple[int, int]) -> None:
    """The lab's aiocoap PUT client and observe client, as subprocesses, with coap://localhost."""
    uri = f"coap://localhost:{hub[1]}/alarm"
    put = [sys.executable, str(LAB / "alarm_put.py")]
    first = subprocess.run([*put, "OFF", uri], capture_output=True, timeout=30, env=ENV)
    assert first.returncode == 0, first.stderr
    assert first.stdout.decode().startswith("Result: 2.04 Changed")
    with running([sys.executable, str(LAB / "alarm_observe.py"), uri], env=ENV) as observer:
        observer.wait_for_line("OFF")
        r = subprocess.run([*put, "ON", uri], capture_output=True, timeout=30, env=ENV)
        assert r.returncode == 0, r.stderr
        assert observer.wait_for_line("Alarm changed") == "Alarm changed: ON"
        pub = require("mosquitto_pub")
        subprocess.run([pub, "-p", str(hub[0]), "-t", "alarm", "-m", "OFF", "-r"], check=True)
        assert observer.wait_for_line("Alarm changed: OFF")


def test_m2mhub_coap_against_an_aiocoap_server(tmp_path: Path) -> None:
    """Our client against aiocoap's server: Block2 and Block1 both ways, and Observe."""
    port = free_udp_port()
    peer = [sys.executable, str(REPO / "tests" / "coap" / "aiocoap_peer.py"), str(port)]
    with running(peer, env=ENV) as server:
        server.wait_for_line("aiocoap server ready")
        wait_coap(port)
        big = f"coap://127.0.0.1:{port}/big"
        out = tmp_path / "big.out"
        assert m2mhub_coap("-o", str(out), big).returncode == 0
        assert out.read_bytes() == bytes(range(256)) * 16  # 4096 bytes in Block2 pieces
        body = bytes(range(7, 250)) * 21
        assert m2mhub_coap("-m", "put", "-b", "64", "-f", "-", big, stdin=body).returncode == 0
        assert m2mhub_coap("-b", "32", "-o", str(out), big).returncode == 0
        assert out.read_bytes() == body
        alarm = f"coap://127.0.0.1:{port}/alarm"
        with running([*M2MHUB, "coap", "-s", "20", alarm], env=ENV) as observer:
            observer.wait_for_line("OFF")
            assert m2mhub_coap("-m", "put", "-e", "ON", alarm).returncode == 0
            observer.wait_for_line("ON")
