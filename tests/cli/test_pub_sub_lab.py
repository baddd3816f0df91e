"""The lab's steps with ``m2mhub sub``/``m2mhub pub`` only, against mosquitto and m2mhub serve.

Each test runs unchanged against both brokers, so a difference shows up as one failing case.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.client.cli_support import run_tool, start_tool
from tests.support import Proc, m2mhub_broker, mosquitto_broker

pytestmark = pytest.mark.interop


@pytest.fixture(params=["mosquitto", "m2mhub"])
def port(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    factory = mosquitto_broker if request.param == "mosquitto" else m2mhub_broker
    broker: AbstractContextManager[tuple[Proc, int]] = factory(tmp_path)
    with broker as (_, port):
        yield port


def pub(port: int, *args: str) -> None:
    done = run_tool("pub", "-p", str(port), *args)
    assert done.code == 0, done.err


def start_sub(port: int, *args: str) -> Proc:
    proc = start_tool("sub", "-d", "-p", str(port), *args)
    try:
        proc.wait_for_line("Subscribed (mid:")
    except BaseException:
        proc.stop()
        raise
    return proc


def printed(proc: Proc) -> list[str]:
    return [line for line in proc.lines if not line.startswith(("Client ", "Subscribed "))]


def test_lab_persistent_subscriber(port: int) -> None:
    """Sub1 subscribes with -c, goes away (Ctrl-C), misses nothing at QoS 1."""
    sub_args = ["-h", "localhost", "-i", "Sub1", "-t", "test/message", "-q", "1", "-c"]
    sub = start_sub(port, *sub_args)
    try:
        pub(port, "-h", "localhost", "-t", "test/message", "-m", "MESSAGE 3", "-q", "1")
        sub.wait_for_line("MESSAGE 3")
        sub.popen.send_signal(signal.SIGINT)
        assert sub.wait() == 0
    finally:
        sub.stop()
    pub(port, "-t", "test/message", "-m", "MESSAGE 4", "-q", "1")
    pub(port, "-t", "test/message", "-m", "MESSAGE 5", "-q", "0")
    again = run_tool("sub", "-p", str(port), *sub_args, "-C", "1", "-W", "5")
    assert (again.code, again.lines) == (0, ["MESSAGE 4"])


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_qos_levels_end_to_end(port: int, qos: int) -> None:
    sub = start_sub(port, "-t", "lab/qos", "-q", str(qos), "-v", "-C", "3")
    try:
        for n in range(3):
            pub(port, "-t", "lab/qos", "-m", f"m{n}", "-q", "2")
        assert sub.wait() == 0
    finally:
        sub.stop()
    assert printed(sub) == ["lab/qos m0", "lab/qos m1", "lab/qos m2"]
    assert f"received PUBLISH (d0, q{qos}, r0, m" in sub.output()


def test_retained_value_and_no_retained_flag(port: int) -> None:
    pub(port, "-t", "lab/alarm", "-m", "ON", "-r", "-q", "1")
    got = run_tool("sub", "-p", str(port), "-t", "lab/alarm", "-C", "1", "-F", "%r %p", "-W", "5")
    assert got.lines == ["1 ON"]
    stale = run_tool("sub", "-p", str(port), "-t", "lab/alarm", "-R", "-W", "1")
    assert (stale.code, stale.out) == (27, "")
    pub(port, "-t", "lab/alarm", "-n", "-r")
    cleared = run_tool("sub", "-p", str(port), "-t", "lab/alarm", "-W", "1")
    assert (cleared.code, cleared.out) == (27, "")


def test_will_on_abnormal_close(port: int) -> None:
    watcher = start_sub(port, "-t", "lab/will", "-v")
    try:
        dying = start_sub(port, "-t", "lab/x", "--will-topic", "lab/will", "--will-payload", "bye")
        dying.popen.send_signal(signal.SIGKILL)
        dying.wait()
        watcher.wait_for_line("lab/will bye")
    finally:
        watcher.stop()


def test_debug_lines_are_the_same_on_both_brokers(port: int) -> None:
    result = run_tool("pub", "-d", "-p", str(port), "-t", "lab/d", "-m", "x", "-q", "2", "-V", "5")
    shapes = [line.split(" ", 2)[2] for line in result.lines]
    assert shapes == [
        "sending CONNECT",
        "received CONNACK (0)",
        "sending PUBLISH (d0, q2, r0, m1, 'lab/d', ... (1 bytes))",
        "received PUBREC (Mid: 1)",
        "sending PUBREL (m1)",
        "received PUBCOMP (Mid: 1, RC:0)",
        "sending DISCONNECT",
    ]
