"""Running ``m2mhub pub/sub`` and mosquitto_pub/sub side by side, as a user would."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.support import M2MHUB, Proc, require

ENV = dict(os.environ, PYTHONUNBUFFERED="1")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run_tool(tool: str, *args: str, stdin: bytes | None = None, timeout: float = 20.0) -> Result:
    """Run ``m2mhub pub|sub`` (tool "pub"/"sub") or a mosquitto client (tool "mosquitto_pub")."""
    mosquitto = tool.startswith("mosquitto")
    argv = [require(tool), *args] if mosquitto else [*M2MHUB, tool, *args]
    done = subprocess.run(
        argv,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
        env=ENV,
    )
    return Result(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def start_tool(tool: str, *args: str) -> Proc:
    """Start a long-running client (stdout+stderr lines collected)."""
    if tool.startswith("mosquitto"):
        argv = [require("stdbuf"), "-oL", require(tool), *args]
    else:
        argv = [*M2MHUB, tool, *args]
    return Proc(argv, env=ENV)


_CLIENT = re.compile(r"^Client (\S+) ")


def normalise(lines: list[str]) -> list[str]:
    """Debug lines with the client id replaced, so mosquitto's and ours compare equal.

    The id differs between runs when the broker assigns it (MQTT 5) or it is random (3.1).
    """
    return [_CLIENT.sub("Client <id> ", line) for line in lines]


def replace_tool_name(text: str) -> str:
    """``mosquitto_pub --help`` hints name the program; ours say ``m2mhub pub``."""
    return text.replace("mosquitto_pub", "m2mhub pub").replace("mosquitto_sub", "m2mhub sub")


Responder = Callable[[bytes], "bytes | None"]
"""Given one complete packet from the client, the bytes to answer (b"" for none), or None to
hang up."""


@contextmanager
def scripted_peer(respond: Responder) -> Iterator[int]:
    """A loopback TCP peer that answers each client packet as ``respond`` says; yields its port.

    For broker behaviour no broker we can start shows on demand (refusing every subscription,
    hanging up mid-flow). Packets must be under 128 bytes (one-byte remaining length).
    """
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        buf = b""
        with conn:
            while data := conn.recv(4096):
                buf += data
                while len(buf) >= 2 and len(buf) >= 2 + buf[1]:
                    packet, buf = buf[: 2 + buf[1]], buf[2 + buf[1] :]
                    answer = respond(packet)
                    if answer is None:
                        return
                    conn.sendall(answer)

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        acceptor.join(5)
        server.close()
