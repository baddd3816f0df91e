"""Observe (RFC 7641), server side: observer records and the notification fan-out.

A notification is rendered and encoded once per update: the options and payload (the "tail")
are the same for every observer of a resource; only the 4-byte header (type, message id) and the
token differ.  When the representation is larger than an observer's block size the first block
is sent with Block2 (the tail is then built once per block size).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from m2mhub.coap import options as o
from m2mhub.coap.message import Message, encode_tail
from m2mhub.coap.options import Code
from m2mhub.coap.resource import ObservableResource

if TYPE_CHECKING:
    from m2mhub.coap.endpoint import Endpoint, _Outgoing

log = logging.getLogger("m2mhub.coap")

SEQ_MASK = 0xFFFFFF


class Observer:
    """One observation: a (peer, token) watching a resource (and subpath) through an endpoint."""

    __slots__ = (
        "con_count",
        "endpoint",
        "inflight",
        "last_con",
        "non_mid",
        "peer",
        "request",
        "resource",
        "subpath",
        "szx",
        "token",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        resource: ObservableResource,
        request: Message,
        subpath: tuple[str, ...],
        szx: int,
        now: float,
    ) -> None:
        self.endpoint = endpoint
        self.resource = resource
        self.request = request
        self.peer: Any = request.remote
        self.token = request.token
        self.subpath = subpath
        self.szx = szx
        self.con_count = 0
        self.last_con = now
        self.inflight: _Outgoing | None = None
        self.non_mid: int | None = None

    def describe(self) -> str:
        """``CoAP observer 127.0.0.1:5683 (token 6da4) of /alarm`` for log lines."""
        path = "/" + "/".join(self.request.uri_path())
        return f"CoAP observer {format_peer(self.peer)} (token {self.token.hex()}) of {path}"

    def __repr__(self) -> str:
        path = "/" + "/".join(self.request.uri_path())
        return f"<Observer {self.peer} token={self.token.hex()} {path}>"


def format_peer(peer: Any) -> str:
    """``127.0.0.1:5683``, ``[::1]:5683``."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer)


def add_observer(observer: Observer) -> Observer | None:
    """Register an observation, or refresh the one with the same peer and token.

    Returns the observer now in the table: ``observer`` itself for a new entry, the existing
    one (updated with the new request) for a re-registration, ``None`` when the endpoint's
    limit is reached.
    """
    resource = observer.resource
    if "_observations" not in resource.__dict__:  # a subclass that skipped __init__
        ObservableResource.__init__(resource)
    table = resource._observations.get(observer.subpath)
    if table is None:
        table = resource._observations[observer.subpath] = {}
    key = (observer.peer, observer.token)
    old = table.get(key)
    if old is not None:
        if old.endpoint is observer.endpoint:
            # same observation (RFC 7641 4.1): keep its state, counters and message ids
            old.request = observer.request
            old.szx = observer.szx
            return old
        old.endpoint._forget_observer(old)
        old.endpoint._uncount_observer()
    if not observer.endpoint._count_observer():
        if not table:
            del resource._observations[observer.subpath]
        return None
    table[key] = observer
    if old is None:
        resource.observation_changed(observer.subpath, len(table))
    return observer


def remove_observer(observer: Observer, reason: str, level: int = logging.DEBUG) -> None:
    """End an observation (RST, Observe=1, failed CON notification, error notification)."""
    resource = observer.resource
    observations = resource.__dict__.get("_observations")
    table = observations.get(observer.subpath) if observations else None
    if table is None:
        return
    key = (observer.peer, observer.token)
    if table.get(key) is not observer:
        return
    del table[key]
    if not table:
        del resource._observations[observer.subpath]
    observer.endpoint._forget_observer(observer)
    observer.endpoint._uncount_observer()
    if log.isEnabledFor(level):
        log.log(level, "%s removed: %s.", observer.describe(), reason)
    resource.observation_changed(observer.subpath, len(table))


def remove_by_token(
    resource: ObservableResource, subpath: tuple[str, ...], peer: Any, token: bytes
) -> None:
    observations = resource.__dict__.get("_observations")
    table = observations.get(subpath) if observations else None
    if table:
        ob = table.get((peer, token))
        if ob is not None:
            remove_observer(ob, "deregistered")


def notify(
    resource: ObservableResource,
    response: Message | None,
    subpath: tuple[str, ...],
    confirmable: bool | None,
) -> None:
    """Send one notification to every observer of ``resource``/``subpath``."""
    observations = resource.__dict__.get("_observations")
    table = observations.get(subpath) if observations else None
    if not table:
        return
    if response is None:
        first = next(iter(table.values()))
        render = getattr(resource, "render_get", None)
        if render is None:
            return
        rendered = first.endpoint._render_now(
            render, first.request, lambda r: notify(resource, r, subpath, confirmable)
        )
        if rendered is None:  # suspended: notify() runs again when the coroutine finishes
            return
        response = rendered
    code = response.code or Code.CONTENT
    observers = list(table.values())
    if not 64 <= code < 96:
        # An error ends the observations (RFC 7641 section 3.2): send it without Observe.
        tail = encode_tail(response.options, response.payload)
        for ob in observers:
            ob.endpoint._send_notification(ob, code, tail, bool(confirmable))
            remove_observer(ob, f"error notification {code}")
        _wake(observers)
        return
    resource._observe_seq = seq = (resource._observe_seq + 1) & SEQ_MASK
    opts = [p for p in response.options if p[0] != o.OBSERVE]
    opts.append((o.OBSERVE, seq))
    payload = response.payload
    plen = len(payload)
    full: bytes | None = None
    by_szx: dict[int, bytes] = {}
    for ob in observers:
        szx = ob.szx
        if plen <= 16 << szx:
            if full is None:
                full = encode_tail(opts, payload)
            tail = full
        else:
            t = by_szx.get(szx)
            if t is None:
                size = 16 << szx
                bopts = [
                    *opts,
                    (o.BLOCK2, o.block_value(0, True, szx)),
                    (o.SIZE2, plen),
                ]
                t = by_szx[szx] = encode_tail(bopts, payload[:size])
            tail = t
        ob.endpoint._send_notification(ob, code, tail, confirmable)
    _wake(observers)


def _wake(observers: list[Observer]) -> None:
    seen: list[Endpoint] = []
    for ob in observers:
        ep = ob.endpoint
        if ep not in seen:
            seen.append(ep)
            ep._wakeup()
