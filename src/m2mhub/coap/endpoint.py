"""The CoAP endpoint: message layer, request dispatch, block-wise, and a small client side.

Sans-IO: the caller feeds datagrams in with :meth:`Endpoint.datagram_received`, takes
``(bytes, peer)`` pairs out of :attr:`Endpoint.outbox`, calls :meth:`Endpoint.handle_timer`
at :meth:`Endpoint.next_deadline`, and runs the awaitables left in :attr:`Endpoint.deferred`
(render coroutines that really suspended).  Time comes from the ``clock`` callable the caller
passes in (the shell passes the event loop's clock, tests a fake one); nothing here reads a clock,
sleeps or touches a socket.

Memory stays bounded: duplicate detection keeps two generations of ``(peer, mid) -> reply``
dicts, each rotated out after ``exchange_lifetime`` or when it reaches half of
``dedup_capacity`` (so under very heavy load the dedup window shrinks instead of memory
growing); block-wise uploads and observers have caps too, and each observer keeps at most one
CON notification in flight and one NON notification's message id.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Final

from m2mhub.coap import options as o
from m2mhub.coap.message import (
    ACK,
    BAD_OPTION,
    CON,
    NON,
    RESET,
    RST,
    CoapDecodeError,
    Message,
    decode,
    describe,
    encode,
    encode_tail,
)
from m2mhub.coap.observe import (
    Observer,
    add_observer,
    format_peer,
    remove_by_token,
    remove_observer,
)
from m2mhub.coap.options import Code, code_name
from m2mhub.coap.resource import (
    WELL_KNOWN_CORE,
    CoapError,
    ObservableResource,
    Resource,
    Site,
)

log = logging.getLogger("m2mhub.coap")


@dataclass
class CoapConfig:
    """Transmission parameters (RFC 7252 section 4.8) and the engine's limits."""

    ack_timeout: float = 2.0
    ack_random_factor: float = 1.5
    max_retransmit: int = 4
    exchange_lifetime: float = 247.0
    #: entries kept for duplicate detection, over both generations
    dedup_capacity: int = 65536
    #: a handler still running after this long gets an empty ACK (separate response follows)
    empty_ack_delay: float = 0.1
    #: preferred block size exponent (6 = 1024 bytes); clients may ask for smaller
    block_szx: int = 6
    #: largest request body accepted (assembled Block1 uploads included): 4.13 above
    max_body_size: int = 1 << 20
    max_block1_transfers: int = 1024
    max_observers: int = 200_000


_METHODS: Final[dict[int, str]] = {
    1: "render_get",
    2: "render_post",
    3: "render_put",
    4: "render_delete",
    5: "render_fetch",
    6: "render_patch",
    7: "render_ipatch",
}
_DEFAULT_CODE: Final[dict[int, int]] = {
    1: Code.CONTENT,
    2: Code.CHANGED,
    3: Code.CHANGED,
    4: Code.DELETED,
    5: Code.CONTENT,
    6: Code.CHANGED,
    7: Code.CHANGED,
}
_BODY_METHODS: Final = frozenset({2, 3, 5, 6, 7})
_MISSING: Final[Any] = object()


class _WellKnownCore(Resource):
    hidden = True

    def __init__(self, site: Site) -> None:
        self.site = site

    def render_get(self, request: Message) -> Message:
        return self.site.well_known_core(request)


class _Outgoing:
    """A CON message we sent and retransmit until it is acknowledged."""

    __slots__ = (
        "data",
        "deadline",
        "done",
        "exchange",
        "mid",
        "observer",
        "peer",
        "retries",
        "timeout",
    )

    def __init__(self, peer: Any, mid: int, data: bytes, timeout: float, now: float) -> None:
        self.peer = peer
        self.mid = mid
        self.data = data
        self.timeout = timeout
        self.deadline = now + timeout
        self.retries = 0
        self.done = False
        self.observer: Observer | None = None
        self.exchange: ClientExchange | None = None


class _Pending:
    """A request whose handler suspended: empty ACK at ``deadline`` if still running."""

    __slots__ = ("acked", "deadline", "done", "extra", "key", "request", "resource")

    def __init__(
        self, request: Message, key: tuple[Any, int], deadline: float, resource: Resource
    ) -> None:
        self.request = request
        self.key = key
        self.deadline = deadline
        self.resource = resource
        self.acked = False
        self.done = False
        self.extra: _RequestContext | None = None


