"""``--trace``/``--detail``/``--json`` of pub, sub, coap and serve, against real peers."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.coap.coapapp_support import libcoap_server
from tests.support import M2MHUB, mosquitto_broker, running

pytestmark = pytest.mark.interop

ENV = dict(os.environ, PYTHONUNBUFFERED="1")
# "18:37:37.512809 P1 -> CONNECT (p4, ...)": the time, the connection, the arrow, the summary.
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{6} (\S+) (->|<-) (\S+)")


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with mosquitto_broker(tmp_path_factory.mktemp("trace")) as (_, port):
        yield port


def m2mhub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*M2MHUB, *args], capture_output=True, text=True, timeout=20, env=ENV, check=False
    )


def packets(stderr: str) -> list[tuple[str, str, str]]:
    """(connection, arrow, packet type) of each trace line."""
    return [m.groups() for line in stderr.splitlines() if (m := LINE.match(line))]  # type: ignore[misc]


def test_pub_trace_shows_the_qos2_exchange_in_order(port: int) -> None:
    done = m2mhub("pub", "--trace", "-q", "2", "-p", str(port), "-t", "t/x", "-m", "hi", "-i", "P1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert packets(done.stderr) == [
        ("P1", "->", "CONNECT"),
        ("P1", "<-", "CONNACK"),
        ("P1", "->", "PUBLISH"),
        ("P1", "<-", "PUBREC"),
        ("P1", "->", "PUBREL"),
        ("P1", "<-", "PUBCOMP"),
        ("P1", "->", "DISCONNECT"),
    ]
    assert "'t/x', 2 bytes)" in done.stderr


def test_pub_trace_leaves_the_debug_lines_on_stdout_unchanged(port: int) -> None:
    plain = m2mhub("pub", "-d", "-p", str(port), "-t", "t/x", "-m", "hi", "-i", "P2")
    traced = m2mhub("pub", "-d", "--trace", "-p", str(port), "-t", "t/x", "-m", "hi", "-i", "P2")
    assert plain.stdout == traced.stdout
    assert "Client P2 sending CONNECT" in traced.stdout
    assert [p[2] for p in packets(traced.stderr)] == ["CONNECT", "CONNACK", "PUBLISH", "DISCONNECT"]


def test_pub_detail_lists_fields_under_each_packet(port: int) -> None:
    done = m2mhub("pub", "--detail", "-p", str(port), "-t", "t/x", "-m", "hi", "-i", "P3")
    assert done.returncode == 0, done.stderr
    assert len(packets(done.stderr)) == 4
    assert any(line.startswith("    ") for line in done.stderr.splitlines())


def test_sub_json_traces_subscribe_and_the_received_publish(port: int) -> None:
    args = ["sub", "--json", "-p", str(port), "-t", "t/json", "-C", "1", "-i", "S1"]
    with running([*M2MHUB, *args], env=ENV) as sub:
        sub.wait_for_line('"SUBACK"')
        assert m2mhub("pub", "-p", str(port), "-t", "t/json", "-m", "hello").returncode == 0
        assert sub.wait() == 0
        records = [json.loads(line) for line in sub.lines if line.startswith("{")]
    assert "hello" in sub.lines
    assert [(r["direction"], r["type"]) for r in records] == [
        ("->", "CONNECT"),
        ("<-", "CONNACK"),
        ("->", "SUBSCRIBE"),
        ("<-", "SUBACK"),
        ("<-", "PUBLISH"),
        ("->", "DISCONNECT"),
    ]
    assert records[4]["topic"] == "t/json"
    assert {r["conn"] for r in records} == {"S1"}


@pytest.fixture(scope="module")
def coap_port() -> Iterator[int]:
    with libcoap_server() as port:
        yield port


def test_coap_trace_shows_request_and_response_on_stderr(coap_port: int) -> None:
    done = m2mhub("coap", "--trace", f"coap://127.0.0.1:{coap_port}/time")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    peer = f"127.0.0.1:{coap_port}"
    assert [m.groups()[:2] for line in lines if (m := LINE.match(line))] == [
        (peer, "->"),
        (peer, "<-"),
    ]
    assert " -> CON GET mid=" in lines[0] and "/time" in lines[0]
    assert " <- ACK 2.05 Content mid=" in lines[1]
    assert done.stdout.strip()  # the payload, as without --trace


def test_coap_json_and_v6_keep_coap_client_lines_on_stdout(coap_port: int) -> None:
    done = m2mhub("coap", "--json", "-N", "-v", "6", f"coap://127.0.0.1:{coap_port}/time")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("v:1 t:NON c:GET i:")
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert [r["direction"] for r in records] == ["->", "<-"]
    assert records[0]["type"] == "NON"
