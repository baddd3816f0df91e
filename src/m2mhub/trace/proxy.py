"""The asyncio shell of ``m2mhub trace``: a TCP proxy for MQTT and a UDP proxy for CoAP.

Bytes are forwarded unchanged and at once; a copy goes to the sans-IO decoders
(:mod:`m2mhub.trace.mqtt_stream`, :mod:`m2mhub.trace.coap_view`) and the
:class:`~m2mhub.trace.format.PacketFormatter`, and optionally to a
:class:`~m2mhub.trace.pcap.PcapWriter`. Nothing the decoders do can stop or alter forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, Final, TextIO, cast

from m2mhub.trace.coap_view import CoapFormatError, parse_coap
from m2mhub.trace.format import CLIENT_TO_SERVER, SERVER_TO_CLIENT, PacketFormatter
from m2mhub.trace.mqtt_stream import Frame, MqttConversation
from m2mhub.trace.pcap import Address, PcapWriter, TcpFlow

__all__ = ["CoapProxy", "MqttProxy", "TraceSink", "parse_spec"]

_UDP_IDLE_SECONDS: Final = 300.0
_UDP_MAX_CLIENTS: Final = 1024


def parse_spec(spec: str) -> tuple[int, str, int]:
    """``LISTEN_PORT:HOST:PORT`` (HOST may be ``[v6]``) -> (listen port, host, port)."""
    listen, sep, rest = spec.partition(":")
    host, sep2, port = rest.rpartition(":")
    if not sep or not sep2 or not host:
        raise ValueError(f"expected LISTEN_PORT:HOST:PORT, got {spec!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        listen_port, upstream_port = int(listen), int(port)
    except ValueError:
        raise ValueError(f"ports must be numbers in {spec!r}") from None
    for p in (listen_port, upstream_port):
        if not 0 <= p <= 65535:
            raise ValueError(f"port {p} out of range in {spec!r}")
    return listen_port, host, upstream_port


def _addr(sockname: Any) -> Address:
    return (str(sockname[0]), int(sockname[1]))


def _show(addr: Address) -> str:
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"


class TraceSink:
    """Where traced units go: formatted text to ``out`` and, optionally, a pcap file."""

    __slots__ = ("broken", "clock", "failures", "formatter", "out", "pcap")

    def __init__(
        self,
        formatter: PacketFormatter,
        out: TextIO,
        pcap: PcapWriter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.formatter = formatter
        self.out = out
        self.pcap = pcap
        self.clock = clock
        self.broken = False
        self.failures = 0

    def emit(self, text: str) -> None:
        if self.broken:
            return
        try:
            self.out.write(text + "\n")
            self.out.flush()
        except (OSError, ValueError) as exc:  # closed pipe or file: keep forwarding
            self.broken = True
            self.failure(exc)

    def failure(self, exc: Exception) -> None:
        """Tracing failed (output closed, disk full, a formatter bug): say so once on stderr
        and go on forwarding; printing stops when the output itself is broken."""
        if isinstance(exc, OSError):
            self.broken = True
        if self.failures < 3:
            self.failures += 1
            with contextlib.suppress(Exception):
                print(f"m2mhub trace: tracing failed ({exc!r}); still forwarding", file=sys.stderr)

    def mqtt_frames(self, frames: list[Frame], when: float, direction: str, conn: str) -> None:
        fmt = self.formatter
        for fr in frames:
            if fr.packet is not None:
                text = fmt.mqtt(
                    fr.packet, when=when, direction=direction, conn=conn, level=fr.level, raw=fr.raw
                )
            elif fr.error is not None:
                text = fmt.malformed(
                    fr.raw, fr.error, when=when, direction=direction, conn=conn, protocol="mqtt"
                )
            else:
                text = fmt.raw(fr.raw, when=when, direction=direction, conn=conn, protocol="mqtt")
            self.emit(text)

    def coap_datagram(self, data: bytes, when: float, direction: str, conn: str) -> None:
        fmt = self.formatter
        try:
            msg = parse_coap(data)
        except CoapFormatError as exc:
            text = fmt.malformed(
                data, exc, when=when, direction=direction, conn=conn, protocol="coap"
            )
        else:
            text = fmt.coap(msg, when=when, direction=direction, conn=conn, raw=data)
        self.emit(text)


# ------------------------------------------------------------------------------------------
# MQTT over TCP


class _Side(asyncio.Protocol):
    """One TCP leg of a traced connection; hands everything to its :class:`_MqttSession`."""

    def __init__(self, session: _MqttSession, from_client: bool) -> None:
        self.session = session
        self.from_client = from_client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.session.side_connected(self)

    def data_received(self, data: bytes) -> None:
        self.session.received(self.from_client, data)

    def eof_received(self) -> bool | None:
        self.session.side_closed(self.from_client)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.side_closed(self.from_client)

    def pause_writing(self) -> None:
        self.session.pause_reading(not self.from_client)

    def resume_writing(self) -> None:
        self.session.resume_reading(not self.from_client)


class _MqttSession:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: MqttProxy, number: int) -> None:
        self.proxy = proxy
        self.number = number
        self.conversation = MqttConversation()
        self.client: _Side = _Side(self, True)
        self.upstream: _Side | None = None
        self.pending: list[bytes] = []
        self.flow: TcpFlow | None = None
        self.closed = False
        self.client_addr: Address = ("0.0.0.0", 0)

    @property
    def conn(self) -> str:
        cid = self.conversation.client_id
        return f"c{self.number}" if cid is None else f"c{self.number}({cid})"

    def side_connected(self, side: _Side) -> None:
        if side is self.client:
            assert side.transport is not None
            self.client_addr = _addr(side.transport.get_extra_info("peername"))
            side.transport.pause_reading()
            task = asyncio.get_running_loop().create_task(self._connect_upstream())
            self.proxy.tasks.add(task)
            task.add_done_callback(self.proxy.tasks.discard)

    async def _connect_upstream(self) -> None:
        proxy = self.proxy
        sink = proxy.sink
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(
                lambda: _Side(self, False), proxy.host, proxy.port
            )
        except OSError as exc:
            sink.emit(
                sink.formatter.event(
                    f"cannot connect to {proxy.host}:{proxy.port}: {exc}; closing the client",
                    when=sink.clock(),
                    conn=self.conn,
                    protocol="mqtt",
                )
            )
            self.closed = True
            self.proxy.sessions.discard(self)
            if self.client.transport is not None:
                self.client.transport.close()
            return
        self.upstream = upstream
        assert upstream.transport is not None
        server_addr = _addr(upstream.transport.get_extra_info("peername"))
        when = sink.clock()
        sink.emit(
            sink.formatter.event(
                f"connection from {_show(self.client_addr)} to {_show(server_addr)}",
                when=when,
                conn=self.conn,
                protocol="mqtt",
            )
        )
        if sink.pcap is not None:
            self.flow = sink.pcap.tcp_open(when, self.client_addr, server_addr)
        if self.closed:
            upstream.transport.close()
            return
        if self.client.transport is not None:
            self.client.transport.resume_reading()

    def received(self, from_client: bool, data: bytes) -> None:
        target = self.upstream if from_client else self.client
        if target is not None and target.transport is not None:
            target.transport.write(data)  # forwarded first, unchanged
        try:
            self._trace(from_client, data)
        except Exception as exc:  # tracing must never stop the traffic
            self.proxy.sink.failure(exc)

    def _trace(self, from_client: bool, data: bytes) -> None:
        sink = self.proxy.sink
        when = sink.clock()
        if sink.pcap is not None and self.flow is not None:
            sink.pcap.tcp_data(when, self.flow, from_client, data)
            sink.pcap.flush()
        conv = self.conversation
        direction = conv.from_client if from_client else conv.from_server
        frames = direction.feed(data)
        sink.mqtt_frames(
            frames, when, CLIENT_TO_SERVER if from_client else SERVER_TO_CLIENT, self.conn
        )

    def side_closed(self, from_client: bool) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._trace_close(from_client)
        except Exception as exc:  # tracing must never keep a connection open
            self.proxy.sink.failure(exc)
        for side in (self.client, self.upstream):
            if side is not None and side.transport is not None:
                side.transport.close()
        self.proxy.sessions.discard(self)

    def _trace_close(self, from_client: bool) -> None:
        sink = self.proxy.sink
        when = sink.clock()
        conv = self.conversation
        for fc, direction in ((True, conv.from_client), (False, conv.from_server)):
            sink.mqtt_frames(
                direction.close(), when, CLIENT_TO_SERVER if fc else SERVER_TO_CLIENT, self.conn
            )
        who = "client" if from_client else "server"
        sink.emit(
            sink.formatter.event(f"closed by the {who}", when=when, conn=self.conn, protocol="mqtt")
        )
        if sink.pcap is not None and self.flow is not None:
            sink.pcap.tcp_close(when, self.flow, client_first=from_client)
            sink.pcap.flush()

    def pause_reading(self, from_client: bool) -> None:
        side = self.client if from_client else self.upstream
        if side is not None and side.transport is not None:
            side.transport.pause_reading()

    def resume_reading(self, from_client: bool) -> None:
        side = self.client if from_client else self.upstream
        if side is not None and side.transport is not None:
            side.transport.resume_reading()


class MqttProxy:
    """Listens on ``bind:listen_port`` and relays each connection to ``host:port``."""

    def __init__(self, sink: TraceSink, bind: str, listen_port: int, host: str, port: int) -> None:
        self.sink = sink
        self.bind = bind
        self.listen_port = listen_port
        self.host = host
        self.port = port
        self.sessions: set[_MqttSession] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._count = 0
        self.server: asyncio.Server | None = None

    def _new_side(self) -> _Side:
        self._count += 1
        session = _MqttSession(self, self._count)
        self.sessions.add(session)
        return session.client

    async def start(self) -> int:
        """Start listening; returns the port (useful when ``listen_port`` is 0)."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._new_side, self.bind, self.listen_port)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for session in list(self.sessions):
            session.side_closed(True)