class _Block1:
    __slots__ = ("data", "since", "szx")

    def __init__(self, szx: int, now: float) -> None:
        self.data = bytearray()
        self.szx = szx
        self.since = now


class _RequestContext:
    """Request options the response step needs (collected in one pass over the options)."""

    __slots__ = ("accept", "block1", "block2", "etags", "observe", "size2", "subpath")

    def __init__(self) -> None:
        self.observe: int | None = None
        self.block1: int | None = None
        self.block2: int | None = None
        self.accept: int | None = None
        self.etags: list[bytes] | None = None
        self.size2 = False
        self.subpath: tuple[str, ...] = ()


class ClientExchange:
    """A request sent by :meth:`Endpoint.request`; responses go to its callback.

    The callback gets ``(response, None)`` for each response (several for an observation) and
    ``(None, reason)`` once if the exchange fails (``"timeout"`` after MAX_RETRANSMIT, ``"reset"``
    when the peer answered RST).
    """

    __slots__ = (
        "callback",
        "deadline",
        "done",
        "endpoint",
        "last_seq",
        "observe",
        "peer",
        "request",
        "token",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        request: Message,
        peer: Any,
        callback: Callable[[Message | None, str | None], None],
    ) -> None:
        self.endpoint = endpoint
        self.request = request
        self.peer = peer
        self.token = request.token
        self.callback = callback
        self.observe = request.observe == 0
        self.last_seq: int | None = None
        self.done = False
        self.deadline = 0.0

    def cancel(self) -> None:
        """Forget the exchange: a later notification is answered with RST (deregistration)."""
        self.done = True
        self.endpoint._exchanges.pop(self.token, None)


class _Resume:
    """Awaitable that continues an awaitable iterator which already yielded ``first``."""

    __slots__ = ("first", "it")

    def __init__(self, it: Generator[Any, Any, Any], first: Any) -> None:
        self.it = it
        self.first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        it = self.it
        pending = self.first
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # cancellation and errors go into the coroutine
                try:
                    pending = it.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                pending = it.send(sent)
            except StopIteration as stop:
                return stop.value


DeferredCallback = Callable[[Any, BaseException | None], None]


