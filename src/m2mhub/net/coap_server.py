"""The asyncio UDP shell around :class:`m2mhub.coap.endpoint.Endpoint`.

One socket and one endpoint per listening address; all share the same :class:`Site`.  Each
datagram goes straight into the engine and whatever it produced is sent before the next one is
read; timers are one ``call_at`` per socket, set to the engine's next deadline; render
coroutines that really suspend run as tasks.

    server = await start_coap_server(site, [("0.0.0.0", 5683), ("::", 5683)])
    ...
    server.close()
    await server.wait_closed()

An optional :class:`DatagramTap` (``m2mhub serve --trace`` / ``-w``) sees every datagram
received and sent; without one, the read and write loops are exactly the untapped ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from m2mhub.coap.endpoint import CoapConfig, Endpoint
from m2mhub.coap.resource import Site

log = logging.getLogger("m2mhub.coap")

_SOCKET_BUFFER = 4 << 20
_READ_BATCH = 64
_MAX_DATAGRAM = 65536
_MAX_BLOCKED = 100_000  # datagrams queued while the kernel send buffer is full

Address = tuple[str, int]


class DatagramTap(Protocol):
    """Sees every datagram of a CoAP socket (``m2mhub serve --trace`` / ``-w``); optional.

    ``datagram`` is called with the socket's own (host, port), the peer's (host, port),
    ``received`` (True: from the peer, before the engine handles it; False: sent to the peer,
    once the kernel took it) and the datagram's bytes.  It must not raise.
    """

    def datagram(self, local: Address, peer: Address, received: bool, data: bytes) -> None: ...


def _peer(addr: Any) -> Address:
    return str(addr[0]), int(addr[1])  # IPv6 addresses come with flowinfo and scope id


class CoapSocket:
    """Feeds one UDP socket's datagrams to an :class:`Endpoint` and sends what it produces.

    The socket is read directly from a loop reader callback, up to ``_READ_BATCH`` datagrams per
    wake-up (asyncio's datagram transport reads one per loop iteration), and replies go out with
    ``sendto`` straight away; only when the kernel buffer is full are they queued (bounded).

    With a ``tap``, every datagram read and sent is also shown to it; the choice between the
    plain and the tapped socket calls is made once per wake-up, not per datagram.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        *,
        tap: DatagramTap | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.sock = sock
        self.loop = loop
        self.tap = tap
        self._local = self.address
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_soon = False
        self._blocked: deque[tuple[bytes, Any]] = deque()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._closing = False
        self.closed = asyncio.Event()
        endpoint.on_wakeup = self._wakeup
        loop.add_reader(sock.fileno(), self._readable)

    @property
    def address(self) -> tuple[str, int]:
        name = self.sock.getsockname()
        return str(name[0]), int(name[1])

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        fd = self.sock.fileno()
        self.loop.remove_reader(fd)
        self.loop.remove_writer(fd)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        self.endpoint.close()
        self.endpoint.outbox.clear()
        self.sock.close()
        self.closed.set()

    # --- reading --------------------------------------------------------------------------------

    def _readable(self) -> None:
        recvfrom = self.sock.recvfrom if self.tap is None else self._tapped_recvfrom
        ep = self.endpoint
        feed = ep.datagram_received
        for _ in range(_READ_BATCH):
            try:
                data, addr = recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                log.debug("coap socket error: %s", exc)
                break
            try:
                feed(data, addr)
            except Exception:  # a bug must not stop the socket
                log.exception("coap: unexpected error handling a datagram from %s", addr)
                ep.outbox.clear()
            if ep.outbox:
                self._send()
        if ep.deferred:
            self._run_deferred()
        if ep._timers:
            self._arm()

    # --- sending --------------------------------------------------------------------------------

    def flush(self) -> None:
        """Send pending output, start deferred handlers and re-arm the timer."""
        self._flush_soon = False
        if self._closing:
            return
        ep = self.endpoint
        if ep.outbox:
            self._send()
        if ep.deferred:
            self._run_deferred()
        self._arm()

    def _send(self) -> None:
        out = self.endpoint.outbox
        if self._blocked:
            self._queue(out)
        else:
            sendto = self.sock.sendto if self.tap is None else self._tapped_sendto
            for i, (data, peer) in enumerate(out):
                try:
                    sendto(data, peer)
                except (BlockingIOError, InterruptedError):
                    self._queue(out[i:])
                    self.loop.add_writer(self.sock.fileno(), self._writable)
                    break
                except OSError as exc:
                    log.debug("coap: cannot send to %s: %s", peer, exc)
        out.clear()

    def _queue(self, items: list[tuple[bytes, Any]]) -> None:
        room = _MAX_BLOCKED - len(self._blocked)
        if room < len(items):
            log.warning("coap: send buffer full, %d datagrams dropped", len(items) - max(room, 0))
        self._blocked.extend(items[: max(room, 0)])

    def _writable(self) -> None:
        blocked = self._blocked
        sendto = self.sock.sendto if self.tap is None else self._tapped_sendto
        while blocked:
            data, peer = blocked[0]
            try:
                sendto(data, peer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("coap: cannot send to %s: %s", peer, exc)
            blocked.popleft()
        self.loop.remove_writer(self.sock.fileno())

    # --- the tap ---------------------------------------------------------------------------------

    def _tapped_recvfrom(self, size: int) -> tuple[bytes, Any]:
        data, addr = self.sock.recvfrom(size)
        tap = self.tap
        if tap is not None:
            tap.datagram(self._local, _peer(addr), True, data)
        return data, addr

    def _tapped_sendto(self, data: bytes, addr: Any) -> int:
        sent = self.sock.sendto(data, addr)
        tap = self.tap
        if tap is not None:
            tap.datagram(self._local, _peer(addr), False, data)
        return sent

    # --- timers and deferred handlers -----------------------------------------------------------

    def _wakeup(self) -> None:
        if not self._flush_soon and not self._closing:
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
        if self._closing:
            return
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
            if t.cancelled() or self._closing:
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

    def __init__(self, sockets: list[CoapSocket]) -> None:
        self.sockets = sockets
        self._addresses = [s.address for s in sockets]

    @property
    def endpoints(self) -> list[Endpoint]:
        return [s.endpoint for s in self.sockets]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound (host, port) of every socket (useful with port 0)."""
        return list(self._addresses)

    def close(self) -> None:
        for s in self.sockets:
            s.close()

    async def wait_closed(self) -> None:
        for s in self.sockets:
            await s.closed.wait()

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
    endpoint: Endpoint, host: str, port: int, *, tap: DatagramTap | None = None
) -> CoapSocket:
    """Bind one UDP socket at (host, port) and run ``endpoint`` on it (servers and clients).

    ``tap``, if given, sees every datagram received and sent (:class:`DatagramTap`).
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, _, _, _, addr = infos[0]
    return CoapSocket(endpoint, _udp_socket(family, addr), loop, tap=tap)


async def start_coap_server(
    site: Site,
    host_ports: list[tuple[str, int]],
    *,
    config: CoapConfig | None = None,
    tap: DatagramTap | None = None,
) -> CoapServer:
    """Listen for CoAP on every (host, port) (IPv4 or IPv6 literal or name; port 0 = any).

    A name that resolves to several addresses binds the first one; pass literals for both
    families (``[("0.0.0.0", 5683), ("::", 5683)]``).  Raises OSError if a bind fails (after
    closing the sockets already bound).  ``tap``, if given, sees every datagram received and
    sent on every socket (:class:`DatagramTap`).
    """
    loop = asyncio.get_running_loop()
    sockets: list[CoapSocket] = []
    try:
        for host, port in host_ports:
            endpoint = Endpoint(site, clock=loop.time, config=config)
            sockets.append(await open_endpoint_socket(endpoint, host, port, tap=tap))
    except BaseException:
        for s in sockets:
            s.close()
        raise
    return CoapServer(sockets)
