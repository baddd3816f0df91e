"""An asyncio CoAP client: requests (CON with retransmission, or NON), Observe, Block-wise.

    async with CoapClient() as client:
        response = await client.request("GET", "coap://127.0.0.1/time")
        print(response.code, response.payload)

        async with client.observe("coap://127.0.0.1/alarm") as observation:
            async for notification in observation:      # the first response, then each change
                print(notification.payload)

Messages are encoded and decoded by :mod:`m2mhub.coap.message`; this module only adds the UDP
socket, the timers and the bookkeeping a client needs (message ids, tokens, ACKs, RST for
unknown notifications, duplicate suppression).  Large bodies are moved with Block1/Block2
(RFC 7959) transparently: ``request`` returns the whole body.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Final, TypeVar, cast

from m2mhub.client.coap_uri import CoapUri, parse_uri
from m2mhub.coap import options as o
from m2mhub.coap.message import (
    ACK,
    CON,
    NON,
    RST,
    CoapDecodeError,
    Message,
    OptionValue,
    decode,
    encode,
)

# RFC 7252 section 4.8 transmission parameters.
ACK_TIMEOUT: Final = 2.0
ACK_RANDOM_FACTOR: Final = 1.5
MAX_RETRANSMIT: Final = 4
DEFAULT_TIMEOUT: Final = 90.0
# Largest body sent in one datagram before Block1 takes over (libcoap's default block size).
MAX_UNFRAGMENTED: Final = 1024
_RECENT_CON_LIMIT: Final = 256

METHODS: Final[dict[str, int]] = {
    "GET": o.Code.GET,
    "POST": o.Code.POST,
    "PUT": o.Code.PUT,
    "DELETE": o.Code.DELETE,
    "FETCH": o.Code.FETCH,
    "PATCH": o.Code.PATCH,
    "IPATCH": o.Code.IPATCH,
}

T = TypeVar("T")

Trace = Callable[[str, Message], None]
"""Called with ``("send" | "recv", message)`` for every datagram the client sends or receives."""


class CoapClientError(Exception):
    """Base class of the client's failures (not of error responses: those are returned)."""


class RequestTimeout(CoapClientError):
    """No ACK after every retransmission, or no response within the time allowed."""


class ResetReceived(CoapClientError):
    """The peer answered the request with RST: it could not process the message."""

    def __init__(self, mid: int) -> None:
        super().__init__(f"got RST for mid=0x{mid:04x}")
        self.mid = mid


class NetworkError(CoapClientError):
    """The operating system reported an error for the peer (e.g. ICMP port unreachable)."""


class _Endpoint(asyncio.DatagramProtocol):
    """One connected UDP socket per peer, so that ICMP errors reach us."""

    def __init__(self, client: CoapClient, remote: tuple[Any, ...]) -> None:
        self.client = client
        self.remote = remote
        self.transport: asyncio.DatagramTransport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        if not self.ready.done():
            self.ready.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.client._received(self, data)

    def error_received(self, exc: Exception) -> None:
        self.client._network_error(self, exc)

    def send(self, msg: Message) -> None:
        self.client._trace_send(msg)
        if self.transport is not None:
            self.transport.sendto(encode(msg))


class _Exchange:
    """A request in flight: waits for its ACK and response(s), matched by token."""

    __slots__ = ("acked", "endpoint", "mid_key", "queue", "response", "timer", "token")

    def __init__(self, endpoint: _Endpoint, token: bytes, observing: bool) -> None:
        loop = asyncio.get_running_loop()
        self.endpoint = endpoint
        self.token = token
        self.timer: asyncio.TimerHandle | None = None
        self.mid_key: tuple[int, int] | None = None
        self.acked: asyncio.Future[None] = loop.create_future()
        self.response: asyncio.Future[Message] = loop.create_future()
        self.queue: asyncio.Queue[Message | BaseException] | None = (
            asyncio.Queue() if observing else None
        )

    def deliver(self, msg: Message) -> None:
        if not self.acked.done():
            self.acked.set_result(None)
        if not self.response.done():
            self.response.set_result(msg)
        elif self.queue is not None:
            self.queue.put_nowait(msg)

    def fail(self, exc: BaseException) -> None:
        for fut in (self.acked, self.response):
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: the waiter may already be gone
        if self.queue is not None:
            self.queue.put_nowait(exc)


