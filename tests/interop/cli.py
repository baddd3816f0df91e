"""Driving the real ``mosquitto_sub``/``mosquitto_pub`` programs from tests."""

from __future__ import annotations

import signal
import subprocess
import uuid
from dataclasses import dataclass

from tests.support import Proc, require

# -F format: one parseable line per message (retain flag, QoS, topic, payload).
FORMAT = "MSG|%r|%q|%t|%p"


@dataclass(frozen=True)
class Msg:
    retain: bool
    qos: int
    topic: str
    payload: str


def parse(lines: list[str]) -> list[Msg]:
    out = []
    for line in lines:
        if line.startswith("MSG|"):
            _, r, q, topic, payload = line.split("|", 4)
            out.append(Msg(r == "1", int(q), topic, payload))
    return out


def start_sub(port: int, *args: str) -> Proc:
    """Start ``mosquitto_sub -d`` and return once its SUBACK arrived."""
    # stdbuf: -d debug lines are block-buffered on a pipe otherwise.
    proc = Proc(
        [
            require("stdbuf"),
            "-oL",
            require("mosquitto_sub"),
            "-p",
            str(port),
            "-d",
            "-F",
            FORMAT,
            *args,
        ]
    )
    try:
        proc.wait_for_line("received SUBACK")
    except BaseException:
        proc.stop()
        raise
    return proc


def subscribe_and_leave(port: int, *args: str) -> None:
    """``mosquitto_sub -E``: subscribe, wait for the SUBACK, DISCONNECT, exit.

    This is the lab's "subscribe, then Ctrl-C" without the signal: mosquitto_sub's signal
    handler calls into libmosquitto and can deadlock when the signal lands while the client
    holds a lock (seen under load right after the SUBACK).
    """
    done = subprocess.run(
        [require("mosquitto_sub"), "-p", str(port), "-E", *args],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 0, f"mosquitto_sub -E {args} failed: {done.stdout}{done.stderr}"


def interrupt(proc: Proc) -> int | None:
    """Stop a subscriber whose work is done: SIGTERM, and SIGKILL if it hangs (see above)."""
    if proc.popen.poll() is None:
        proc.popen.send_signal(signal.SIGTERM)
        try:
            return proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
    proc.wait(10)
    return None


def kill9(proc: Proc) -> None:
    """Die without DISCONNECT."""
    proc.popen.kill()
    proc.wait(10)


def pub(port: int, *args: str) -> None:
    """Run ``mosquitto_pub`` to completion; it must succeed."""
    done = subprocess.run(
        [require("mosquitto_pub"), "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 0, f"mosquitto_pub {args} failed: {done.stdout}{done.stderr}"


def until_sentinel(port: int, proc: Proc, topic: str, qos: int = 2) -> list[Msg]:
    """Publish a sentinel on ``topic`` and return every message ``proc`` got before it.

    A broker delivers to one client in order, so once the sentinel arrives everything that was
    queued for the client has arrived too: no need to sleep and hope. The sentinel goes at
    QoS 2 because mosquitto_sub prints a QoS 2 message only once its PUBREL arrives.
    """
    sentinel = f"SENTINEL-{uuid.uuid4().hex[:8]}"
    pub(port, "-t", topic, "-m", sentinel, "-q", str(qos))
    proc.wait_for_line("|" + sentinel)
    msgs = parse(proc.output().splitlines())
    index = next(i for i, m in enumerate(msgs) if m.payload == sentinel)
    return msgs[:index]
