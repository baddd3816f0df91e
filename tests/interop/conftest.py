"""Fixtures for differential interop tests: every expectation runs against a real mosquitto
first (so we know it is what mosquitto users see) and then against ``m2mhub serve``.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.support import M2MHUB, Proc, free_tcp_port, require, running

BROKERS = ["mosquitto", "m2mhub"]


class Broker:
    """A running broker under test: its kind, port and ``-v`` log."""

    def __init__(self, kind: str, proc: Proc, port: int) -> None:
        self.kind = kind
        self.proc = proc
        self.port = port
        self.auth: dict[str, str] = {}  # credentials for helper clients (``barrier``)

    def mark(self) -> int:
        """Index of the next log line; pass it to ``lines_since``/``wait_log``."""
        with self.proc._cond:
            return len(self.proc.lines)

    def lines_since(self, mark: int) -> list[str]:
        """Log lines printed since ``mark``, with the leading ``NNNN: `` timestamp removed."""
        with self.proc._cond:
            return [strip_timestamp(line) for line in self.proc.lines[mark:]]

    def wait_log(self, needle: str, start: int = 0, timeout: float = 10.0) -> str:
        return self.proc.wait_for_line(needle, timeout=timeout, start=start)

    def barrier(self) -> None:
        """Return once every log line about earlier events has been read.

        A client connects and disconnects; the broker logs in order, so when its last line is
        in, so is everything before it.
        """
        from tests.interop import raw

        client_id = f"barrier-{uuid.uuid4().hex[:8]}"
        with raw.RawClient(self.port) as c:
            assert c.connect(client_id, **self.auth).body[1] == 0
            c.send(raw.DISCONNECT_BYTES)
            c.wait_closed()
        self.wait_log(f"Client {client_id} disconnected")

    def alive(self) -> bool:
        return self.proc.popen.poll() is None

    def __repr__(self) -> str:
        return f"Broker({self.kind}, port={self.port})"


_TIMESTAMP = re.compile(r"^\d+: ")


def strip_timestamp(line: str) -> str:
    return _TIMESTAMP.sub("", line)


def _wait_listening(proc: Proc, port: int, timeout: float = 10.0) -> None:
    """Like support.wait_tcp, but gives up at once when the broker process has exited."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        if proc.popen.poll() is not None:
            proc.wait(2)
            raise RuntimeError(
                f"{proc.args[0]} exited with {proc.popen.returncode} before listening:\n"
                + proc.output()
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listening on {port} after {timeout}s:\n" + proc.output()
                ) from None
            time.sleep(0.02)


@contextmanager
def start_broker(kind: str, tmp_path: Path, config_lines: list[str] = ()) -> Iterator[Broker]:  # type: ignore[assignment]
    """Start ``kind`` ("mosquitto" or "m2mhub") with ``-v`` and mosquitto.conf lines."""
    port = free_tcp_port()
    conf = tmp_path / f"{kind}-{port}.conf"
    lines = [f"listener {port} 127.0.0.1"]
    if not any(line.startswith("allow_anonymous") for line in config_lines):
        lines.append("allow_anonymous true")
    if kind == "mosquitto" and os.geteuid() == 0:
        # Run as root, mosquitto drops to user "mosquitto", who cannot read pytest's tmp dirs.
        lines.append("user root")
    conf.write_text("\n".join([*lines, *config_lines]) + "\n")
    if kind == "mosquitto":
        args = [require("mosquitto"), "-v", "-c", str(conf)]
        env = None
    else:
        args = [*M2MHUB, "serve", "-v", "-c", str(conf), "--no-coap"]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
    # Brokers log client ids and topics verbatim, and garbage need not be UTF-8.
    with running(args, env=env, errors="backslashreplace") as proc:
        _wait_listening(proc, port)
        yield Broker(kind, proc, port)


BrokerFactory = Callable[..., Broker]


@pytest.fixture(params=BROKERS)
def broker_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_broker(broker_kind: str, tmp_path: Path) -> Iterator[BrokerFactory]:
    """Start brokers of the parametrized kind with extra config lines; all stop at teardown."""
    with ExitStack() as stack:

        def make(config_lines: list[str] = (), kind: str = broker_kind) -> Broker:  # type: ignore[assignment]
            cm: AbstractContextManager[Broker] = start_broker(kind, tmp_path, list(config_lines))
            return stack.enter_context(cm)

        yield make


@pytest.fixture
def broker(make_broker: BrokerFactory) -> Broker:
    """A fresh broker of each kind, publishing $SYS every second."""
    return make_broker(["sys_interval 1"])
