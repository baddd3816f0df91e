"""The asyncio UDP shell around :class:`m2mhub.coap.endpoint.Endpoint`.

One socket and one endpoint per listening address; all share the same :class:`Site`.  Each
datagram goes straight into the engine and whatever it produced is sent before returning;
timers are one ``call_at`` per socket, set to the engine's next deadline; render coroutines that
really suspend run as tasks.

    server = await start_coap_server(site, [("0.0.0.0", 5683), ("::", 5683)])
    ...
    server.close()
    await server.wait_closed()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any, cast

from m2mhub.coap.endpoint import CoapConfig, Endpoint
from m2mhub.coap.resource import Site

log = logging.getLogger("m2mhub.coap")

_SOCKET_BUFFER = 4 << 20


class CoapDatagramProtocol(asyncio.DatagramProtocol):
    """Feeds one UDP socket's datagrams to an :class:`Endpoint` and sends what it produces."""

    def __init__(self, endpoint: Endpoint, loop: asyncio.AbstractEventLoop) -> None:
        self.endpoint = endpoint
        self.loop = loop
        self.transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_soon = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self.closed = asyncio.Event()
        endpoint.on_wakeup = self._wakeup

    # --- asyncio callbacks ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        ep = self.endpoint
        ep.datagram_received(data, addr)
        if ep.outbox:
            self._send()
        if ep.deferred:
            self._run_deferred()
        if ep._timers:
            self._arm()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the CON retransmission logic copes.
        log.debug("coap socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        self.endpoint.close()
        self.closed.set()

    # --- plumbing -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Send pending output, start deferred handlers and re-arm the timer."""
        self._flush_soon = False
        ep = self.endpoint
        if ep.outbox:
            self._send()
        if ep.deferred:
            self._run_deferred()
        self._arm()

    def _send(self) -> None:
        out = self.endpoint.outbox
        transport = self.transport
        if transport is None or transport.is_closing():
            out.clear()
            return
        sendto = transport.sendto
        for data, peer in out:
            sendto(data, peer)
        out.clear()

    def _wakeup(self) -> None:
        if not self._flush_soon:
            self._flush_soon = True
            self.loop.call_soon(self.flush)

    def _arm(self) -> None:
        deadline = self.endpoint.next_deadline()
        if deadline is None:
            return
        if self._timer_at is not None and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.endpoint.handle_timer()
        self.flush()

    def _run_deferred(self) -> None:
        items = self.endpoint.deferred[:]
        self.endpoint.deferred.clear()
        for awaitable, done in items:
            self._start(awaitable, done)

    def _start(
        self, awaitable: Awaitable[Any], done: Callable[[Any, BaseException | None], None]
    ) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)

        def finished(t: asyncio.Future[Any]) -> None:
            self._tasks.discard(t)
            if t.cancelled():
                return
            exc = t.exception()
            try:
                done(None if exc is not None else t.result(), exc)
            except Exception:
                log.exception("coap: completing a deferred response failed")
            self.flush()

        task.add_done_callback(finished)


class CoapServer:
    """Handle on the listening sockets started by :func:`start_coap_server`."""

    def __init__(self, protocols: list[CoapDatagramProtocol]) -> None:
        self.protocols = protocols

    @property
    def endpoints(self) -> list[Endpoint]:
        return [p.endpoint for p in self.protocols]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound (host, port) of every socket (useful with port 0)."""
        out = []
        for p in self.protocols:
            if p.transport is not None:
                name = p.transport.get_extra_info("sockname")
                out.append((str(name[0]), int(name[1])))
        return out

    def close(self) -> None:
        for p in self.protocols:
            if p.transport is not None:
                p.transport.close()

    async def wait_closed(self) -> None:
        for p in self.protocols:
            await p.closed.wait()

    async def __aenter__(self) -> CoapServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


def _udp_socket(family: int, addr: Any) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, _SOCKET_BUFFER)
        sock.bind(addr)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_endpoint_socket(
    endpoint: Endpoint, host: str, port: int
) -> tuple[asyncio.DatagramTransport, CoapDatagramProtocol]:
    """Bind one UDP socket at (host, port) and run ``endpoint`` on it (servers and clients)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, _, _, _, addr = infos[0]
    sock = _udp_socket(family, addr)
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: CoapDatagramProtocol(endpoint, loop), sock=sock
    )
    return transport, protocol


async def start_coap_server(
    site: Site,
    host_ports: list[tuple[str, int]],
    *,
    config: CoapConfig | None = None,
) -> CoapServer:
    """Listen for CoAP on every (host, port) (IPv4 or IPv6 literal or name; port 0 = any).

    A name that resolves to several addresses binds the first one; pass literals for both
    families (``[("0.0.0.0", 5683), ("::", 5683)]``).  Raises OSError if a bind fails (after
    closing the sockets already bound).
    """
    loop = asyncio.get_running_loop()
    protocols: list[CoapDatagramProtocol] = []
    try:
        for host, port in host_ports:
            endpoint = Endpoint(site, clock=loop.time, config=config)
            _, protocol = await open_endpoint_socket(endpoint, host, port)
            protocols.append(protocol)
    except BaseException:
        for p in protocols:
            if p.transport is not None:
                p.transport.close()
        raise
    return CoapServer(protocols)
