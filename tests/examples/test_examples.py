"""Every program in examples/ run as a user runs it, against real peers (libcoap, m2mhub)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.coap.coapapp_support import ENV, coap_client, hub_serve, libcoap_server, wait_coap
from tests.support import REPO, Proc, free_udp_port, require, running

pytestmark = pytest.mark.interop

EXAMPLES = REPO / "examples"


def example(name: str, *args: str) -> list[str]:
    return [sys.executable, str(EXAMPLES / name), *args]


@contextmanager
def example_server(name: str) -> Iterator[tuple[Proc, int]]:
    port = free_udp_port()
    with running(example(name, "--port", str(port)), env=ENV) as proc:
        proc.wait_for_line("listening on coap://localhost:")
        wait_coap(port)
        wait_coap(port, "::1")
        yield proc, port


def test_alarm_server_put_and_get_with_coap_client() -> None:
    with example_server("alarm_server.py") as (proc, port):
        uri = f"coap://127.0.0.1:{port}/alarm"
        assert coap_client("-m", "get", uri).stdout == b"OFF\n"
        put = coap_client("-m", "put", "-e", "ON", uri)
        assert put.returncode == 0 and put.stderr == b""
        proc.wait_for_line("alarm is now ON")
        assert coap_client("-m", "get", f"coap://[::1]:{port}/alarm").stdout == b"ON\n"
        bad = coap_client("-m", "put", "-e", "MAYBE", uri)
        assert bad.stderr.startswith(b"4.00")
        assert coap_client("-m", "post", "-e", "ON", uri).stderr.startswith(b"4.05")
        core = coap_client("-m", "get", f"coap://127.0.0.1:{port}/.well-known/core")
        assert b'</alarm>;rt="alarm"' in core.stdout


def test_observable_alarm_server_notifies_from_the_put_handler() -> None:
    with example_server("alarm_server_observable.py") as (_, port):
        uri = f"coap://127.0.0.1:{port}/alarm"
        # coap-client observes (-w: a newline after each notification), we switch the alarm.
        exe = require("coap-client-notls")
        with running([exe, "-w", "-s", "20", "-m", "get", uri]) as observer:
            observer.wait_for_line("OFF")
            assert coap_client("-m", "put", "-e", "ON", uri).returncode == 0
            observer.wait_for_line("ON")
            assert coap_client("-m", "put", "-e", "OFF", uri).returncode == 0
            observer.wait_for_line("OFF", start=2)
        assert observer.lines[:3] == ["OFF", "ON", "OFF"]


def test_put_client_against_libcoap_server() -> None:
    with libcoap_server() as port:
        uri = f"coap://127.0.0.1:{port}/alarm"
        r = subprocess.run(
            example("alarm_put_client.py", "ON", uri), capture_output=True, timeout=30, env=ENV
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().startswith("Result: 2.01 Created")
        assert coap_client("-m", "get", uri).stdout.rstrip(b"\n") == b"ON"


def test_observe_client_against_our_observable_server() -> None:
    with example_server("alarm_server_observable.py") as (_, port):
        uri = f"coap://localhost:{port}/alarm"
        with running(example("alarm_observe_client.py", uri), env=ENV) as observer:
            observer.wait_for_line("alarm: OFF")
            put = subprocess.run(
                example("alarm_put_client.py", "ON", uri), capture_output=True, timeout=30, env=ENV
            )
            assert put.stdout.decode().startswith("Result: 2.04 Changed")
            observer.wait_for_line("alarm: ON")


def test_sensor_publisher_reaches_mqtt_and_coap(tmp_path: Path) -> None:
    sub = require("mosquitto_sub")
    with hub_serve(tmp_path) as (_, mqtt_port, coap_port):
        uri = f"coap://localhost:{coap_port}/ps/sensors/lab/temp"
        with running([sub, "-p", str(mqtt_port), "-t", "sensors/#", "-v", "-C", "3"]) as mqtt:
            # mosquitto_sub prints nothing once subscribed: the retained reading of a first
            # run shows that it is.
            first = subprocess.run(
                example("sensor_publisher.py", "--uri", uri, "--count", "1"),
                capture_output=True,
                timeout=30,
                env=ENV,
            )
            assert first.returncode == 0, first.stderr
            assert first.stdout.decode().strip().endswith("-> 2.04 Changed")
            mqtt.wait_for_line("sensors/lab/temp {")
            more = example("sensor_publisher.py", "--uri", uri, "--count", "2", "--interval", "0.1")
            assert subprocess.run(more, capture_output=True, timeout=30, env=ENV).returncode == 0
            assert mqtt.wait(10) == 0
        readings = [ln.split(" ", 1)[1] for ln in mqtt.lines if ln.startswith("sensors/lab/temp ")]
        assert len(readings) == 3 and all('"t": ' in r for r in readings)
        got = coap_client("-m", "get", uri.replace("localhost", "127.0.0.1"))
        assert got.stdout.strip() == readings[-1].encode()
