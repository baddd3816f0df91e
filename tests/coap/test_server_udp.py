"""The UDP shell with real peers: coap-client-notls (libcoap) and raw sockets, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from m2mhub.coap import Resource
from m2mhub.coap.message import Message, decode, encode
from m2mhub.coap.options import Code
from m2mhub.net.coap_server import CoapServer, start_coap_server
from tests.support import require

from .helpers import make_site

pytestmark = pytest.mark.interop


class ServerThread:
    """Our CoAP server on free loopback ports (IPv4 and IPv6), in its own event loop thread."""

    def __init__(self) -> None:
        self.site, self.res = make_site()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.server: CoapServer | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10) or self.server is None:
            raise RuntimeError("CoAP server did not start")
        addrs = self.server.addresses
        self.port4 = addrs[0][1]
        self.port6 = addrs[1][1] if len(addrs) > 1 else None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            hosts = [("127.0.0.1", 0)]
            if socket.has_ipv6:
                hosts.append(("::1", 0))
            try:
                self.server = await start_coap_server(self.site, hosts)
            except OSError:
                self.server = await start_coap_server(self.site, hosts[:1])
            self.ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def call(self, fn: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        async def close() -> None:
            assert self.server is not None
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def server() -> Iterator[ServerThread]:
    srv = ServerThread()
    try:
        yield srv
    finally:
        srv.stop()


def coap_client(*args: str) -> subprocess.CompletedProcess[str]:
    exe = require("coap-client-notls")
    return subprocess.run(
        [exe, "-B", "5", *args], capture_output=True, text=True, timeout=20, check=False
    )


def wait_until(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.01)


def test_get_put_non_over_ipv4_and_ipv6(server: ServerThread) -> None:
    p = server.port4
    assert coap_client("-m", "get", f"coap://127.0.0.1:{p}/alarm").stdout == "OFF\n"
    assert coap_client("-m", "put", "-e", "ON", f"coap://127.0.0.1:{p}/alarm").returncode == 0
    assert coap_client("-N", "-m", "get", f"coap://127.0.0.1:{p}/alarm").stdout == "ON\n"
    if server.port6 is not None:
        assert coap_client("-m", "get", f"coap://[::1]:{server.port6}/alarm").stdout == "ON\n"
    out = coap_client("-m", "get", f"coap://127.0.0.1:{p}/nothing")
    assert "4.04" in out.stdout + out.stderr


def test_observe_sees_every_put(server: ServerThread) -> None:
    p = server.port4
    exe = require("coap-client-notls")
    alarm = server.res["alarm"]
    with subprocess.Popen(
        [exe, "-s", "3", "-m", "get", f"coap://127.0.0.1:{p}/alarm"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as watcher:
        wait_until(lambda: alarm.observer_count() == 1)
        for value in ("A", "B", "C"):
            assert (
                coap_client("-m", "put", "-e", value, f"coap://127.0.0.1:{p}/alarm").returncode == 0
            )
        out, _ = watcher.communicate(timeout=20)
    assert out.startswith("OFFABC"), out
    wait_until(lambda: alarm.observer_count() == 0)  # coap-client deregisters at the end


def test_blockwise_download_and_upload(server: ServerThread, tmp_path: Any) -> None:
    p = server.port4
    out = subprocess.run(
        [
            require("coap-client-notls"),
            "-B",
            "5",
            "-b",
            "64",
            "-m",
            "get",
            f"coap://127.0.0.1:{p}/big",
        ],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert out.stdout == server.res["big"].data + b"\n"  # coap-client ends output with a newline
    body = bytes(range(33, 127)) * 40
    src = tmp_path / "body.txt"
    src.write_bytes(body)
    res = coap_client("-b", "64", "-m", "post", "-f", str(src), f"coap://127.0.0.1:{p}/counter")
    assert res.returncode == 0 and res.stdout == f"{len(body)}\n"
    assert server.res["counter"].body == body


class Sleepy(Resource):
    """Answers after 0.3 s: longer than the empty-ACK delay, so the response is separate."""

    async def render_get(self, request: Message) -> Message:
        await asyncio.sleep(0.3)
        return Message(payload=b"late")


def test_slow_handler_separate_response(server: ServerThread) -> None:
    p = server.port4
    server.site.add_resource(("sleepy",), Sleepy())
    out = coap_client("-v", "7", "-m", "get", f"coap://127.0.0.1:{p}/sleepy")
    assert "late" in out.stdout
    # libcoap logged the empty ACK and then the separate CON response
    assert "t:ACK c:0.00" in out.stdout + out.stderr
    assert "t:CON c:2.05" in out.stdout + out.stderr


def test_raw_ping_garbage_and_still_serving(server: ServerThread) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        addr = ("127.0.0.1", server.port4)
        s.sendto(bytes.fromhex("4000beef"), addr)
        assert s.recv(100) == bytes.fromhex("7000beef")
        for junk in (b"", b"\x41", b"\xff" * 30, bytes.fromhex("5f010009")):
            s.sendto(junk, addr)  # silently dropped
        s.sendto(bytes.fromhex("4f010001"), addr)  # token length 15 in a CON: RST
        assert s.recv(100) == bytes.fromhex("70000001")
        s.sendto(bytes.fromhex("41010002ab" + "d10001"), addr)  # unknown critical option
        reply = decode(s.recv(100))
        assert reply.code == Code.BAD_OPTION and reply.mid == 2
        s.sendto(encode(Message(0, Code.GET, 3, b"t", uri_path=["counter"])), addr)
        reply = decode(s.recv(100))
        assert reply.code == Code.CONTENT and reply.mid == 3


def test_random_garbage_does_not_stop_the_server(server: ServerThread) -> None:
    rng = random.Random(1234)
    addr = ("127.0.0.1", server.port4)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        for _ in range(300):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
            if rng.random() < 0.5 and len(junk) >= 1:
                junk = bytes([0x40 | (junk[0] & 0x3F)]) + junk[1:]  # version 1, random rest
            s.sendto(junk, addr)
        s.settimeout(0.2)
        with contextlib.suppress(TimeoutError):
            while True:
                s.recv(2000)  # RSTs and 4.xx for some of the junk
        s.settimeout(5)
        s.sendto(encode(Message(0, Code.GET, 4242, b"ok", uri_path=["counter"])), addr)
        while True:
            reply = decode(s.recv(2000))
            if reply.mid == 4242:
                break
        assert reply.code == Code.CONTENT and reply.token == b"ok"
