"""MQTT over TCP: the thin asyncio shell around :class:`m2mhub.hub.broker.Broker`.

One ``asyncio.Protocol`` per connection hands received bytes to the broker core; the broker
appends output to per-connection buffers, and this shell writes them once per event-loop turn
(``loop.call_soon(broker.flush)``, scheduled by the broker's ``wakeup`` callback). A single
timer calls ``broker.tick`` at ``broker.next_deadline()``. Transport flow control is passed on
to the broker (``pause_writing``/``resume_writing``), which then queues QoS 1/2 for that client
and drops QoS 0, so one slow reader never stalls the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from typing import Any, Protocol, cast

from m2mhub.hub.broker import Broker
from m2mhub.hub.connection import CLOSED, Connection
from m2mhub.hub.settings import BrokerSettings

LOCAL_ONLY_HOSTS = ("127.0.0.1", "::1")
DEFAULT_PORT = 1883
# Transport buffer marks: above HIGH the broker stops writing PUBLISHes to the client.
WRITE_HIGH_WATER = 256 * 1024
WRITE_LOW_WATER = 64 * 1024
# After a read this large, the connection sits out one loop turn so that other sockets (and
# the acknowledgements that free receivers' in-flight windows) get their turn: loops like
# uvloop otherwise keep reading a fast publisher many times within one iteration.
FAIR_READ = 16 * 1024


def resident_bytes() -> int:
    """Memory in use by this process (resident set), for ``$SYS/broker/heap/current``."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def listeners_from_settings(settings: BrokerSettings) -> list[tuple[str | None, int]]:
    """The ``(host, port)`` pairs to listen on: the MQTT listeners, or local-only mode."""
    pairs: list[tuple[str | None, int]] = [
        (listener.bind_address, listener.port)
        for listener in settings.listeners
        if listener.protocol == "mqtt"
    ]
    if not pairs and settings.local_only:
        pairs = [(host, DEFAULT_PORT) for host in LOCAL_ONLY_HOSTS]
    return pairs


class _MqttProtocol(asyncio.Protocol):
    """One TCP connection: bytes in to the broker, flow control events to the broker."""

    __slots__ = ("_conn", "_listener_port", "_loop", "_server", "_transport")

    def __init__(self, server: MqttServer, listener_port: int) -> None:
        self._server = server
        self._loop = server.loop
        self._listener_port = listener_port
        self._conn: Connection | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass but has the same API.
        transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # set either way: asyncio itself turns TCP_NODELAY on for every TCP socket
            nodelay = int(self._server.broker.settings.set_tcp_nodelay)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, nodelay)
        transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if peer else "unknown"
        self._conn = self._server.broker.connection_made(
            transport, peer_text, self._listener_port, self._loop.time()
        )
        self._server.after_input()

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is not None:
            self._server.broker.data_received(conn, data, self._loop.time())
            if (
                len(data) >= FAIR_READ
                and conn.throttles == 0
                and conn.state != CLOSED
                and self._transport is not None
            ):
                self._transport.pause_reading()
                self._server.sit_out(self)

    def resume_after_turn(self) -> None:
        conn = self._conn
        transport = self._transport
        if conn is not None and conn.throttles == 0 and transport is not None:
            transport.resume_reading()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        conn = self._conn
        if conn is not None:
            self._server.broker.connection_lost(conn, self._loop.time())
            self._conn = None
            self._transport = None
            self._server.after_input()

    def pause_writing(self) -> None:
        if self._conn is not None:
            self._server.broker.pause_writing(self._conn)

    def resume_writing(self) -> None:
        if self._conn is not None:
            self._server.broker.resume_writing(self._conn, self._loop.time())


class ConnectionTap(Protocol):
    """Sees every byte of every connection (``m2mhub serve --trace`` / ``-w``); optional.

    Connections are named by their asyncio transport (``get_extra_info`` gives the addresses).
    ``received`` is called before the broker handles the bytes, ``sent`` as the broker writes.
    """

    def opened(self, transport: asyncio.BaseTransport) -> None: ...

    def received(self, transport: asyncio.BaseTransport, data: bytes) -> None: ...

    def sent(self, transport: asyncio.BaseTransport, data: bytes) -> None: ...

    def closed(self, transport: asyncio.BaseTransport) -> None: ...


