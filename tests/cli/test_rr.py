"""``m2mhub rr`` run as a subprocess, side by side with the real mosquitto_rr.

A real mosquitto and a paho responder answer each request on its Response Topic (or, for a
3.1.1 request that cannot carry one, on a fixed topic), echoing the Correlation Data; both
programs must print the same and exit with the same status.
"""

from __future__ import annotations

import queue
import re
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.client.cli_support import Result, normalise, run_tool, scripted_peer, start_tool
from tests.support import free_tcp_port, mosquitto_broker

pytestmark = pytest.mark.interop

TIMEOUT = 10.0
V3_RESPONSES = "rr/resp/v3"  # where the responder answers requests without a Response Topic


@dataclass
class Request:
    topic: str
    payload: bytes
    qos: int
    response_topic: str | None
    correlation: bytes | None


class Responder:
    """A paho 5.0 client answering every request on rr/req/# with b"re:" + payload."""

    def __init__(self, port: int) -> None:
        self.requests: queue.Queue[Request] = queue.Queue()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id="rr-responder",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_a: c.subscribe("rr/req/#", 2)
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(TIMEOUT), "responder: no SUBACK"

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        props = msg.properties
        response_topic = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        self.requests.put(Request(msg.topic, msg.payload, msg.qos, response_topic, correlation))
        if msg.topic.endswith("/silent"):
            return
        reply = Properties(PacketTypes.PUBLISH)
        reply.ContentType = "text/plain"
        if correlation is not None:
            reply.CorrelationData = correlation
        payload = b"" if msg.topic.endswith("/empty") else b"re:" + msg.payload
        client.publish(response_topic or V3_RESPONSES, payload, msg.qos, False, reply)

    def request(self, topic: str) -> Request:
        """The next request on ``topic`` (those of other tests are passed over)."""
        while (got := self.requests.get(timeout=TIMEOUT)).topic != topic:
            pass
        return got

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Responder]]:
    with mosquitto_broker(tmp_path_factory.mktemp("rr")) as (_, port):
        responder = Responder(port)
        try:
            yield port, responder
        finally:
            responder.stop()


def ours_named_theirs(result: Result) -> Result:
    return Result(result.code, result.out, result.err.replace("m2mhub rr", "mosquitto_rr"))


def both(*args: str, stdin: bytes | None = None) -> tuple[Result, Result]:
    """(mosquitto_rr, m2mhub rr) run with the same arguments."""
    theirs = run_tool("mosquitto_rr", *args, stdin=stdin)
    ours = ours_named_theirs(run_tool("rr", *args, stdin=stdin))
    return theirs, ours


@pytest.mark.parametrize(
    "extra",
    [
        ["-m", "hello"],
        ["-m", "hello", "-v"],
        ["-m", "hello", "-N"],
        ["-m", "hello", "-q", "1", "-F", "%t|%p|%q|%r|%C|%D|%R|%l"],
        ["-m", "hello", "-q", "2", "-F", "%t|%p|%q|%D", "-D", "publish", "correlation-data", "c-9"],
        ["-m", "ünï ✓", "-D", "publish", "user-property", "k", "v", "-x", "30"],
        ["-n"],
        ["-n", "-v"],
        ["-m", "x", "-e", "rr/resp/other", "-V", "mqttv5", "-k", "30", "-i", "rr-fixed-id"],
        ["-m", "to v3", "-e", V3_RESPONSES, "-V", "311"],
        ["-m", "to v3.1", "-e", V3_RESPONSES, "-V", "31", "-q", "1"],
    ],
)
def test_output_and_status_match_mosquitto_rr(
    broker: tuple[int, Responder], extra: list[str]
) -> None:
    port, _ = broker
    args = ["-p", str(port), "-t", "rr/req/a", "-e", "rr/resp/a", *extra]
    theirs, ours = both(*args)
    assert theirs.code == 0, theirs.err
    assert ours == theirs