# ------------------------------------------------------------------------------------------
# CoAP over UDP


class _Upstream(asyncio.DatagramProtocol):
    """The per-client socket towards the server; replies go back through the listener."""

    def __init__(self, proxy: CoapProxy, client: Address) -> None:
        self.proxy = proxy
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.server_addr: Address = ("0.0.0.0", 0)
        self.last_used = time.monotonic()
        self.queued: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's UDP transport is not a DatagramTransport subclass, only duck-typed as one.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.server_addr = _addr(transport.get_extra_info("peername"))
        for data in self.queued:
            self.transport.sendto(data)
        self.queued.clear()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.last_used = time.monotonic()
        proxy = self.proxy
        if proxy.listener is not None:
            proxy.listener.sendto(data, self.client)
        proxy.traced(data, self.client, self.server_addr, from_client=False)

    def error_received(self, exc: Exception) -> None:
        sink = self.proxy.sink
        sink.emit(
            sink.formatter.event(
                f"upstream error: {exc}",
                when=sink.clock(),
                conn=_show(self.client),
                protocol="coap",
            )
        )


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, proxy: CoapProxy) -> None:
        self.proxy = proxy

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.proxy.from_client(data, _addr(addr))


class CoapProxy:
    """Listens on UDP ``bind:listen_port``; each client gets its own socket to ``host:port``
    so that the server sees distinct endpoints and replies find their way back."""

    def __init__(self, sink: TraceSink, bind: str, listen_port: int, host: str, port: int) -> None:
        self.sink = sink
        self.bind = bind
        self.listen_port = listen_port
        self.host = host
        self.port = port
        self.listener: asyncio.DatagramTransport | None = None
        self.upstreams: dict[Address, _Upstream] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.TimerHandle | None = None
        self._target: Any = None

    async def start(self) -> int:
        """Start listening; returns the port (useful when ``listen_port`` is 0)."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        # "localhost" usually means the IPv4 loopback to a CoAP server; prefer IPv4 addresses.
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        self._target = infos[0][4]
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Listener(self), local_addr=(self.bind, self.listen_port)
        )
        self.listener = transport
        self._reaper = loop.call_later(_UDP_IDLE_SECONDS / 4, self._reap)
        port: int = transport.get_extra_info("sockname")[1]
        return port

    def from_client(self, data: bytes, client: Address) -> None:
        up = self.upstreams.get(client)
        if up is None:
            up = self._open_upstream(client)
        up.last_used = time.monotonic()
        if up.transport is not None:
            up.transport.sendto(data)
            server = up.server_addr
        else:
            up.queued.append(data)
            server = _addr(self._target)
        self.traced(data, client, server, from_client=True)

    def _open_upstream(self, client: Address) -> _Upstream:
        if len(self.upstreams) >= _UDP_MAX_CLIENTS:
            oldest = min(self.upstreams.values(), key=lambda u: u.last_used)
            self._drop(oldest)
        up = _Upstream(self, client)
        self.upstreams[client] = up
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._connect(up))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return up

    async def _connect(self, up: _Upstream) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: up, remote_addr=self._target)
        except OSError as exc:
            up.error_received(exc)
            self.upstreams.pop(up.client, None)

    def traced(self, data: bytes, client: Address, server: Address, *, from_client: bool) -> None:
        sink = self.sink
        try:
            when = sink.clock()
            if sink.pcap is not None:
                src, dst = (client, server) if from_client else (server, client)
                sink.pcap.udp(when, src, dst, data)
                sink.pcap.flush()
            direction = CLIENT_TO_SERVER if from_client else SERVER_TO_CLIENT
            sink.coap_datagram(data, when, direction, _show(client))
        except Exception as exc:  # tracing must never stop the traffic
            sink.failure(exc)

    def _drop(self, up: _Upstream) -> None:
        self.upstreams.pop(up.client, None)
        if up.transport is not None:
            up.transport.close()

    def _reap(self) -> None:
        cutoff = time.monotonic() - _UDP_IDLE_SECONDS
        for up in [u for u in self.upstreams.values() if u.last_used < cutoff]:
            self._drop(up)
        self._reaper = asyncio.get_running_loop().call_later(_UDP_IDLE_SECONDS / 4, self._reap)

    def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for up in list(self.upstreams.values()):
            self._drop(up)
        if self.listener is not None:
            self.listener.close()
