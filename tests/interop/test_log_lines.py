"""``-v`` log lines: for the lab's flow our broker prints what mosquitto prints.

Timestamps, ports and broker-assigned client ids are normalised away. Lines of different
clients may interleave differently from run to run (in mosquitto too), so after the subscriber's
own set-up the comparison is per client, in order.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.interop import raw
from tests.interop.cli import pub, start_sub
from tests.interop.conftest import Broker, start_broker

pytestmark = pytest.mark.interop

NORMALISE = [
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
    (re.compile(r"on port \d+"), "on port PORT"),
    (re.compile(r"\bauto-[0-9A-Fa-f-]+"), "AUTO-ID"),
    (re.compile(r"\bmosq-[0-9A-Za-z]+"), "AUTO-ID"),
    (re.compile(r"\bbarrier-[0-9a-f]+"), "BARRIER"),
]


def normalise(line: str) -> str:
    for pattern, replacement in NORMALISE:
        line = pattern.sub(replacement, line)
    return line


def lab_flow(broker: Broker) -> tuple[list[str], dict[str, list[str]]]:
    """Sub1 subscribes at QoS 1 with a persistent session, "MESSAGE 3" is published at QoS 1.

    Returns the log of Sub1's connect and subscribe, and then the rest of the log split by
    client ("Sub1", "AUTO-ID" for the publisher, "" for lines naming neither).
    """
    sub = start_sub(broker.port, "-i", "Sub1", "-t", "test/message", "-q", "1", "-c", "-C", "1")
    try:
        broker.wait_log("Sending SUBACK to Sub1")
        subscribed = len(broker.lines_since(0))
        pub(broker.port, "-t", "test/message", "-m", "MESSAGE 3", "-q", "1")
        sub.wait_for_line("|MESSAGE 3")
        assert sub.wait(10) == 0  # -C 1: exits with DISCONNECT after one message
        broker.wait_log("Client Sub1 disconnected.")
        broker.wait_log("Received PUBACK from Sub1")
        broker.wait_log("Client auto-")
    finally:
        sub.stop()
    # The start-up probe's connection may log around Sub1's first lines: leave it out.
    probe_closed = "Client <unknown> closed its connection."
    lines = [normalise(line) for line in broker.lines_since(0)]
    first = next(i for i, line in enumerate(lines) if " as Sub1 (" in line)
    while first > 0 and not lines[first].startswith("New connection from"):
        first -= 1
    setup = [line for line in lines[first:subscribed] if line != probe_closed]
    rest = [line for line in lines[subscribed:] if line != probe_closed]
    by_client: dict[str, list[str]] = {"Sub1": [], "AUTO-ID": [], "": []}
    for line in rest:
        key = "Sub1" if "Sub1" in line else "AUTO-ID" if "AUTO-ID" in line else ""
        by_client[key].append(line)
    return setup, by_client


def test_lab_flow_log_lines_match_mosquitto(tmp_path: Path) -> None:
    results = {}
    for kind in ("mosquitto", "m2mhub"):
        with start_broker(kind, tmp_path) as broker:
            results[kind] = lab_flow(broker)
    setup, by_client = results["mosquitto"]
    # What mosquitto 2.0.11 prints, so a change on its side shows up here first.
    assert setup == [
        "New connection from 127.0.0.1:PORT on port PORT.",
        "New client connected from 127.0.0.1:PORT as Sub1 (p2, c0, k60).",
        "No will message specified.",
        "Sending CONNACK to Sub1 (0, 0)",
        "Received SUBSCRIBE from Sub1",
        "\ttest/message (QoS 1)",
        "Sub1 1 test/message",
        "Sending SUBACK to Sub1",
    ]
    assert by_client["Sub1"] == [
        "Sending PUBLISH to Sub1 (d0, q1, r0, m1, 'test/message', ... (9 bytes))",
        "Received PUBACK from Sub1 (Mid: 1, RC:0)",
        "Received DISCONNECT from Sub1",
        "Client Sub1 disconnected.",
    ]
    assert by_client["AUTO-ID"] == [
        "New client connected from 127.0.0.1:PORT as AUTO-ID (p2, c1, k60).",
        "Sending CONNACK to AUTO-ID (0, 0)",
        "Received PUBLISH from AUTO-ID (d0, q1, r0, m1, 'test/message', ... (9 bytes))",
        "Sending PUBACK to AUTO-ID (m1, rc0)",
        "Received DISCONNECT from AUTO-ID",
        "Client AUTO-ID disconnected.",
    ]
    assert by_client[""] == [
        "New connection from 127.0.0.1:PORT on port PORT.",
        "No will message specified.",
    ]
    assert results["m2mhub"] == results["mosquitto"]


def after_startup(broker: Broker) -> list[str]:
    """Normalised log from the first client on, without the start-up probe's close line."""
    lines = [normalise(line) for line in broker.lines_since(0)]
    first = next(i for i, line in enumerate(lines) if line.startswith("New connection from"))
    return [line for line in lines[first:] if line != "Client <unknown> closed its connection."]