class Endpoint:
    """One CoAP endpoint (one UDP socket): a server for ``site`` and a client at once."""

    def __init__(
        self,
        site: Site | None = None,
        *,
        clock: Callable[[], float],
        rng: random.Random | None = None,
        config: CoapConfig | None = None,
    ) -> None:
        self.site = site
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.config = config if config is not None else CoapConfig()
        #: datagrams to send: (data, peer); the shell empties it
        self.outbox: list[tuple[bytes, Any]] = []
        #: awaitables to run (suspended render coroutines) with their completion callbacks
        self.deferred: list[tuple[Awaitable[Any], DeferredCallback]] = []
        #: called when output appears outside datagram_received/handle_timer (notifications)
        self.on_wakeup: Callable[[], None] | None = None
        self._wellknown = _WellKnownCore(site) if site is not None else None
        self._mid = self.rng.randrange(0x10000)
        self._dd_cur: dict[tuple[Any, int], bytes | None] = {}
        self._dd_old: dict[tuple[Any, int], bytes | None] = {}
        self._dd_since = clock()
        self._dd_half = max(1, self.config.dedup_capacity // 2)
        self._outstanding: dict[tuple[Any, int], _Outgoing] = {}
        self._timers: list[tuple[float, int, _Outgoing | _Pending | ClientExchange]] = []
        self._timer_seq = 0
        # (peer, mid) of each observer's latest NON notification, so that an RST to it ends
        # the observation (one entry per observer keeps memory per observer small)
        self._non_sent: dict[tuple[Any, int], Observer] = {}
        self._block1: dict[tuple[Any, tuple[str, ...]], _Block1] = {}
        self._exchanges: dict[bytes, ClientExchange] = {}
        self._observer_count = 0
        self._observers: set[Observer] = set()
        # per-peer message ids for notifications ([next mid, observers of that peer]): a busy
        # fan-out would otherwise cycle the endpoint-wide counter and repeat a peer's message
        # ids within EXCHANGE_LIFETIME
        self._peer_mid: dict[Any, list[int]] = {}
        self.stats: dict[str, int] = {
            "requests": 0,
            "duplicates": 0,
            "bad": 0,
            "retransmissions": 0,
        }

    # --- feeding in -----------------------------------------------------------------------------

    def datagram_received(self, data: bytes, peer: Any) -> None:
        """Process one datagram from ``peer``; replies land in :attr:`outbox`."""
        try:
            msg = decode(data, peer)
        except CoapDecodeError as exc:
            self._undecodable(exc, peer)
            return
        code = msg.code
        if code == 0:
            self._empty(msg, peer)
        elif code < 32:
            if msg.mtype == CON or msg.mtype == NON:
                self._request(msg, peer)
            else:
                self.stats["bad"] += 1
                log.info("CoAP %s: %s carrying a request, ignored", _p(peer), _t(msg.mtype))
        else:
            self._response(msg, peer)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must run next (``None``: no timer pending)."""
        timers = self._timers
        while timers and timers[0][2].done:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def handle_timer(self) -> None:
        """Retransmit CON messages, give up on dead ones, send empty ACKs for slow handlers."""
        now = self.clock()
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, item = heapq.heappop(timers)
            if item.done:
                continue
            if isinstance(item, _Outgoing):
                self._retransmit(item, now)
            elif isinstance(item, _Pending):
                self._empty_ack_due(item)
            else:  # a request that never got its (separate or NON) response
                self._fail_exchange(item, "timeout")

    def close(self) -> None:
        """Drop every observation and pending exchange held by this endpoint."""
        for ob in list(self._observers):
            remove_observer(ob, "endpoint closed")
        for ex in list(self._exchanges.values()):
            ex.cancel()
        self._timers.clear()
        self._outstanding.clear()

    # --- client side ----------------------------------------------------------------------------

    def request(
        self,
        msg: Message,
        peer: Any,
        callback: Callable[[Message | None, str | None], None],
    ) -> ClientExchange:
        """Send a request (CON unless ``msg.mtype`` is NON) and route its responses.

        A token is chosen if ``msg.token`` is empty.  With Observe=0 the exchange stays open
        for notifications until :meth:`ClientExchange.cancel`; any other request fails with
        ``"timeout"`` when no response came within ``exchange_lifetime``.  Block-wise transfers
        are left to the caller (one exchange per block).
        """
        if not msg.token:
            while True:
                token = self.rng.getrandbits(64).to_bytes(8, "big")
                if token not in self._exchanges:
                    break
            msg.token = token
        if msg.mtype is None:
            msg.mtype = CON
        msg.mid = self._next_mid()
        msg.remote = peer
        ex = ClientExchange(self, msg, peer, callback)
        self._exchanges[msg.token] = ex
        data = encode(msg)
        self.outbox.append((data, peer))
        if msg.mtype == CON:
            out = self._track(peer, msg.mid, data)
            out.exchange = ex
        if not ex.observe:
            # NON requests and separate responses have no retransmission to give up on
            ex.deadline = self.clock() + self.config.exchange_lifetime
            self._push_timer(ex.deadline, ex)
        return ex

    def send_message(self, msg: Message, peer: Any) -> None:
        """Send a message as is (mid filled in if missing); CON ones are retransmitted."""
        if msg.mid is None:
            msg.mid = self._next_mid()
        if msg.mtype is None:
            msg.mtype = NON
        data = encode(msg)
        self.outbox.append((data, peer))
        if msg.mtype == CON:
            self._track(peer, msg.mid, data)

    def ping(self, peer: Any) -> int:
        """Send a CoAP ping (empty CON); the peer answers RST. Returns the message id."""
        mid = self._next_mid()
        self.outbox.append((bytes((0x40, 0, mid >> 8, mid & 0xFF)), peer))
        return mid

    # --- internals: message layer ---------------------------------------------------------------

    def _next_mid(self) -> int:
        self._mid = mid = (self._mid + 1) & 0xFFFF
        return mid

    def _wakeup(self) -> None:
        if self.on_wakeup is not None:
            self.on_wakeup()

    def _push_timer(self, deadline: float, item: _Outgoing | _Pending | ClientExchange) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (deadline, self._timer_seq, item))

    def _track(self, peer: Any, mid: int, data: bytes) -> _Outgoing:
        cfg = self.config
        timeout = cfg.ack_timeout * (1.0 + (cfg.ack_random_factor - 1.0) * self.rng.random())
        out = _Outgoing(peer, mid, data, timeout, self.clock())
        self._outstanding[(peer, mid)] = out
        self._push_timer(out.deadline, out)
        return out

    def _retransmit(self, out: _Outgoing, now: float) -> None:
        if out.retries < self.config.max_retransmit:
            out.retries += 1
            out.timeout *= 2
            out.deadline = now + out.timeout
            self.outbox.append((out.data, out.peer))
            self.stats["retransmissions"] += 1
            self._push_timer(out.deadline, out)
            return
        out.done = True
        self._outstanding.pop((out.peer, out.mid), None)
        if out.observer is not None:
            remove_observer(out.observer, "notification not acknowledged", logging.INFO)
        if out.exchange is not None:
            self._fail_exchange(out.exchange, "timeout")

    def _undecodable(self, exc: CoapDecodeError, peer: Any) -> None:
        self.stats["bad"] += 1
        action = exc.action
        mid = exc.mid
        if action == BAD_OPTION and 1 <= exc.code < 32 and exc.mid is not None:
            assert mid is not None
            reply = Message(
                ACK if exc.mtype == CON else NON,
                Code.BAD_OPTION,
                mid if exc.mtype == CON else self._next_mid(),
                exc.token,
                payload=exc.reason.encode("utf-8"),
            )
            data = encode(reply)
            self.outbox.append((data, peer))
            if exc.mtype == CON:
                self._dd_cur[(peer, mid)] = data
            log.info("CoAP %s: %s -> 4.02 Bad Option", _p(peer), exc.reason)
        elif (action in (RESET, BAD_OPTION)) and exc.mtype == CON and mid is not None:
            self.outbox.append((bytes((0x70, 0, mid >> 8, mid & 0xFF)), peer))
            log.info("CoAP %s: %s -> RST", _p(peer), exc.reason)
        else:
            log.info("CoAP %s: %s -> ignored", _p(peer), exc.reason)

    def _empty(self, msg: Message, peer: Any) -> None:
        mt = msg.mtype
        mid = msg.mid
        assert mid is not None
        if mt == CON:  # CoAP ping
            self.outbox.append((bytes((0x70, 0, mid >> 8, mid & 0xFF)), peer))
        elif mt == ACK:
            out = self._outstanding.pop((peer, mid), None)
            if out is not None:
                out.done = True
                if out.observer is not None:
                    out.observer.inflight = None
        elif mt == RST:
            self._reset(peer, mid)

    def _reset(self, peer: Any, mid: int) -> None:
        key = (peer, mid)
        out = self._outstanding.pop(key, None)
        if out is not None:
            out.done = True
            if out.observer is not None:
                remove_observer(out.observer, "RST")
            if out.exchange is not None:
                self._fail_exchange(out.exchange, "reset")
            return
        ob = self._non_sent.pop(key, None)
        if ob is not None:
            remove_observer(ob, "RST")

    def _fail_exchange(self, ex: ClientExchange, reason: str) -> None:
        if ex.done:
            return
        ex.done = True
        self._exchanges.pop(ex.token, None)
        ex.callback(None, reason)

    def _response(self, msg: Message, peer: Any) -> None:
        mt = msg.mtype
        mid = msg.mid
        assert mid is not None
        if mt == ACK:
            out = self._outstanding.pop((peer, mid), None)
            if out is not None:
                out.done = True
        elif mt in (CON, NON):
            key = (peer, mid)
            if key in self._dd_cur or key in self._dd_old:
                cached = self._dd_cur.get(key) or self._dd_old.get(key)
                if cached is not None and mt == CON:
                    self.outbox.append((cached, peer))
                return
            self._dedup_rotate()
            ex = self._exchanges.get(msg.token)
            if ex is None or ex.peer != peer:
                # unknown response or notification: reject it (ends a stale observation)
                rst = bytes((0x70, 0, mid >> 8, mid & 0xFF))
                self.outbox.append((rst, peer))
                self._dd_cur[key] = rst if mt == CON else None
                return
            if mt == CON:
                ack = bytes((0x60, 0, mid >> 8, mid & 0xFF))
                self.outbox.append((ack, peer))
                self._dd_cur[key] = ack
            else:
                self._dd_cur[key] = None
        ex = self._exchanges.get(msg.token)
        if ex is None or ex.done:
            return
        seq = msg.observe
        if ex.observe and seq is not None and 64 <= msg.code < 96:
            last = ex.last_seq
            if last is not None and not _fresher(seq, last):
                return
            ex.last_seq = seq
        else:
            ex.done = True
            self._exchanges.pop(ex.token, None)
        ex.callback(msg, None)

    # --- internals: requests --------------------------------------------------------------------

    def _dedup_rotate(self) -> None:
        """Start a new generation when the current one is full or as old as EXCHANGE_LIFETIME."""
        cur = self._dd_cur
        if not cur:
            return
        now = self.clock()
        if len(cur) >= self._dd_half or now - self._dd_since >= self.config.exchange_lifetime:
            self._dd_old = cur
            self._dd_cur = {}
            self._dd_since = now

    def _request(self, msg: Message, peer: Any) -> None:
        key: tuple[Any, int] = (peer, msg.mid)  # type: ignore[assignment]
        cached: Any = self._dd_cur.get(key, _MISSING)
        if cached is _MISSING:
            cached = self._dd_old.get(key, _MISSING)
        if cached is not _MISSING:
            self.stats["duplicates"] += 1
            if cached is not None and msg.mtype == CON:
                self.outbox.append((cached, peer))
            return
        self._dedup_rotate()
        self._dd_cur[key] = None
        self.stats["requests"] += 1
        ctx = _RequestContext()
        try:
            resource, response = self._dispatch(msg, peer, ctx)
        except CoapError as exc:
            resource, response = None, exc.to_message()
        if response is None:
            return
        self._answer(msg, peer, key, response, resource, ctx, separate=False)

    def _answer(
        self,
        request: Message,
        peer: Any,
        key: tuple[Any, int],
        response: Message,
        resource: Resource | None,
        ctx: _RequestContext,
        separate: bool,
    ) -> None:
        try:
            self._reply(
                request, peer, key, self._finish(request, response, resource, ctx), separate
            )
        except Exception:  # a response we cannot encode (bad option value, code out of range)
            log.exception("CoAP %s: cannot send the response %r", _p(peer), response)
            self._reply(request, peer, key, Message(code=Code.INTERNAL_SERVER_ERROR), separate)

    def _reply(
        self, request: Message, peer: Any, key: tuple[Any, int], response: Message, separate: bool
    ) -> None:
        token = request.token
        if request.mtype == CON and not separate:
            mtype = ACK
            mid = request.mid
            assert mid is not None
        else:
            mtype = CON if separate else NON
            mid = self._next_mid()
        code = response.code
        if not 0 <= code <= 255:
            raise ValueError(f"response code {code} out of range")
        head = bytes((0x40 | (mtype << 4) | len(token), code, mid >> 8, mid & 0xFF))
        if response.options or response.payload:
            data = head + token + encode_tail(response.options, response.payload)
        else:
            data = head + token
        self.outbox.append((data, peer))
        if separate:
            self._track(peer, mid, data)
        elif key in self._dd_cur:
            self._dd_cur[key] = data
        elif key in self._dd_old:
            self._dd_old[key] = data

    def _dispatch(
        self, msg: Message, peer: Any, ctx: _RequestContext
    ) -> tuple[Resource | None, Message | None]:
        """Find the resource, check options, run the handler. ``None`` response: deferred."""
        site = self.site
        if site is None:
            return None, Message(code=Code.NOT_FOUND)
        path: list[str] = []
        content_format = None
        if_match: list[bytes] | None = None
        if_none_match = False
        size1 = None
        for n, v in msg.options:
            if n == 11:
                path.append(v)  # type: ignore[arg-type]
            elif n < 11:
                if n == o.OBSERVE:
                    ctx.observe = v  # type: ignore[assignment]
                elif n == o.ETAG:
                    if ctx.etags is None:
                        ctx.etags = []
                    ctx.etags.append(v)  # type: ignore[arg-type]
                elif n == o.IF_MATCH:
                    if if_match is None:
                        if_match = []
                    if_match.append(v)  # type: ignore[arg-type]
                elif n == o.IF_NONE_MATCH:
                    if_none_match = True
            elif n == o.CONTENT_FORMAT:
                content_format = v
            elif n == o.BLOCK2:
                ctx.block2 = v  # type: ignore[assignment]
            elif n == o.BLOCK1:
                ctx.block1 = v  # type: ignore[assignment]
            elif n == o.ACCEPT:
                ctx.accept = v  # type: ignore[assignment]
            elif n == o.SIZE2:
                ctx.size2 = True
            elif n == o.SIZE1:
                size1 = v
            elif n == o.PROXY_URI or n == o.PROXY_SCHEME:
                return None, Message(code=Code.PROXYING_NOT_SUPPORTED)
        tpath = tuple(path)
        found = site.lookup(tpath)
        if found is None:
            if tpath == WELL_KNOWN_CORE and self._wellknown is not None:
                found = (self._wellknown, ())
            else:
                return None, Message(code=Code.NOT_FOUND)
        resource, ctx.subpath = found
        method = _METHODS.get(msg.code)
        handler = getattr(resource, method, None) if method is not None else None
        if handler is None:
            handler = getattr(resource, "render", None)  # one method for all, as in aiocoap
            if handler is None:
                return resource, Message(code=Code.METHOD_NOT_ALLOWED)
        if if_match is not None:
            etag = resource.etag
            if b"" not in if_match and (etag is None or etag not in if_match):
                return resource, Message(code=Code.PRECONDITION_FAILED)
        if if_none_match and resource.etag is not None:
            return resource, Message(code=Code.PRECONDITION_FAILED)
        max_body = self.config.max_body_size
        if isinstance(size1, int) and size1 > max_body:
            return resource, _too_large(max_body)
        if msg.payload:
            if len(msg.payload) > max_body:
                return resource, _too_large(max_body)
            accepted = resource.accepted_formats
            if (
                accepted is not None
                and content_format is not None
                and (content_format not in accepted)
            ):
                return resource, Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
        if ctx.block1 is not None and msg.code in _BODY_METHODS:
            early = self._block1_step(msg, peer, tpath, ctx.block1)
            if early is not None:
                return resource, early
        msg.remaining_path = ctx.subpath
        assert msg.mid is not None
        try:
            result = handler(msg)
            if not isinstance(result, Message):
                return resource, self._start_deferred(result, msg, (peer, msg.mid), resource, ctx)
        except CoapError as exc:
            return resource, exc.to_message()
        except Exception:
            log.exception("CoAP %s: %s handler failed", _p(peer), "/" + "/".join(tpath))
            return resource, Message(code=Code.INTERNAL_SERVER_ERROR)
        return resource, result

    def _block1_step(
        self, msg: Message, peer: Any, path: tuple[str, ...], value: int
    ) -> Message | None:
        """Collect one Block1 block; a response means "answer this now" (2.31 or an error)."""
        num, more, szx = o.block_parts(value)
        if szx == 7:
            return Message(code=Code.BAD_OPTION, payload=b"BERT not supported")
        size = 16 << szx
        key = (peer, path)
        state = self._block1.get(key)
        now = self.clock()
        if num == 0:
            uploads = self._block1
            if state is None and len(uploads) >= self.config.max_block1_transfers:
                del uploads[next(iter(uploads))]
            # uploads abandoned for longer than EXCHANGE_LIFETIME go (oldest first)
            lifetime = self.config.exchange_lifetime
            while uploads:
                first = next(iter(uploads))
                if now - uploads[first].since < lifetime:
                    break
                del uploads[first]
            state = self._block1[key] = _Block1(szx, now)
            state.data.clear()
        elif state is None or num * size != len(state.data):
            self._block1.pop(key, None)
            return Message(code=Code.REQUEST_ENTITY_INCOMPLETE)
        if more and len(msg.payload) != size:
            self._block1.pop(key, None)
            return Message(code=Code.BAD_REQUEST, payload=b"block size mismatch")
        state.data += msg.payload
        if len(state.data) > self.config.max_body_size:
            self._block1.pop(key, None)
            return _too_large(self.config.max_body_size)
        ours = min(szx, self.config.block_szx)
        if more:
            return Message(code=Code.CONTINUE, options=[(o.BLOCK1, o.block_value(num, True, ours))])
        del self._block1[key]
        msg.payload = bytes(state.data)
        return None

    def _render_now(
        self,
        render: Callable[[Message], Any],
        request: Message,
        later: Callable[[Message], None],
    ) -> Message | None:
        """Run a render call; if it suspends, hand it to the shell and call ``later``."""
        try:
            result = render(request)
            if isinstance(result, Message):
                return result
            it = result.__await__()
            try:
                first = it.send(None)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
        except CoapError as exc:
            return exc.to_message()

        def done(value: Any, exc: BaseException | None) -> None:
            if exc is not None:
                msg = exc.to_message() if isinstance(exc, CoapError) else None
                if msg is None:
                    log.error("coap: render failed: %r", exc)
                    msg = Message(code=Code.INTERNAL_SERVER_ERROR)
                later(msg)
            else:
                later(value)

        self.deferred.append((_Resume(it, first), done))
        self._wakeup()
        return None

    def _start_deferred(
        self,
        result: Any,
        msg: Message,
        key: tuple[Any, int],
        resource: Resource,
        ctx: _RequestContext,
    ) -> Message | None:
        it = result.__await__()
        try:
            first = it.send(None)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        pending = _Pending(msg, key, self.clock() + self.config.empty_ack_delay, resource)
        pending.extra = ctx
        if msg.mtype == CON:
            self._push_timer(pending.deadline, pending)

        def done(value: Any, exc: BaseException | None) -> None:
            pending.done = True
            if exc is not None:
                if isinstance(exc, CoapError):
                    response = exc.to_message()
                else:
                    log.error("CoAP %s: handler failed: %r", _p(key[0]), exc)
                    response = Message(code=Code.INTERNAL_SERVER_ERROR)
            elif isinstance(value, Message):
                response = value
            else:
                log.error("CoAP %s: handler returned %r, not a Message", _p(key[0]), value)
                response = Message(code=Code.INTERNAL_SERVER_ERROR)
            self._answer(msg, key[0], key, response, resource, ctx, separate=pending.acked)

        self.deferred.append((_Resume(it, first), done))
        return None

    def _empty_ack_due(self, pending: _Pending) -> None:
        pending.acked = True
        pending.done = True  # the timer is spent; completion is tracked by the callback
        peer, mid = pending.key
        ack = bytes((0x60, 0, mid >> 8, mid & 0xFF))
        self.outbox.append((ack, peer))
        if pending.key in self._dd_cur:
            self._dd_cur[pending.key] = ack
        elif pending.key in self._dd_old:
            self._dd_old[pending.key] = ack

    def _finish(
        self,
        request: Message,
        response: Message,
        resource: Resource | None,
        ctx: _RequestContext,
    ) -> Message:
        """Fill in the response code, Accept/ETag checks, Observe and Block2/Block1 options."""
        if not isinstance(response, Message):
            log.error("coap: handler returned %r, not a Message", response)
            response = Message(code=Code.INTERNAL_SERVER_ERROR)
        # resources may hand out the same Message again (a cached representation): never
        # change theirs
        response = response.copy()
        code = response.code
        if code == 0:
            code = response.code = _DEFAULT_CODE.get(request.code, Code.CONTENT)
        observe = ctx.observe
        observable = (
            observe is not None
            and isinstance(resource, ObservableResource)
            and (request.code == Code.GET or request.code == Code.FETCH)
        )
        if observable and (observe == 1 or not 64 <= code < 96):
            # RFC 7641 3.6/4.1: deregistration (and a failed re-registration) removes the entry
            # for that token whatever the answer is
            assert isinstance(resource, ObservableResource)
            remove_by_token(resource, ctx.subpath, request.remote, request.token)
            observable = False
        if not 64 <= code < 95:
            if code == Code.REQUEST_ENTITY_TOO_LARGE and ctx.block1 is not None:
                num, _, szx = o.block_parts(ctx.block1)
                response.set(o.BLOCK1, o.block_value(num, False, min(szx, self.config.block_szx)))
            return response
        if ctx.accept is not None and response.payload:
            cf = response.content_format
            if (0 if cf is None else cf) != ctx.accept:
                return Message(code=Code.NOT_ACCEPTABLE)
        if ctx.etags is not None and code == Code.CONTENT:
            etag = response.get(o.ETAG)
            if etag is not None and etag in ctx.etags:
                opts = [p for p in response.options if p[0] in (o.ETAG, o.MAX_AGE)]
                response = Message(code=Code.VALID, options=opts)
        if ctx.block1 is not None:
            num, _, szx = o.block_parts(ctx.block1)
            response.set(o.BLOCK1, o.block_value(num, False, min(szx, self.config.block_szx)))
        if observable and observe == 0:
            assert isinstance(resource, ObservableResource)
            szx = self.config.block_szx
            if ctx.block2 is not None:
                szx = min(szx, ctx.block2 & 7)
            ob = Observer(self, resource, request, ctx.subpath, szx, self.clock())
            current = add_observer(ob)
            if current is ob:
                self._observers.add(ob)
                entry = self._peer_mid.get(ob.peer)
                if entry is None:
                    entry = self._peer_mid[ob.peer] = [self.rng.randrange(0x10000), 0]
                entry[1] += 1
            if current is not None and not response.has(o.OBSERVE):
                response.add(o.OBSERVE, resource._observe_seq)
        payload = response.payload
        szx = self.config.block_szx
        num = 0
        if ctx.block2 is not None:
            num, _, bszx = o.block_parts(ctx.block2)
            szx = min(szx, bszx)
        size = 16 << szx
        if len(payload) > size or num > 0:
            start = num * size
            if start >= len(payload) and num > 0:
                return Message(code=Code.BAD_OPTION, payload=b"block out of range")
            more = start + size < len(payload)
            response.payload = payload[start : start + size]
            response.set(o.BLOCK2, o.block_value(num, more, szx))
            if num == 0 or ctx.size2:
                response.set(o.SIZE2, len(payload))
        elif ctx.size2:
            response.set(o.SIZE2, len(payload))
        return response

    # --- internals: observe ---------------------------------------------------------------------

    def _count_observer(self) -> bool:
        if self._observer_count >= self.config.max_observers:
            return False
        self._observer_count += 1
        return True

    def _uncount_observer(self) -> None:
        self._observer_count -= 1

    def _forget_observer(self, ob: Observer) -> None:
        if ob.non_mid is not None:
            if self._non_sent.get((ob.peer, ob.non_mid)) is ob:
                del self._non_sent[(ob.peer, ob.non_mid)]
            ob.non_mid = None
        if ob in self._observers:
            self._observers.remove(ob)
            entry = self._peer_mid.get(ob.peer)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del self._peer_mid[ob.peer]
        out = ob.inflight
        if out is not None:
            out.done = True
            self._outstanding.pop((out.peer, out.mid), None)
            ob.inflight = None

    def _send_notification(
        self, ob: Observer, code: int, tail: bytes, confirmable: bool | None
    ) -> None:
        now = self.clock()
        if confirmable is None:
            res = ob.resource
            confirmable = ob.con_count + 1 >= res.con_every or now - ob.last_con >= res.con_interval
        token = ob.token
        peer = ob.peer
        entry = self._peer_mid.get(peer)
        if entry is not None:
            entry[0] = mid = (entry[0] + 1) & 0xFFFF
        else:
            self._mid = mid = (self._mid + 1) & 0xFFFF
        if confirmable:
            data = bytes((0x40 | len(token), code, mid >> 8, mid & 0xFF)) + token + tail
            self.outbox.append((data, peer))
            ob.con_count = 0
            ob.last_con = now
            prev = ob.inflight
            out = self._track(peer, mid, data)
            if prev is not None:
                # RFC 7641 4.5.2: a newer notification replaces the one still in flight and
                # keeps its retransmission state.
                prev.done = True
                self._outstanding.pop((prev.peer, prev.mid), None)
                out.retries = prev.retries
                out.timeout = prev.timeout
            out.observer = ob
            ob.inflight = out
        else:
            data = bytes((0x50 | len(token), code, mid >> 8, mid & 0xFF)) + token + tail
            self.outbox.append((data, peer))
            ob.con_count += 1
            non = self._non_sent
            if ob.non_mid is not None:
                non.pop((peer, ob.non_mid), None)
            ob.non_mid = mid
            non[(peer, mid)] = ob


def _fresher(new: int, old: int) -> bool:
    """RFC 7641 section 3.4 ordering of 24-bit sequence numbers (time check omitted)."""
    return (old < new and new - old < 1 << 23) or (old > new and old - new > 1 << 23)


def _too_large(max_body: int) -> Message:
    return Message(code=Code.REQUEST_ENTITY_TOO_LARGE, options=[(o.SIZE1, max_body)])


_p = format_peer


def _t(mtype: int | None) -> str:
    return ("CON", "NON", "ACK", "RST")[mtype] if mtype is not None else "?"


__all__ = [
    "ClientExchange",
    "CoapConfig",
    "Endpoint",
    "code_name",
    "describe",
]
