"""``--trace``/``--detail``/``--json`` of pub, sub, coap and serve, against real peers."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from m2mhub.cli._serve_trace import ServeTracer
from tests.coap.coapapp_support import libcoap_server
from tests.support import (
    M2MHUB,
    free_tcp_port,
    free_udp_port,
    mosquitto_broker,
    require,
    running,
    wait_tcp,
)

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


def serve_traced(tmp_path: Path, *flags: str) -> tuple[list[str], int]:
    """``m2mhub serve FLAGS`` on a free port; returns (its args, the port)."""
    port = free_tcp_port()
    return [*M2MHUB, "serve", "-p", str(port), "--no-coap", *flags], port


def test_serve_trace_and_pcap_show_every_packet_both_ways(tmp_path: Path) -> None:
    pcap = tmp_path / "f.pcap"
    args, port = serve_traced(tmp_path, "--trace", "-w", str(pcap))
    sub_exe = require("mosquitto_sub")
    pub_exe = require("mosquitto_pub")
    with running(args, env=ENV) as serve:
        wait_tcp(port)
        with running([sub_exe, "-p", str(port), "-t", "s/t", "-C", "1", "-i", "S1"]) as sub:
            serve.wait_for_line("(S1) <- SUBACK")
            pub = [pub_exe, "-p", str(port), "-t", "s/t", "-m", "hi", "-q", "1", "-i", "P1"]
            subprocess.run(pub, check=True, timeout=10)
            sub.wait_for_line("hi")
            assert sub.wait() == 0
        serve.wait_for_line("(S1) -- closed")
        serve.wait_for_line("(P1) -- closed")
        lines = list(serve.lines)
    traced = packets("\n".join(lines))
    assert [t for c, a, t in traced if c.endswith("(P1)")] == [
        "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "DISCONNECT",
    ]  # fmt: skip
    # wait_tcp's probe was c1; each connection keeps its number and shows its client id.
    sub_conn = next(c for c, a, t in traced if c.endswith("(S1)"))
    assert [(a, t) for c, a, t in traced if c == sub_conn][2:] == [
        ("->", "SUBSCRIBE"), ("<-", "SUBACK"), ("<-", "PUBLISH"), ("->", "DISCONNECT"),
    ]  # fmt: skip
    # The broker's own -v style log is still there, untouched.
    assert any("New client connected from 127.0.0.1" in line for line in lines)
    tshark = require("tshark")
    shown = subprocess.run(
        [tshark, "-r", str(pcap), "-d", f"tcp.port=={port},mqtt", "-Y", "mqtt"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert shown.count("Connect Command") == 2
    assert shown.count("Connect Ack") == 2
    assert shown.count("Publish Message") == 2  # into the broker, and out to the subscriber
    assert "Publish Ack" in shown and "Subscribe Ack" in shown


def test_serve_json_is_one_object_per_packet(tmp_path: Path) -> None:
    args, port = serve_traced(tmp_path, "--json")
    with running(args, env=ENV) as serve:
        wait_tcp(port)
        pub = [require("mosquitto_pub"), "-p", str(port), "-t", "j", "-m", "x", "-V", "5"]
        subprocess.run(pub, check=True, timeout=10)
        serve.wait_for_line('"DISCONNECT"')
        records = [json.loads(line) for line in serve.lines if line.startswith("{")]
    frames = [r for r in records if "type" in r]  # the rest are connection events
    packets_seen = [(r["direction"], r["type"]) for r in frames]
    assert packets_seen == [
        ("->", "CONNECT"), ("<-", "CONNACK"), ("->", "PUBLISH"), ("->", "DISCONNECT"),
    ]  # fmt: skip
    assert frames[-1]["level"] == 5


def test_serve_trace_and_pcap_show_coap_datagrams(tmp_path: Path) -> None:
    pcap = tmp_path / "coap.pcap"
    port = free_tcp_port()
    coap_port = free_udp_port()
    args = [*M2MHUB, "serve", "-p", str(port), "--coap-port", str(coap_port)]
    client = require("coap-client-notls")
    with running([*args, "--trace", "-w", str(pcap)], env=ENV) as serve:
        wait_tcp(port)
        serve.wait_for_line("CoAP socket on port")
        uri = f"coap://127.0.0.1:{coap_port}/alarm"
        subprocess.run([client, "-m", "put", "-e", "ON", uri], check=True, timeout=10)
        serve.wait_for_line("<- ACK 2.04 Changed")
        lines = list(serve.lines)
    assert any(
        re.search(r" 127\.0\.0\.1:\d+ -> CON PUT mid=0x\w+ token=\w+ /alarm", x) for x in lines
    )
    tshark = require("tshark")
    shown = subprocess.run(
        [tshark, "-r", str(pcap), "-d", f"udp.port=={coap_port},coap", "-Y", "coap"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "CON, MID:" in shown and "PUT" in shown
    assert "2.04 Changed" in shown


class _FakeTransport:
    def get_extra_info(self, name: str) -> tuple[str, int]:
        return ("127.0.0.1", 40000) if name == "peername" else ("127.0.0.1", 1883)


def test_serve_tracer_survives_a_broken_pcap_file(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.BytesIO()
    tracer = ServeTracer("line", out)
    transport = _FakeTransport()
    tracer.opened(transport)  # type: ignore[arg-type]
    out.close()  # the disk went away
    tracer.received(transport, b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")  # type: ignore[arg-type]
    tracer.closed(transport)  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "m2mhub serve: tracing failed" in err
    assert "c1 -- connection from 127.0.0.1:40000 to 127.0.0.1:1883" in err
