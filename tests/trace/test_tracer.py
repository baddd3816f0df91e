"""`m2mhub trace` between real peers: the decoded lines, the bytes passing unchanged (even
malformed ones), and the pcap file as tshark reads it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from m2mhub.mqtt.codec import encode
from m2mhub.mqtt.packets import Connect
from tests.coap.coapapp_support import hub_serve
from tests.support import (
    M2MHUB,
    Proc,
    free_tcp_port,
    free_udp_port,
    mosquitto_broker,
    require,
    running,
)

ENV = dict(os.environ, PYTHONUNBUFFERED="1")


@contextmanager
def tracer(*args: str) -> Iterator[Proc]:
    with running([*M2MHUB, "trace", *args], env=ENV) as proc:
        proc.wait_for_line("tracing ")
        yield proc


def tshark(pcap: Path, *args: str) -> list[str]:
    exe = require("tshark")
    out = subprocess.run(
        [exe, "-r", str(pcap), *args], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.splitlines()


def test_mosquitto_clients_through_tracer(tmp_path: Path) -> None:
    pub, sub = require("mosquitto_pub"), require("mosquitto_sub")
    pcap = tmp_path / "mqtt.pcap"
    with mosquitto_broker(tmp_path) as (_, port):
        listen = free_tcp_port()
        with tracer("--mqtt", f"{listen}:127.0.0.1:{port}", "-w", str(pcap)) as trace:
            with running(
                [sub, "-p", str(listen), "-t", "test/message", "-q", "1", "-C", "1", "-i", "Sub1"]
            ) as receiver:
                trace.wait_for_line("c1(Sub1) <- SUBACK (m1, [1])")
                subprocess.run(
                    [
                        pub,
                        "-p",
                        str(listen),
                        "-t",
                        "test/message",
                        "-m",
                        "MESSAGE 1",
                        "-q",
                        "2",
                        "-i",
                        "Pub1",
                    ],
                    check=True,
                    timeout=10,
                )
                assert receiver.wait() == 0
                assert receiver.lines == ["MESSAGE 1"]
            trace.wait_for_line("c1(Sub1) -- closed by the client")
            trace.wait_for_line("c2(Pub1) -- closed by the client")
            lines = [line.split(" ", 1)[1] for line in trace.lines if line[:1].isdigit()]
        for expected in [
            "c1(Sub1) -> CONNECT (p4, c1, k60, id 'Sub1')",
            "c1(Sub1) <- CONNACK (sp0, rc=0 Connection Accepted.)",
            "c1(Sub1) -> SUBSCRIBE (m1, 'test/message' q1)",
            "c2(Pub1) -> CONNECT (p4, c1, k60, id 'Pub1')",
            "c2(Pub1) -> PUBLISH (d0, q2, r0, m1, 'test/message', 9 bytes)",
            "c2(Pub1) <- PUBREC (m1)",
            "c2(Pub1) -> PUBREL (m1)",
            "c2(Pub1) <- PUBCOMP (m1)",
            "c2(Pub1) -> DISCONNECT",
            "c1(Sub1) <- PUBLISH (d0, q1, r0, m1, 'test/message', 9 bytes)",
            "c1(Sub1) -> PUBACK (m1)",
        ]:
            assert expected in lines
    # The broker's port is not 1883 here, so tshark is told to decode it as MQTT.
    fields = tshark(
        pcap,
        "-d",
        f"tcp.port=={port},mqtt",
        "-Y",
        "mqtt",
        "-T",
        "fields",
        "-e",
        "tcp.dstport",
        "-e",
        "mqtt.msgtype",
        "-e",
        "mqtt.topic",
        "-e",
        "mqtt.msg",
    )
    to_broker = [f for f in fields if f.split("\t")[0] == str(port)]
    types = [t for f in to_broker for t in f.split("\t")[1].split(",")]
    assert sorted(types) == sorted(["1", "8", "14", "4", "1", "3", "6", "14"])
    assert any(
        "test/message" in f and "4d45535341474520 31".replace(" ", "") in f for f in to_broker
    )
    assert (
        tshark(
            pcap,
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-Y",
            "tcp.checksum.status==0 || ip.checksum.status==0 || tcp.analysis.flags",
        )
        == []
    )
    handshakes = tshark(pcap, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0")
    assert len(handshakes) == 2


class RecordingServer:
    """A TCP server that reads ``expect`` bytes, answers ``reply`` and closes."""

    def __init__(self, expect: int, reply: bytes) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.received = bytearray()
        self.expect = expect
        self.reply = reply
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(10)
        with conn:
            while len(self.received) < self.expect:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                self.received += chunk
            conn.sendall(self.reply)
        self.sock.close()


def test_malformed_mqtt_is_forwarded_unchanged_and_shown(tmp_path: Path) -> None:
    connect = encode(Connect(client_id="bad"), 4)
    malformed = b"\x30\x03\x00\x05a"  # topic length 5 in a 3-byte body
    after = b"\xc0\x00\x01\x02"
    reply = b"\x20\x02\x00\x00\xde\xad"
    server = RecordingServer(len(connect) + len(malformed) + len(after), reply)
    listen = free_tcp_port()
    with tracer("--mqtt", f"{listen}:127.0.0.1:{server.port}") as trace:
        with socket.create_connection(("127.0.0.1", listen), timeout=10) as client:
            client.sendall(connect)
            trace.wait_for_line("-> CONNECT (p4, c1, k60, id 'bad')")
            client.sendall(malformed)
            trace.wait_for_line("MALFORMED")
            client.sendall(after)
            got = bytearray()
            while chunk := client.recv(65536):
                got += chunk
        trace.wait_for_line("closed by the server")
        server.thread.join(10)
        assert bytes(server.received) == connect + malformed + after
        assert bytes(got) == reply
        out = trace.output()
    assert "c1(bad) -> MALFORMED (0x81 Malformed Packet: " in out
    assert ") 5 bytes 30 03 00 05 61" in out
    assert "c1(bad) -> RAW 4 bytes c0 00 01 02" in out
    assert "c1(bad) <- CONNACK (sp0, rc=0 Connection Accepted.)" in out
    assert (
        "c1(bad) <- MALFORMED (0x81 Malformed Packet: connection closed inside a packet) "
        "2 bytes de ad" in out
    )


def test_coap_client_through_tracer_to_our_server(tmp_path: Path) -> None:
    client = require("coap-client-notls")
    pcap = tmp_path / "coap.pcap"
    with hub_serve(tmp_path) as (_, _mqtt_port, coap_port):
        listen = free_udp_port()
        with tracer("--coap", f"{listen}:127.0.0.1:{coap_port}", "-w", str(pcap)) as trace:
            uri = f"coap://127.0.0.1:{listen}/alarm"
            put = subprocess.run(
                [client, "-B", "5", "-m", "put", "-e", "ON", uri],
                capture_output=True,
                timeout=20,
                check=True,
            )
            get = subprocess.run(
                [client, "-B", "5", "-m", "get", uri], capture_output=True, timeout=20, check=True
            )
            assert get.stdout.strip() == b"ON", (put, get)
            trace.wait_for_line("<- ACK 2.05 Content")
            out = trace.output()
    assert " -> CON PUT mid=0x" in out and f"/alarm Uri-Port={listen} 'ON' (2 bytes)" in out
    assert "<- ACK 2.04 Changed mid=0x" in out
    assert " -> CON GET mid=0x" in out
    content = [line for line in out.splitlines() if "<- ACK 2.05 Content" in line]
    assert content and content[0].endswith("'ON' (2 bytes)")
    fields = tshark(
        pcap,
        "-d",
        f"udp.port=={coap_port},coap",
        "-Y",
        "coap",
        "-T",
        "fields",
        "-e",
        "coap.type",
        "-e",
        "coap.code",
        "-e",
        "coap.opt.uri_path",
        "-e",
        "udp.checksum.status",
    )
    assert [f.split("\t")[:2] for f in fields] == [["0", "3"], ["2", "68"], ["0", "1"], ["2", "69"]]
    assert all(f.split("\t")[2] == "alarm" for f in fields[::2])


def test_malformed_coap_is_forwarded_unchanged_and_shown() -> None:
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    echo.settimeout(10)
    listen = free_udp_port()
    datagrams = [b"\x40\x01", b"\x40\x01\x00\x01\xff", b"\x50\x01\x00\x02\xb4time"]
    with tracer("--coap", f"{listen}:127.0.0.1:{echo.getsockname()[1]}") as trace:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(10)
            for data in datagrams:
                client.sendto(data, ("127.0.0.1", listen))
                got, addr = echo.recvfrom(2048)
                assert got == data
                echo.sendto(got, addr)
                assert client.recvfrom(2048)[0] == data
        trace.wait_for_line("<- NON GET mid=0x0002 /time")
        out = trace.output()
    echo.close()
    assert "-> MALFORMED (truncated header (2 bytes)) 2 bytes 40 01" in out
    assert "<- MALFORMED (payload marker with no payload) 5 bytes 40 01 00 01 ff" in out
    assert "-> NON GET mid=0x0002 /time" in out


def _exchange_through(listen: int, send: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", listen), timeout=10) as client:
        client.sendall(send)
        got = bytearray()
        while chunk := client.recv(65536):
            got += chunk
    return bytes(got)


def test_json_and_detail_output(tmp_path: Path) -> None:
    connect = encode(Connect(protocol_level=5, client_id="j", properties={0x11: 10}), 5)
    reply = b"\x20\x03\x00\x00\x00"
    for flag in ("--json", "-V"):
        server = RecordingServer(len(connect), reply)
        listen = free_tcp_port()
        with tracer("--mqtt", f"{listen}:127.0.0.1:{server.port}", flag) as trace:
            assert _exchange_through(listen, connect) == reply
            trace.wait_for_line("closed by the server")
            out = trace.lines
        if flag == "--json":
            records = [json.loads(line) for line in out if line.startswith("{")]
            packets = [r for r in records if "type" in r]
            assert [(r["direction"], r["type"]) for r in packets] == [
                ("->", "CONNECT"),
                ("<-", "CONNACK"),
            ]
            assert packets[0]["properties"] == {"Session Expiry Interval": 10}
            assert packets[0]["raw"] == connect.hex() and packets[1]["raw"] == reply.hex()
            assert packets[0]["conn"] == "c1(j)"
        else:
            assert "      Session Expiry Interval (0x11): 10" in out
            assert "    reason code: 0x00 Success" in out
            assert any(line.startswith("    0000  10 ") for line in out)


def test_forwarding_goes_on_when_the_output_is_closed() -> None:
    connect = encode(Connect(client_id="x"), 4)
    reply = b"\x20\x02\x00\x00"
    server = RecordingServer(len(connect), reply)
    listen = free_tcp_port()
    proc = subprocess.Popen(
        [*M2MHUB, "trace", "--mqtt", f"{listen}:127.0.0.1:{server.port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        text=True,
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "tracing MQTT" in proc.stderr.readline()
        proc.stdout.close()
        assert _exchange_through(listen, connect) == reply
        assert bytes(server.received) == connect
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "tracing failed" in err and "still forwarding" in err


def test_bad_arguments() -> None:
    for args, message in [
        ([], "give at least one --mqtt or --coap"),
        (["--mqtt", "1884:localhost"], "expected LISTEN_PORT:HOST:PORT"),
        (["--coap", "x:localhost:5683"], "ports must be numbers"),
        (["--mqtt", "1:h:2", "--json", "-V"], "exclude each other"),
    ]:
        done = subprocess.run(
            [*M2MHUB, "trace", *args], capture_output=True, text=True, timeout=30, env=ENV
        )
        assert done.returncode == 2
        assert message in done.stderr


def test_mqtt_publish_reaches_a_coap_observer_both_traced(tmp_path: Path) -> None:
    """Both proxies at once: an MQTT publish to our hub becomes a CoAP notification."""
    client, pub = require("coap-client-notls"), require("mosquitto_pub")
    with hub_serve(tmp_path) as (_, mqtt_port, coap_port):
        mqtt_listen, coap_listen = free_tcp_port(), free_udp_port()
        with tracer(
            "--mqtt",
            f"{mqtt_listen}:127.0.0.1:{mqtt_port}",
            "--coap",
            f"{coap_listen}:127.0.0.1:{coap_port}",
        ) as trace:
            uri = f"coap://127.0.0.1:{coap_listen}/ps/lab/temp"
            with running([client, "-B", "10", "-s", "4", "-m", "get", uri]) as observer:
                trace.wait_for_line("/ps/lab/temp Observe=0")
                trace.wait_for_line("<- ACK ")
                subprocess.run(
                    [pub, "-p", str(mqtt_listen), "-t", "lab/temp", "-m", "21", "-i", "P"],
                    check=True,
                    timeout=10,
                )
                note = trace.wait_for_line("'21' (2 bytes)")
                assert observer.wait(20) == 0
                assert "21" in observer.output()
            out = trace.output()
    assert "c1(P) -> PUBLISH (d0, q0, r0, m0, 'lab/temp', 2 bytes)" in out
    assert " <- NON 2.05 Content mid=0x" in note and "Observe=" in note


def test_ipv6_listener() -> None:
    connect = encode(Connect(client_id="six"), 4)
    reply = b"\x20\x02\x00\x00"
    server = RecordingServer(len(connect), reply)
    listen = free_tcp_port()
    with tracer("--bind", "::1", "--mqtt", f"{listen}:127.0.0.1:{server.port}") as trace:
        assert trace.lines[0] == f"tracing MQTT: [::1]:{listen} -> 127.0.0.1:{server.port}"
        with socket.create_connection(("::1", listen), timeout=10) as client:
            client.sendall(connect)
            got = bytearray()
            while chunk := client.recv(65536):
                got += chunk
        assert bytes(got) == reply
        line = trace.wait_for_line("c1 -- connection from")
    assert "from [::1]:" in line and f"to 127.0.0.1:{server.port}" in line


def test_unreachable_upstream_closes_the_client() -> None:
    dead = free_tcp_port()  # nothing listens there
    listen = free_tcp_port()
    with tracer("--mqtt", f"{listen}:127.0.0.1:{dead}") as trace:
        with socket.create_connection(("127.0.0.1", listen), timeout=10) as client:
            assert client.recv(100) == b""
        line = trace.wait_for_line(f"cannot connect to 127.0.0.1:{dead}")
        assert f" c1 -- cannot connect to 127.0.0.1:{dead}: " in line
        assert "closed by" not in trace.output()
