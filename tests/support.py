"""Shared test helpers: free ports, waiting on ports and log lines, running real programs.

Tests run in parallel (pytest-xdist), so every server gets its own free port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_tcp(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.02)


def require(program: str) -> str:
    """Path of a third-party program the test needs; `.ci/run` installs them all."""
    path = shutil.which(program)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is not installed (.ci/run should install it)")
        pytest.skip(f"{program} is not installed")
    return path


class Proc:
    """A running program whose stdout+stderr lines are collected by a reader thread."""

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, errors: str | None = None
    ) -> None:
        """``errors``: how to decode bytes that are not UTF-8 (e.g. "backslashreplace" for a
        broker that logs client-sent bytes verbatim); None keeps the strict default."""
        self.args = args
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            bufsize=1,
            errors=errors,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for_line(self, needle: str, timeout: float = 10.0, start: int = 0) -> str:
        """Wait until a line containing ``needle`` (at index >= start) has been printed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if needle in line:
                        return line
                remaining = deadline - time.monotonic()
                finished = self.popen.poll() is not None and not self._reader.is_alive()
                if remaining <= 0 or finished:
                    raise TimeoutError(
                        f"no line with {needle!r} from {self.args[0]}; output so far:\n"
                        + "\n".join(self.lines)
                    )
                self._cond.wait(remaining)

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait(self, timeout: float = 10.0) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(timeout)
        return code

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._reader.join(5)


@contextmanager
def running(
    args: list[str], env: dict[str, str] | None = None, errors: str | None = None
) -> Iterator[Proc]:
    proc = Proc(args, env, errors)
    try:
        yield proc
    finally:
        proc.stop()


M2MHUB = [sys.executable, "-m", "m2mhub"]


@contextmanager
def mosquitto_broker(tmp_path: Path, config_lines: list[str] = ()) -> Iterator[tuple[Proc, int]]:  # type: ignore[assignment]
    """A real mosquitto on a free loopback port, with -v logging; yields (proc, port)."""
    exe = require("mosquitto")
    port = free_tcp_port()
    conf = tmp_path / f"mosquitto-{port}.conf"
    conf.write_text(
        "\n".join([f"listener {port} 127.0.0.1", "allow_anonymous true", *config_lines]) + "\n"
    )
    with running([exe, "-v", "-c", str(conf)]) as proc:
        wait_tcp(port)
        yield proc, port


@contextmanager
def m2mhub_broker(tmp_path: Path, config_lines: list[str] = ()) -> Iterator[tuple[Proc, int]]:  # type: ignore[assignment]
    """Our broker (``m2mhub serve -v -c conf``) on a free loopback port; yields (proc, port)."""
    port = free_tcp_port()
    conf = tmp_path / f"m2mhub-{port}.conf"
    conf.write_text(
        "\n".join([f"listener {port} 127.0.0.1", "allow_anonymous true", *config_lines]) + "\n"
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with running([*M2MHUB, "serve", "-v", "-c", str(conf), "--no-coap"], env=env) as proc:
        wait_tcp(port)
        yield proc, port