class _TappedTransport:
    """The transport as the broker sees it when tapped: writes are shown to the tap first."""

    __slots__ = ("_tap", "_transport")

    def __init__(self, transport: asyncio.Transport, tap: ConnectionTap) -> None:
        self._transport = transport
        self._tap = tap

    def write(self, data: Any) -> None:
        self._tap.sent(self._transport, bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _TappedMqttProtocol(_MqttProtocol):
    """A connection whose bytes both ways also go to a :class:`ConnectionTap`.

    A separate class so that an untapped server runs exactly the plain protocol's code.
    """

    __slots__ = ("_raw_transport", "_tap")

    def __init__(self, server: MqttServer, listener_port: int, tap: ConnectionTap) -> None:
        super().__init__(server, listener_port)
        self._tap = tap
        self._raw_transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = cast(asyncio.Transport, transport)
        self._raw_transport = raw
        self._tap.opened(raw)
        super().connection_made(cast(asyncio.Transport, _TappedTransport(raw, self._tap)))

    def data_received(self, data: bytes) -> None:
        if self._raw_transport is not None:
            self._tap.received(self._raw_transport, data)
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._raw_transport is not None:
            self._tap.closed(self._raw_transport)
            self._raw_transport = None


class MqttServer:
    """Listening sockets plus the flush and timer plumbing for one broker."""

    def __init__(self, tap: ConnectionTap | None = None) -> None:
        self.tap = tap
        self.loop: asyncio.AbstractEventLoop  # set by start()
        self.broker: Broker
        self._servers: list[asyncio.base_events.Server] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False
        self._sitting_out: list[_MqttProtocol] = []

    async def start(self, broker: Broker, listeners: list[tuple[str | None, int]]) -> None:
        """Listen on every ``(host, port)``; host None means all interfaces.

        Logs ``Opening ipv4/ipv6 listen socket on port N.`` like mosquitto. Raises OSError if
        a port cannot be bound.
        """
        self.loop = asyncio.get_running_loop()
        self.broker = broker
        broker.wakeup = self._schedule_flush
        if broker.heap_probe is None:
            broker.heap_probe = resident_bytes
        for host, port in listeners:
            server = await self.loop.create_server(
                self._protocol_factory(port),
                host=host,
                port=port,
                reuse_address=True,
            )
            self._servers.append(server)
            bound = sorted(
                {(s.family, s.getsockname()[1]) for s in server.sockets},
                key=lambda item: 0 if item[0] == socket.AF_INET else 1,
            )
            for family, real_port in bound:
                kind = "ipv4" if family == socket.AF_INET else "ipv6"
                if broker.log.notice:
                    broker.log.write(f"Opening {kind} listen socket on port {real_port}.")
        self._arm_timer()

    def _protocol_factory(self, port: int) -> Callable[[], _MqttProtocol]:
        tap = self.tap
        if tap is None:
            return lambda: _MqttProtocol(self, port)
        return lambda: _TappedMqttProtocol(self, port, tap)

    @property
    def ports(self) -> list[int]:
        """The TCP ports actually bound (useful with port 0)."""
        found: list[int] = []
        for server in self._servers:
            for sock in server.sockets:
                port = int(sock.getsockname()[1])
                if port not in found:
                    found.append(port)
        return found

    async def close(self) -> None:
        """Stop listening, close every client connection, stop the timer."""
        if self._closed:
            return
        self._closed = True
        for server in self._servers:
            server.close()
        self.broker.shutdown(self.loop.time())
        self.broker.flush()
        for server in self._servers:
            await server.wait_closed()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------------ plumbing

    def sit_out(self, protocol: _MqttProtocol) -> None:
        """Resume ``protocol``'s reading on the next loop turn."""
        if not self._sitting_out:
            self.loop.call_soon(self._resume_sitting_out)
        self._sitting_out.append(protocol)

    def _resume_sitting_out(self) -> None:
        waiting = self._sitting_out
        self._sitting_out = []
        for protocol in waiting:
            protocol.resume_after_turn()

    def _schedule_flush(self) -> None:
        self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.broker.flush()
        self._arm_timer()

    def after_input(self) -> None:
        """Something outside the flush path may have moved a deadline earlier."""
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._closed:
            return
        deadline = self.broker.next_deadline()
        if deadline is None:
            return
        if self._timer_at is not None and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        scheduled = self._timer_at or 0.0
        self._timer = None
        self._timer_at = None
        # The loop may run a timer a clock-resolution early; the deadline has still come.
        self.broker.tick(max(self.loop.time(), scheduled))
        self.broker.flush()
        self._arm_timer()
