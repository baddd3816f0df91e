"""The resource API: what a user (or the hub) writes to serve CoAP requests.

Shaped like aiocoap's so that the lab's programs port in minutes::

    class Alarm(ObservableResource):
        rt = "alarm"
        def __init__(self) -> None:
            super().__init__()
            self.state = b"OFF"
        async def render_get(self, request: Message) -> Message:
            return Message(payload=self.state, content_format=0)
        async def render_put(self, request: Message) -> Message:
            self.state = request.payload
            self.updated_state()          # notifies every observer now
            return Message(code=Code.CHANGED)

    site = Site()
    site.add_resource(("alarm",), Alarm())

``render_*`` may be plain methods or coroutines; a coroutine that never suspends is run to its end
without touching the event loop.  A missing ``render_<method>`` answers 4.05, unless the resource
defines ``render(request)``, which then gets every method (``request.code`` says which).  Raise
:class:`CoapError` (or a subclass such as :class:`NotFound`) to answer with an error code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from m2mhub.coap.message import Message
from m2mhub.coap.options import Code, ContentFormat

if TYPE_CHECKING:
    from m2mhub.coap.observe import Observer

RenderResult = Message | Awaitable[Message]
Render = Callable[[Message], RenderResult]


class CoapError(Exception):
    """Raise from a render method to answer with ``code`` (``message`` becomes the payload)."""

    code: ClassVar[int] = Code.INTERNAL_SERVER_ERROR

    def __init__(self, message: str = "", code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]

    def to_message(self) -> Message:
        return Message(code=self.code, payload=self.message.encode("utf-8"))


class BadRequest(CoapError):
    code = Code.BAD_REQUEST


class Unauthorized(CoapError):
    code = Code.UNAUTHORIZED


class BadOption(CoapError):
    code = Code.BAD_OPTION


class Forbidden(CoapError):
    code = Code.FORBIDDEN


class NotFound(CoapError):
    code = Code.NOT_FOUND


class MethodNotAllowed(CoapError):
    code = Code.METHOD_NOT_ALLOWED


class NotAcceptable(CoapError):
    code = Code.NOT_ACCEPTABLE


class PreconditionFailed(CoapError):
    code = Code.PRECONDITION_FAILED


class RequestEntityTooLarge(CoapError):
    code = Code.REQUEST_ENTITY_TOO_LARGE


class UnsupportedContentFormat(CoapError):
    code = Code.UNSUPPORTED_CONTENT_FORMAT


class InternalServerError(CoapError):
    code = Code.INTERNAL_SERVER_ERROR


class ServiceUnavailable(CoapError):
    code = Code.SERVICE_UNAVAILABLE


class Resource:
    """Base class of a CoAP resource.

    Class (or instance) attributes describe it in ``/.well-known/core``: ``rt``, ``if_``, ``ct``,
    ``title``, ``sz``; ``obs`` is set by :class:`ObservableResource`.  ``hidden = True`` keeps it
    out of the listing.  ``accepted_formats`` (a set of Content-Format numbers, or ``None`` for
    any) makes a request body of another format answer 4.15.  ``etag`` (bytes or ``None``) is the
    current representation's entity tag, used for If-Match / If-None-Match; leave it ``None`` if
    the resource does not track one (If-None-Match then always succeeds, If-Match on a tag
    fails).
    """

    rt: str | None = None
    if_: str | None = None
    ct: int | None = None
    title: str | None = None
    sz: int | None = None
    obs: bool = False
    hidden: bool = False
    accepted_formats: frozenset[int] | None = None
    etag: bytes | None = None

    def link_attributes(self) -> dict[str, str | int | bool]:
        """Attributes listed for this resource in link-format (override to add more)."""
        attrs: dict[str, str | int | bool] = {}
        if self.rt is not None:
            attrs["rt"] = self.rt
        if self.if_ is not None:
            attrs["if"] = self.if_
        if self.ct is not None:
            attrs["ct"] = self.ct
        if self.sz is not None:
            attrs["sz"] = self.sz
        if self.title is not None:
            attrs["title"] = self.title
        if self.obs:
            attrs["obs"] = True
        return attrs


class PrefixResource(Resource):
    """A resource that serves every path below the one it is added at.

    The segments below its own path arrive in ``request.remaining_path`` (a tuple of str).
    ``link_paths()`` may list concrete sub-resources for ``/.well-known/core``.
    """

    def link_paths(self) -> Sequence[tuple[str, ...]]:
        """Sub-paths (relative) to list in link-format; default: the prefix itself only."""
        return ((),)


class ObservableResource(Resource):
    """A resource that GET+Observe clients can watch (RFC 7641).

    Call :meth:`updated_state` whenever the state changes: every observer gets a notification
    right away.  The representation is rendered and encoded once per update; only token and
    message id differ between observers.  ``con_every`` and ``con_interval`` say how often a
    notification is sent confirmable anyway, so that observers that went away are noticed.
    """

    obs = True
    con_every: int = 20
    con_interval: float = 60.0

    def __init__(self) -> None:
        # subpath -> {(peer, token): Observer}; the engine adds and removes entries
        self._observations: dict[tuple[str, ...], dict[tuple[Any, bytes], Observer]] = {}
        self._observe_seq = 0

    def updated_state(
        self,
        response: Message | None = None,
        subpath: tuple[str, ...] = (),
        confirmable: bool | None = None,
    ) -> None:
        """Notify every observer of ``subpath`` (``()`` for a plain resource).

        With ``response=None`` the resource's ``render_get`` is called once (with the first
        observer's registering request) to produce the representation.  ``confirmable=True``
        sends every notification as CON, ``False`` as NON, ``None`` follows ``con_every`` /
        ``con_interval``.
        """
        from m2mhub.coap.observe import notify

        notify(self, response, subpath, confirmable)

    def observer_count(self, subpath: tuple[str, ...] | None = None) -> int:
        """Observers of ``subpath``, or of every subpath when ``None``."""
        observations = self.__dict__.get("_observations") or {}
        if subpath is None:
            return sum(len(d) for d in observations.values())
        return len(observations.get(subpath, ()))

    def observed_paths(self) -> list[tuple[str, ...]]:
        return list(self.__dict__.get("_observations") or ())

    def observation_changed(self, subpath: tuple[str, ...], count: int) -> None:
        """Hook: the number of observers of ``subpath`` is now ``count`` (override as needed)."""


class ObservablePrefixResource(ObservableResource, PrefixResource):
    """A prefix resource whose sub-paths are observable one by one (e.g. ``/ps/{topic...}``)."""


WELL_KNOWN_CORE = (".well-known", "core")


class Site:
    """Maps Uri-Paths to resources and serves ``/.well-known/core``."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, ...], Resource] = {}
        self._prefix: dict[tuple[str, ...], PrefixResource] = {}
        self._longest_prefix = 0
        self._prefix_cache: dict[tuple[str, ...], tuple[Resource, tuple[str, ...]]] = {}

    def add_resource(self, path: Sequence[str], resource: Resource) -> None:
        """Serve ``resource`` at ``path`` (a sequence of segments; ``()`` is the root)."""
        key = tuple(path)
        self._prefix_cache.clear()
        if isinstance(resource, PrefixResource):
            self._prefix[key] = resource
            self._longest_prefix = max(self._longest_prefix, len(key))
        else:
            self._exact[key] = resource

    def remove_resource(self, path: Sequence[str]) -> None:
        key = tuple(path)
        self._prefix_cache.clear()
        self._exact.pop(key, None)
        self._prefix.pop(key, None)

    def lookup(self, path: tuple[str, ...]) -> tuple[Resource, tuple[str, ...]] | None:
        """The resource for ``path`` and the segments below it (empty unless a prefix)."""
        r = self._exact.get(path)
        if r is not None:
            return r, ()
        if self._prefix:
            hit = self._prefix_cache.get(path)
            if hit is not None:
                return hit
            for n in range(min(len(path), self._longest_prefix), -1, -1):
                p = self._prefix.get(path[:n])
                if p is not None:
                    if len(self._prefix_cache) >= 4096:
                        self._prefix_cache.clear()
                    found = self._prefix_cache[path] = (p, path[n:])
                    return found
        return None

    def resources(self) -> list[tuple[tuple[str, ...], Resource]]:
        out: list[tuple[tuple[str, ...], Resource]] = list(self._exact.items())
        out.extend(self._prefix.items())
        return out

    def link_format(self, query: Sequence[str] = ()) -> str:
        """``/.well-known/core`` (RFC 6690), filtered by ``query`` (``rt=temp*`` etc.)."""
        from m2mhub.coap.linkformat import link_format

        return link_format(self, query)

    def well_known_core(self, request: Message) -> Message:
        return Message(
            code=Code.CONTENT,
            payload=self.link_format(request.uri_query()).encode("utf-8"),
            content_format=ContentFormat.LINK_FORMAT,
        )
