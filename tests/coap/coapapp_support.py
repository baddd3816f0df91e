"""Helpers for tests that run real CoAP peers: libcoap's server, `m2mhub serve`, our CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import M2MHUB, Proc, free_tcp_port, free_udp_port, require, running, wait_tcp

ENV = dict(os.environ, PYTHONUNBUFFERED="1")


def wait_coap(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    """Wait until a CoAP server answers a ping (empty CON) on host:port with RST."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(0.1)
        mid = 0x1234
        while time.monotonic() < deadline:
            s.sendto(bytes((0x40, 0, mid >> 8, mid & 0xFF)), (host, port))
            try:
                data = s.recv(64)
            except (TimeoutError, ConnectionRefusedError):
                time.sleep(0.05)
                continue
            if len(data) >= 4 and data[0] >> 4 == 0x7:
                return
    raise TimeoutError(f"no CoAP server answers on {host}:{port}")


@contextmanager
def libcoap_server(*extra: str) -> Iterator[int]:
    """libcoap's example server (`coap-server-notls -d 10`) on a free port; yields the port."""
    exe = require("coap-server-notls")
    port = free_udp_port()
    with running([exe, "-p", str(port), "-d", "10", *extra]):
        wait_coap(port)
        yield port


@contextmanager
def hub_serve(
    tmp_path: Path, config_lines: tuple[str, ...] = ()
) -> Iterator[tuple[Proc, int, int]]:
    """`m2mhub serve -v` with MQTT and CoAP on free ports; yields (proc, mqtt_port, coap_port)."""
    mqtt_port = free_tcp_port()
    coap_port = free_udp_port()
    conf = tmp_path / f"m2mhub-{mqtt_port}.conf"
    conf.write_text(
        "\n".join([f"listener {mqtt_port} 127.0.0.1", "allow_anonymous true", *config_lines]) + "\n"
    )
    args = [*M2MHUB, "serve", "-v", "-c", str(conf), "--coap-port", str(coap_port)]
    with running(args, env=ENV) as proc:
        wait_tcp(mqtt_port)
        proc.wait_for_line("CoAP socket on port")
        wait_coap(coap_port)
        yield proc, mqtt_port, coap_port


def m2mhub_coap(
    *args: str, timeout: float = 30, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run `m2mhub coap ARGS` to completion."""
    return subprocess.run(
        [*M2MHUB, "coap", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=ENV,
        check=False,
    )


def coap_client(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    """Run libcoap's `coap-client-notls ARGS` to completion."""
    exe = require("coap-client-notls")
    return subprocess.run(
        [exe, *args], capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )


@contextmanager
def silent_udp_port() -> Iterator[int]:
    """A bound UDP socket that never answers (requests to it time out)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@contextmanager
def resetting_udp_port() -> Iterator[int]:
    """A UDP peer that answers every CON with RST (in a thread)."""
    import threading

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = s.recvfrom(2048)
            except (TimeoutError, OSError):
                continue
            if len(data) >= 4:
                s.sendto(bytes((0x70, 0, data[2], data[3])), addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield int(s.getsockname()[1])
    finally:
        stop.set()
        t.join(2)
        s.close()