def by_client(lines: list[str], names: list[str]) -> dict[str, list[str]]:
    """Lines grouped by the first of ``names`` they mention ("" for none), order kept."""
    groups: dict[str, list[str]] = {name: [] for name in [*names, ""]}
    for line in lines:
        groups[next((n for n in names if n in line), "")].append(line)
    return groups


def qos2_retained_will_unsubscribe_flow(broker: Broker) -> dict[str, list[str]]:
    """Retained QoS 2, a will, QoS 0/1 deliveries, unsubscribe and clearing a retained message.

    Each step waits for the previous one's last log line, so only lines of clients that are
    active at the same time may interleave, and those are compared per client.
    """
    port = broker.port
    pub(port, "-t", "a/x", "-m", "retained two", "-q", "2", "-r")
    will = ("--will-topic", "w", "--will-payload", "bye", "--will-qos", "1", "--will-retain")
    sub = start_sub(port, "-i", "Sub2", "-t", "a/#", "-t", "b", "-q", "2", "-C", "3", *will)
    try:
        broker.wait_log("Received PUBCOMP from Sub2")
        pub(port, "-t", "b", "-m", "zero", "-q", "0")
        sub.wait_for_line("|zero")
        pub(port, "-t", "a/y", "-m", "one", "-q", "1")
        assert sub.wait(10) == 0
        broker.wait_log("Client Sub2 disconnected.")
    finally:
        sub.stop()
    # A raw client, not `mosquitto_sub -E -U`: that one closes on the SUBACK, before the
    # UNSUBACK arrives, and the resulting RST may beat its DISCONNECT to the broker.
    with raw.RawClient(port) as again:
        again.connect("Sub2", clean=False)
        again.send(raw.unsubscribe(7, ["a/#"]))
        again.expect(raw.UNSUBACK)
        again.send(raw.DISCONNECT_BYTES)
        again.wait_closed()
    pub(port, "-t", "a/x", "-n", "-r")
    broker.barrier()
    return by_client(after_startup(broker), ["Sub2", "AUTO-ID", "BARRIER"])


def test_qos2_retained_will_unsubscribe_log_lines_match_mosquitto(tmp_path: Path) -> None:
    results = {}
    for kind in ("mosquitto", "m2mhub"):
        with start_broker(kind, tmp_path) as broker:
            results[kind] = qos2_retained_will_unsubscribe_flow(broker)
    assert "Will message specified (3 bytes) (r1, q1)." in results["mosquitto"][""]
    assert "Received UNSUBSCRIBE from Sub2" in results["mosquitto"]["Sub2"]
    for client, lines in results["mosquitto"].items():
        assert results["m2mhub"][client] == lines, f"lines of {client or 'no client'} differ"