def test_empty_response_prints_nothing(broker: tuple[int, Responder]) -> None:
    port, _ = broker
    theirs, ours = both("-p", str(port), "-t", "rr/req/empty", "-e", "rr/resp/e", "-m", "x")
    assert ours == theirs == Result(0, "", "")


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_debug_lines_match_and_ours_end_with_disconnect(
    broker: tuple[int, Responder], qos: int
) -> None:
    """mosquitto_rr 2.0.11 closes the socket after the response without DISCONNECT (so a
    broker would send its will); m2mhub rr says DISCONNECT, as a client whose work is done
    (after acknowledging the response)."""
    port, _ = broker
    theirs, ours = both(
        *("-p", str(port), "-t", "rr/req/d", "-e", "rr/resp/d", "-m", "hi", "-d"),
        *("-q", str(qos)),
    )
    assert (ours.code, ours.err) == (theirs.code, theirs.err) == (0, "")
    assert normalise(ours.lines) == [*normalise(theirs.lines), "Client <id> sending DISCONNECT"]
    assert normalise(ours.lines)[-2:] == ["re:hi", "Client <id> sending DISCONNECT"]
    mid = 0 if qos == 0 else 1
    assert (
        f"Client <id> received PUBLISH (d0, q{qos}, r0, m{mid}, 'rr/resp/d', ... (5 bytes))"
        in normalise(ours.lines)
    )


def test_request_carries_response_topic_and_only_given_correlation_data(
    broker: tuple[int, Responder],
) -> None:
    port, responder = broker
    base = ["-p", str(port), "-t", "rr/req/p", "-e", "rr/resp/p"]
    for tool in ("mosquitto_rr", "rr"):
        done = run_tool(tool, *base, "-m", "1")
        assert (done.code, done.out) == (0, "re:1\n")
        assert responder.request("rr/req/p") == Request("rr/req/p", b"1", 0, "rr/resp/p", None)
        done = run_tool(tool, *base, "-m", "2", "-q", "1", "-D", "publish", "correlation-data", "i")
        assert (done.code, done.out) == (0, "re:2\n")
        assert responder.request("rr/req/p") == Request("rr/req/p", b"2", 1, "rr/resp/p", b"i")
        done = run_tool(tool, *base[:-1], V3_RESPONSES, "-m", "3", "-V", "311")
        assert (done.code, done.out) == (0, "re:3\n")
        assert responder.request("rr/req/p") == Request("rr/req/p", b"3", 0, None, None)


@pytest.mark.parametrize("extra", [[], ["-d"], ["-q", "2", "-V", "311"], ["-W", "1", "--quiet"]])
def test_timeout(broker: tuple[int, Responder], extra: list[str]) -> None:
    port, _ = broker
    args = ["-p", str(port), "-t", "rr/req/silent", "-e", "rr/resp/none", "-m", "x"]
    theirs, ours = both(*args, "-W", "1", *extra)
    assert theirs.code == 27
    assert (ours.code, ours.err, normalise(ours.lines)) == (
        theirs.code,
        theirs.err,
        normalise(theirs.lines),
    )
    if "--quiet" not in extra:
        assert ours.err == "Timed out\n"