def _fresh(v1: int, t1: float, v2: int, t2: float) -> bool:
    """RFC 7641 section 3.4: is notification (v2, t2) newer than (v1, t1)?"""
    return (v1 < v2 and v2 - v1 < 1 << 23) or (v1 > v2 and v1 - v2 > 1 << 23) or t2 > t1 + 128


class CoapClient:
    """An asyncio CoAP client endpoint (one UDP socket per peer, opened on first use).

    ``trace`` sees every message sent and received (the ``-v`` output of ``m2mhub coap``).
    ``local_host``/``local_port`` bind the sockets (coap-client's ``-a``/``-p``);
    ``send_uri_host=False`` never sends Uri-Host/Uri-Port (``-U``).
    """

    def __init__(
        self,
        *,
        trace: Trace | None = None,
        ack_timeout: float = ACK_TIMEOUT,
        ack_random_factor: float = ACK_RANDOM_FACTOR,
        max_retransmit: int = MAX_RETRANSMIT,
        local_host: str | None = None,
        local_port: int = 0,
        send_uri_host: bool = True,
    ) -> None:
        self.trace = trace
        self.send_uri_host = send_uri_host
        self.ack_timeout = ack_timeout
        self.ack_random_factor = ack_random_factor
        self.max_retransmit = max_retransmit
        self.local_host = local_host
        self.local_port = local_port
        self._endpoints: dict[tuple[Any, ...], _Endpoint] = {}
        self._by_token: dict[bytes, _Exchange] = {}
        self._by_mid: dict[tuple[int, int], _Exchange] = {}
        self._recent_con: OrderedDict[tuple[int, int], Message] = OrderedDict()
        self._resolved: dict[tuple[str, int], list[tuple[int, tuple[str, int]]]] = {}
        self._opening = asyncio.Lock()
        self._mid = random.randrange(0x10000)

    async def __aenter__(self) -> CoapClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every socket; requests still in flight fail with :class:`NetworkError`."""
        for ex in list(self._by_token.values()):
            ex.fail(NetworkError("client closed"))
        for ep in self._endpoints.values():
            if ep.transport is not None:
                ep.transport.close()
        self._endpoints.clear()

    # --- public API -----------------------------------------------------------------------------

    async def request(
        self,
        method: str | int,
        uri: str | CoapUri,
        payload: bytes = b"",
        *,
        confirmable: bool = True,
        options: Iterable[tuple[int, OptionValue]] = (),
        content_format: int | None = None,
        accept: int | None = None,
        token: bytes | None = None,
        block_size: int | None = None,
        block_start: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Message:
        """Send one request and return its (whole, reassembled) response.

        Error responses (4.xx, 5.xx) are returned, not raised; a missing answer raises
        :class:`RequestTimeout`, a RST :class:`ResetReceived`.  ``block_size`` (16..1024) asks
        for Block2 of that size in a GET, or sends a body in Block1 pieces of that size;
        ``block_start`` is the first block number (coap-client's ``-b num,size``).
        """
        target = parse_uri(uri) if isinstance(uri, str) else uri

        async def attempt(endpoint: _Endpoint) -> Message:
            msg = self._build(method, target, payload, options, content_format, accept)
            async with asyncio.timeout(timeout):
                return await self._blockwise(
                    endpoint, msg, confirmable, token, block_size, block_start
                )

        return await self._with_fallback(target, attempt)

    def observe(
        self,
        uri: str | CoapUri,
        *,
        confirmable: bool = True,
        options: Iterable[tuple[int, OptionValue]] = (),
        accept: int | None = None,
        token: bytes | None = None,
        block_size: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Observation:
        """Register as an observer of ``uri`` (GET with Observe=0); see :class:`Observation`."""
        target = parse_uri(uri) if isinstance(uri, str) else uri
        msg = self._build("GET", target, b"", options, None, accept)
        msg.set(o.OBSERVE, 0)
        return Observation(self, target, msg, confirmable, token, block_size, timeout)

    # --- building and sending -------------------------------------------------------------------

    def _build(
        self,
        method: str | int,
        target: CoapUri,
        payload: bytes,
        extra: Iterable[tuple[int, OptionValue]],
        content_format: int | None,
        accept: int | None,
    ) -> Message:
        code = METHODS[method.upper()] if isinstance(method, str) else method
        msg = Message(code=code, payload=payload)
        if self.send_uri_host and not target.is_literal:
            msg.add(o.URI_HOST, target.host)
        if self.send_uri_host and target.explicit_port and target.port != 5683:
            msg.add(o.URI_PORT, target.port)
        for seg in target.path:
            msg.add(o.URI_PATH, seg)
        for q in target.query:
            msg.add(o.URI_QUERY, q)
        if content_format is not None:
            msg.add(o.CONTENT_FORMAT, content_format)
        if accept is not None:
            msg.add(o.ACCEPT, accept)
        for number, value in extra:
            msg.add(number, value)
        return msg

    async def _resolve(self, target: CoapUri) -> list[tuple[int, tuple[str, int]]]:
        """Every (family, (address, port)) of the URI's host, the one to try first first."""
        name = (target.host, target.port)
        found = self._resolved.get(name)
        if found is not None:
            return found
        if target.is_literal:
            family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
            found = [(family, name)]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_DGRAM)
            except socket.gaierror as e:
                raise NetworkError(f"cannot resolve {target.host}: {e.strerror}") from None
            found = []
            for family, _, _, _, sockaddr in infos:
                entry = (int(family), (str(sockaddr[0]), int(sockaddr[1])))
                if entry not in found:
                    found.append(entry)
            if not found:
                raise NetworkError(f"cannot resolve {target.host}")
        self._resolved[name] = found
        return found

    async def _with_fallback(
        self, target: CoapUri, attempt: Callable[[_Endpoint], Awaitable[T]]
    ) -> T:
        """Run ``attempt`` on the host's first address; if the network refuses it (ICMP: no
        server there, e.g. ``localhost`` giving ::1 to a server on 127.0.0.1 only), try the
        next address, and remember which one worked."""
        addresses = await self._resolve(target)
        for tries_left in range(len(addresses) - 1, -1, -1):
            family, remote = addresses[0]
            ep = await self._endpoint(family, remote)
            try:
                return await attempt(ep)
            except NetworkError:
                if not tries_left:
                    raise
                addresses.append(addresses.pop(0))
        raise AssertionError("unreachable")

    async def _endpoint(self, family: int, remote: tuple[str, int]) -> _Endpoint:
        key: tuple[Any, ...] = remote
        ep = self._endpoints.get(key)
        if ep is not None:
            return ep
        async with self._opening:  # one socket per peer, even for concurrent first requests
            ep = self._endpoints.get(key)
            if ep is not None:
                return ep
            return await self._open(family, remote)

    async def _open(self, family: int, remote: tuple[str, int]) -> _Endpoint:
        loop = asyncio.get_running_loop()
        key: tuple[Any, ...] = remote
        local = None
        if self.local_host is not None or self.local_port:
            wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
            local = (self.local_host or wildcard, self.local_port)
        ep = _Endpoint(self, key)
        await loop.create_datagram_endpoint(
            lambda: ep, remote_addr=remote, local_addr=local, family=family
        )
        await ep.ready
        self._endpoints[key] = ep
        return ep

    def _next_mid(self) -> int:
        self._mid = (self._mid + 1) & 0xFFFF
        return self._mid

    def _new_token(self) -> bytes:
        while True:
            token = os.urandom(4)
            if token not in self._by_token:
                return token

    def _trace_send(self, msg: Message) -> None:
        if self.trace is not None:
            self.trace("send", msg)

    def _send_request(self, ep: _Endpoint, msg: Message, ex: _Exchange, con: bool) -> None:
        """Send ``msg``; a CON is retransmitted with backoff (a timer, no task) until the
        exchange is acknowledged, or fails with :class:`RequestTimeout`."""
        msg.mid = self._next_mid()
        if not con:
            msg.mtype = NON
            ep.send(msg)
            return
        msg.mtype = CON
        key = (id(ep), msg.mid)
        self._by_mid[key] = ex
        ex.mid_key = key
        loop = asyncio.get_running_loop()
        delay = self.ack_timeout * random.uniform(1.0, self.ack_random_factor)
        left = self.max_retransmit

        def retransmit() -> None:
            nonlocal delay, left
            if ex.acked.done():
                return
            if left == 0:
                self._stop_retransmission(ex)
                ex.fail(
                    RequestTimeout(
                        f"no answer from {_peer(ep)} after {self.max_retransmit + 1} transmissions"
                    )
                )
                return
            left -= 1
            delay *= 2
            ep.send(msg)
            ex.timer = loop.call_later(delay, retransmit)

        ep.send(msg)
        ex.timer = loop.call_later(delay, retransmit)

    def _stop_retransmission(self, ex: _Exchange) -> None:
        if ex.timer is not None:
            ex.timer.cancel()
            ex.timer = None
        if ex.mid_key is not None:
            self._by_mid.pop(ex.mid_key, None)
            ex.mid_key = None

    async def _transmit(self, ep: _Endpoint, msg: Message, ex: _Exchange, con: bool) -> None:
        """Send ``msg`` and return once it is acknowledged (at once for a NON)."""
        self._send_request(ep, msg, ex, con)
        if con:
            try:
                await ex.acked
            except BaseException:
                self._stop_retransmission(ex)
                raise

    async def _exchange(
        self, ep: _Endpoint, msg: Message, con: bool, token: bytes | None
    ) -> Message:
        """One request, one response (no block-wise logic)."""
        msg.token = token if token is not None else self._new_token()
        ex = _Exchange(ep, msg.token, observing=False)
        self._by_token[msg.token] = ex
        try:
            self._send_request(ep, msg, ex, con)
            return await ex.response
        finally:
            self._stop_retransmission(ex)
            if self._by_token.get(msg.token) is ex:
                del self._by_token[msg.token]

    async def _blockwise(
        self,
        ep: _Endpoint,
        msg: Message,
        con: bool,
        token: bytes | None,
        block_size: int | None,
        block_start: int,
    ) -> Message:
        payload = msg.payload
        szx = o.size_szx(block_size) if block_size else None
        if payload and (szx is not None or len(payload) > MAX_UNFRAGMENTED):
            response = await self._upload(ep, msg, con, token, szx, block_start)
        else:
            if szx is not None and msg.code in (o.Code.GET, o.Code.FETCH):
                msg.set(o.BLOCK2, o.block_value(block_start, False, szx))
            response = await self._exchange(ep, msg, con, token)
        return await self.fetch_rest(ep, msg, response, con)

    async def _upload(
        self,
        ep: _Endpoint,
        msg: Message,
        con: bool,
        token: bytes | None,
        szx: int | None,
        block_start: int,
    ) -> Message:
        """Send ``msg.payload`` in Block1 pieces; return the response to the last one."""
        body = msg.payload
        if szx is None:
            szx = o.size_szx(MAX_UNFRAGMENTED)
        size = o.szx_size(szx)
        offset = block_start * size
        first = True
        while True:
            piece = body[offset : offset + size]
            more = offset + size < len(body)
            req = Message(code=msg.code, options=list(msg.options), payload=piece)
            req.set(o.BLOCK1, o.block_value(offset // size, more, szx))
            if first:
                req.set(o.SIZE1, len(body))
            response = await self._exchange(ep, req, con, token if first else None)
            first = False
            if not more or response.code != o.Code.CONTINUE:
                return response
            acked = response.block1
            if acked is not None and acked[2] < szx:
                szx = acked[2]  # the server asked for smaller blocks (RFC 7959 2.5)
                size = o.szx_size(szx)
            offset += len(piece)

    async def fetch_rest(
        self,
        ep: _Endpoint,
        request: Message,
        response: Message,
        con: bool,
        restarts: int = 2,
    ) -> Message:
        """If ``response`` carries Block2 with more to come, GET the rest and join the body.

        When a later block has another ETag than the first (the value changed meanwhile), the
        transfer starts again from block 0 (up to ``restarts`` times), so blocks of different
        representations are never mixed.
        """
        block2 = response.block2
        if block2 is None or not block2[1] or not (64 <= response.code < 96):
            return response
        etag = response.get(o.ETAG)
        body = bytearray(response.payload)
        num, more, szx = block2
        offset = num * o.szx_size(szx) + len(response.payload)
        while more:
            size = o.szx_size(szx)
            follow = self._follow_up(request, offset // size, szx)
            part = await self._exchange(ep, follow, con, None)
            got = part.block2
            if not (64 <= part.code < 96) or got is None:
                return part
            part_etag = part.get(o.ETAG)
            if etag is not None and part_etag is not None and part_etag != etag:
                if restarts <= 0:
                    raise CoapClientError("the representation kept changing during a transfer")
                first = await self._exchange(ep, self._follow_up(request, 0, szx), con, None)
                if response.observe is not None and 64 <= first.code < 96:
                    first.set(o.OBSERVE, response.observe)
                return await self.fetch_rest(ep, request, first, con, restarts - 1)
            num, more, szx = got
            body += part.payload
            offset = num * o.szx_size(szx) + len(part.payload)
            if not part.payload and more:
                raise CoapClientError("server sent an empty block with more to come")
        response.payload = bytes(body)
        response.remove(o.BLOCK2)
        return response

    @staticmethod
    def _follow_up(request: Message, num: int, szx: int) -> Message:
        """The request for block ``num`` of the response to ``request`` (never an Observe)."""
        follow = Message(code=request.code, options=list(request.options))
        if request.code == o.Code.FETCH:
            follow.payload = request.payload
        follow.remove(o.OBSERVE)
        follow.remove(o.BLOCK1)
        follow.remove(o.SIZE1)
        follow.set(o.BLOCK2, o.block_value(num, False, szx))
        return follow

    # --- receiving ------------------------------------------------------------------------------

    def _received(self, ep: _Endpoint, data: bytes) -> None:
        try:
            msg = decode(data, ep.remote)
        except CoapDecodeError as e:
            if e.mid is not None and e.mtype == CON:
                ep.send(Message(RST, 0, e.mid))
            return
        if self.trace is not None:
            self.trace("recv", msg)
        mtype = msg.mtype
        if mtype in (ACK, RST):
            ex = self._by_mid.get((id(ep), msg.mid or 0))
            if ex is None:
                return
            self._stop_retransmission(ex)
            if mtype == RST:
                ex.fail(ResetReceived(msg.mid or 0))
            elif msg.code == 0:
                if not ex.acked.done():
                    ex.acked.set_result(None)
            else:
                self._deliver(ex, msg)
            return
        if msg.code == 0 or msg.is_request():
            # A ping (empty CON) or a request: this client serves nothing.
            if mtype == CON:
                ep.send(Message(RST, 0, msg.mid))
            return
        ex = self._by_token.get(msg.token)
        if mtype == CON:
            key = (id(ep), msg.mid or 0)
            answer = self._recent_con.get(key)
            if answer is not None:
                ep.send(answer)  # a retransmission: same answer, no second delivery
                return
            answer = Message(ACK if ex is not None else RST, 0, msg.mid)
            self._recent_con[key] = answer
            if len(self._recent_con) > _RECENT_CON_LIMIT:
                self._recent_con.popitem(last=False)
            ep.send(answer)
        elif ex is None:
            ep.send(Message(RST, 0, msg.mid))  # RFC 7641 3.6: reject unwanted notifications
        if ex is not None:
            self._deliver(ex, msg)

    def _deliver(self, ex: _Exchange, msg: Message) -> None:
        if ex.mid_key is not None:
            self._stop_retransmission(ex)  # a response also acknowledges the request
        ex.deliver(msg)

    def _network_error(self, ep: _Endpoint, exc: Exception) -> None:
        err = NetworkError(f"{_peer(ep)}: {exc.strerror if isinstance(exc, OSError) else exc}")
        for ex in list(self._by_token.values()):
            if ex.endpoint is ep:
                ex.fail(err)


def _peer(ep: _Endpoint) -> str:
    host, port = ep.remote[0], ep.remote[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class Observation:
    """An Observe registration (RFC 7641).  Use as ``async with`` and ``async for``.

    Iterating yields the first response and then each notification, oldest first, skipping
    reordered ones; it stops after a response without Observe (the resource is not observable,
    an error, or the server ended the observation).  :meth:`cancel` deregisters (GET with
    Observe=1, as coap-client does); leaving the ``async with`` block cancels too.
    """

    def __init__(
        self,
        client: CoapClient,
        target: CoapUri,
        request: Message,
        confirmable: bool,
        token: bytes | None,
        block_size: int | None,
        timeout: float,
    ) -> None:
        self.client = client
        self.target = target
        self.request = request
        self.confirmable = confirmable
        self.token = token
        self.block_size = block_size
        self.timeout = timeout
        self._ex: _Exchange | None = None
        self._last: tuple[int, float] | None = None
        self._first_seen = False
        self._ended = False

    async def __aenter__(self) -> Observation:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.cancel()

    async def start(self) -> None:
        """Send the registration; returns once it has been acknowledged (or answered)."""
        await self.client._with_fallback(self.target, self._register)

    async def _register(self, ep: _Endpoint) -> None:
        client = self.client
        msg = self.request
        msg.token = self.token if self.token is not None else client._new_token()
        if self.block_size:
            msg.set(o.BLOCK2, o.block_value(0, False, o.size_szx(self.block_size)))
        ex = _Exchange(ep, msg.token, observing=True)
        client._by_token[msg.token] = ex
        self._ex = ex
        try:
            async with asyncio.timeout(self.timeout):
                await client._transmit(ep, msg, ex, self.confirmable)
        except BaseException:
            client._by_token.pop(msg.token, None)
            raise

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        ex = self._ex
        if ex is None or self._ended:
            raise StopAsyncIteration
        while True:
            if not self._first_seen:
                async with asyncio.timeout(self.timeout):
                    msg = await ex.response
                self._first_seen = True
            else:
                assert ex.queue is not None
                item = await ex.queue.get()
                if isinstance(item, BaseException):
                    raise item
                msg = item
            seq = msg.observe
            if seq is None or not (64 <= msg.code < 96):
                self._ended = True
                self.client._by_token.pop(ex.token, None)
                return msg
            now = time.monotonic()
            if self._last is not None and not _fresh(*self._last, seq, now):
                continue
            self._last = (seq, now)
            return await self.client.fetch_rest(ex.endpoint, self.request, msg, self.confirmable)

    async def cancel(self, wait: float = 0.0) -> None:
        """Deregister: forget the token (later notifications get RST) and send Observe=1.

        ``wait`` > 0 waits that long for the server's answer to the deregistration.
        """
        ex = self._ex
        if ex is None:
            return
        self._ex = None
        client = self.client
        if client._by_token.get(ex.token) is ex:
            del client._by_token[ex.token]
        if self._ended:
            return
        self._ended = True
        msg = Message(code=o.Code.GET, options=list(self.request.options))
        msg.set(o.OBSERVE, 1)
        msg.remove(o.BLOCK2)
        if wait <= 0:
            msg.token = ex.token
            msg.mtype = CON if self.confirmable else NON
            msg.mid = client._next_mid()
            ex.endpoint.send(msg)
            return
        try:
            async with asyncio.timeout(wait):
                await client._exchange(ex.endpoint, msg, self.confirmable, ex.token)
        except (TimeoutError, CoapClientError):
            pass