@pytest.mark.parametrize(
    "args",
    [
        ["-t", "rr/req/a", "-m", "x"],
        ["-e", "rr/resp/a", "-m", "x"],
        ["-t", "rr/req/a", "-e", "rr/resp/a"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-m", "x", "-n"],
        ["-t", "rr/req/+", "-e", "rr/resp/a", "-m", "x"],
        ["-t", "rr/req/a", "-e", "rr/resp/#", "-m", "x"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-m", "x", "-W", "0"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-m", "x", "-W", "soon"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-m", "x", "-C", "1"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-m", "x", "-r"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-m", "x", "-l"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-m", "x", "-F", "%Z"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-m", "x", "-c"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-m", "x", "-c", "-V", "311"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-m", "x", "-x", "-1"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-m", "x", "-q", "3"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-m", "x", "-V", "4"],
        ["-t", "rr/req/a", "-e"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "--message"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-n", "--timeout", "1"],
        ["-t", "rr/req/a", "-e", "rr/resp/a", "-n", "--no-retain"],
        ["-t", "a", "-e", "b", "-m", "x", "-D", "publish", "response-topic", "c"],
        ["-t", "a", "-e", "b", "-m", "x", "-D", "publish", "response-topic", "c", "-V", "311"],
        ["-t", "a", "-e", "b", "-m", "x", *["-D", "publish", "correlation-data", "c"] * 2],
    ],
)
def test_usage_errors(args: list[str]) -> None:
    theirs, ours = both("-p", "1", *args)
    assert theirs.code == 1 and theirs.err.startswith("Error")
    assert ours == theirs


def test_timeout_before_connack() -> None:
    with scripted_peer(lambda _packet: b"") as port:
        theirs, ours = both("-p", str(port), "-t", "a", "-e", "b", "-m", "x", "-W", "1", "-d")
    assert (theirs.code, theirs.err) == (27, "Timed out\n")
    assert (ours.code, ours.err) == (theirs.code, theirs.err)
    assert (
        ours.lines
        == theirs.lines
        == ["Client (null) sending CONNECT", "Client (null) sending DISCONNECT"]
    )


def test_no_broker() -> None:
    theirs, ours = both("-p", str(free_tcp_port()), "-t", "a", "-e", "b", "-m", "x")
    assert ours == theirs == Result(1, "", "Error: Connection refused\n")


@pytest.mark.parametrize("debug", [[], ["-d"]])
def test_connect_refused(debug: list[str]) -> None:
    def refuse(packet: bytes) -> bytes | None:
        return bytes((0x20, 3, 0, 0x87, 0)) if packet[0] >> 4 == 1 else b""

    with scripted_peer(refuse) as port:
        theirs, ours = both("-p", str(port), "-t", "a", "-e", "b", "-m", "x", *debug)
    assert theirs.code == 0x87 and theirs.err == "Connection error: Not authorized\n"
    assert ours == theirs


def test_connect_refused_311() -> None:
    """mosquitto_rr 2.0.11 looks the 3.1.1 code up among MQTT 5 reason codes ("Unknown
    reason"); m2mhub rr prints the 3.1.1 text, as mosquitto_pub/sub do. Same exit code."""

    def refuse(packet: bytes) -> bytes | None:
        return bytes((0x20, 2, 0, 5)) if packet[0] >> 4 == 1 else b""

    with scripted_peer(refuse) as port:
        theirs, ours = both("-p", str(port), "-t", "a", "-e", "b", "-m", "x", "-V", "311", "-d")
    assert (theirs.code, theirs.err) == (5, "Connection error: Unknown reason\n")
    assert (ours.code, ours.err) == (5, "Connection error: Connection Refused: not authorised.\n")
    assert normalise(ours.lines) == normalise(theirs.lines)


def test_sigterm_while_waiting_disconnects(broker: tuple[int, Responder]) -> None:
    """mosquitto_rr dies of SIGTERM (status 143, no DISCONNECT); m2mhub rr says DISCONNECT
    first and exits 143 all the same."""
    port, _ = broker
    proc = start_tool(
        "rr", "-p", str(port), "-t", "rr/req/silent", "-e", "rr/resp/s", "-m", "x", "-d"
    )
    try:
        proc.wait_for_line("sending PUBLISH")
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 128 + signal.SIGTERM
        assert proc.lines[-1].endswith("sending DISCONNECT")
    finally:
        proc.stop()


def _until_publish(answer_subscribe: bytes) -> Any:
    """A broker that accepts the CONNECT, answers SUBSCRIBE as told and hangs up on PUBLISH."""

    def respond(packet: bytes) -> bytes | None:
        kind = packet[0] >> 4
        if kind == 1:
            return bytes((0x20, 3, 0, 0, 0))
        if kind == 8:
            return bytes((0x90, 4, packet[2], packet[3], 0)) + answer_subscribe
        if kind == 3:
            return None
        return b""

    return respond


def test_connection_lost_while_waiting() -> None:
    with scripted_peer(_until_publish(b"\x00")) as port:
        theirs, ours = both("-p", str(port), "-t", "a", "-e", "b", "-m", "x", "-d")
    assert (theirs.code, theirs.err) == (7, "Error: The connection was lost.\n")
    assert (ours.code, ours.err) == (theirs.code, theirs.err)
    assert normalise(ours.lines) == normalise(theirs.lines)


def test_refused_subscription() -> None:
    """mosquitto_rr 2.0.11 prints the reason and exits 0; its manual says a failure exits
    non-zero, and m2mhub rr exits 1."""
    with scripted_peer(_until_publish(b"\x87")) as port:
        theirs, ours = both("-p", str(port), "-t", "a", "-e", "b", "-m", "x", "-d")
    assert (theirs.code, theirs.err) == (0, "Not authorized\n")
    assert (ours.code, ours.out, ours.err) == (1, theirs.out, theirs.err)


def test_request_from_file_and_stdin(broker: tuple[int, Responder], tmp_path: Path) -> None:
    """mosquitto_rr 2.0.11 sends an empty request for -f and -s (it never reads them);
    m2mhub rr sends the file or stdin, as its manual says."""
    port, responder = broker
    body = tmp_path / "request.bin"
    body.write_bytes(b"from\x00file")
    base = ["-p", str(port), "-t", "rr/req/f", "-e", "rr/resp/f"]
    theirs = run_tool("mosquitto_rr", *base, "-f", str(body))
    assert (theirs.code, theirs.out, responder.request("rr/req/f").payload) == (0, "re:\n", b"")
    ours = run_tool("rr", *base, "-f", str(body), "-F", "%x")
    assert (ours.code, ours.out) == (0, (b"re:from\x00file").hex() + "\n")
    assert responder.request("rr/req/f").payload == b"from\x00file"
    ours = run_tool("rr", *base, "-s", stdin=b"from stdin\n")
    assert (ours.code, ours.out) == (0, "re:from stdin\n\n")
    assert responder.request("rr/req/f").payload == b"from stdin\n"
    missing = run_tool("rr", *base, "-f", str(tmp_path / "missing"))
    assert (missing.code, missing.err) == (1, f'Error: Unable to open file "{tmp_path}/missing".\n')


def test_no_retain_waits_for_a_fresh_response(broker: tuple[int, Responder]) -> None:
    """-R: mosquitto_rr 2.0.11 ignores it and prints a stale retained message as the response;
    m2mhub rr skips it and waits for the real one, as the manual describes -R."""
    port, _ = broker
    stale = run_tool("mosquitto_pub", "-p", str(port), "-t", "rr/resp/r", "-m", "stale", "-r")
    assert stale.code == 0
    try:
        base = ["-p", str(port), "-t", "rr/req/r", "-e", "rr/resp/r", "-m", "x", "-R", "-v"]
        theirs = run_tool("mosquitto_rr", *base)
        assert (theirs.code, theirs.out) == (0, "rr/resp/r stale\n")
        ours = run_tool("rr", *base)
        assert (ours.code, ours.out) == (0, "rr/resp/r re:x\n")
        without = run_tool("rr", *base[:-2], "-v")
        assert (without.code, without.out) == (0, "rr/resp/r stale\n")
    finally:
        run_tool("mosquitto_pub", "-p", str(port), "-t", "rr/resp/r", "-n", "-r")


def test_help() -> None:
    done = run_tool("rr", "--help")
    assert done.code == 0
    assert "-e : response topic" in done.out
    assert "Defaults to mqttv5." in done.out


@pytest.mark.parametrize("pretty", [[], ["--pretty"]])
def test_json_output_with_properties(broker: tuple[int, Responder], pretty: list[str]) -> None:
    port, _ = broker
    args = ["-p", str(port), "-t", "rr/req/j", "-e", "rr/resp/j", "-m", "{}", "-q", "1"]
    theirs, ours = both(*args, "-D", "publish", "correlation-data", "j1", "-F", "%j", *pretty)
    stamp = re.compile(r'"tst":(\s*)"[^"]*"')
    assert (ours.code, ours.err) == (theirs.code, theirs.err) == (0, "")
    assert stamp.sub(r'"tst":\1"T"', ours.out) == stamp.sub(r'"tst":\1"T"', theirs.out)
    assert '"correlation-data":' in ours.out and '"content-type":' in ours.out
