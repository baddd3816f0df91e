"""The broker core: sessions, routing, QoS flows, wills, keepalive, retained.

Beside it in ``m2mhub.hub``: ``persistence`` (``snapshot``/``restore``), ``sys_topics``
(``$SYS`` publishing) and ``enhanced_auth`` (MQTT 5 AUTH exchanges) work on a Broker.

Sans-IO: no sockets, no asyncio, no clock reads. A shell (``m2mhub.net.mqtt_server``) calls

- ``connection_made(sink, peer, listener_port, now)`` for each accepted connection,
- ``data_received(conn, data, now)`` with whatever bytes arrived,
- ``connection_lost(conn, now)`` when the peer went away,
- ``flush()`` once per event-loop turn (the broker calls ``wakeup()`` the first time a
  connection gets output after a flush, so the shell can schedule it with ``call_soon``),
- ``tick(now)`` at ``next_deadline()``,
- ``pause_writing(conn)`` / ``resume_writing(conn, now)`` from the transport's flow control.

Outgoing bytes accumulate in each connection's ``out`` buffer and are written to its sink
once per flush. Every :class:`MQTTError` raised while handling a connection's input goes to
:meth:`Broker._fail`, which answers (CONNACK refusal, DISCONNECT with reason code for 5.0, or
a plain close for 3.x) and logs one line; no other client is affected.

Flow control: a connection's output per turn is capped and a paused transport makes its
PUBLISHes wait in the session queue (bounded by ``max_queued_messages``/``_bytes``). When a
connected receiver's QoS 1/2 backlog exceeds one in-flight window, the pure publishers feeding
it are held back through the sink's ``pause_reading``/``resume_reading`` -- mid-read if need
be, the rest of their bytes waiting in the reader -- for at most ``THROTTLE_LIMIT`` seconds.

Internal subscribers (the CoAP face) share the subscription trie with MQTT sessions; see
``docs/hub-api.md``.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import math
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from m2mhub.auth.enhanced import ServerAuthMethod
from m2mhub.hub import persistence
from m2mhub.hub.aliases import OutboundAliases
from m2mhub.hub.auth import READ, SUBSCRIBE, WRITE, Authenticator, Authorizer
from m2mhub.hub.connection import CLOSED, CONNECTED, NEW, Connection, Sink
from m2mhub.hub.enhanced_auth import (
    AUTHENTICATION_METHOD,
    on_auth,
    start_auth,
)
from m2mhub.hub.log import BrokerLog
from m2mhub.hub.message import Message
from m2mhub.hub.session import AWAIT_ACK, AWAIT_COMP, Outgoing, Session
from m2mhub.hub.settings import BrokerSettings
from m2mhub.hub.shared import GROUP_OPTIONS, SharedGroup
from m2mhub.hub.snapshot import (
    Snapshot,
)
from m2mhub.hub.stats import Stats
from m2mhub.hub.sys_topics import publish_sys
from m2mhub.hub.topic_tree import Match, TopicTree
from m2mhub.mqtt.codec import (
    PublishProperties,
    PublishSplice,
    encode,
    encode_publish_parts,
)
from m2mhub.mqtt.errors import (
    MalformedPacket,
    MQTTError,
    PacketTooLarge,
    ProtocolError,
    TopicFilterInvalid,
    UnsupportedProtocolVersion,
)
from m2mhub.mqtt.packets import (
    MQTT_3_1,
    MQTT_5,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionOptions,
    Unsuback,
    Unsubscribe,
    Will,
)
from m2mhub.mqtt.topics import (
    split_shared,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)
from m2mhub.store.retained import RetainedStore

# A 5.0 Session Expiry Interval of 0xFFFFFFFF means the session never expires.
NEVER_EXPIRES = 0xFFFFFFFF
NO_MATCHING_SUBSCRIBERS = 0x10  # MQTT 5 PUBACK reason code

# Topic aliases a 5.0 client may use towards us (mosquitto's max_topic_alias default).
TOPIC_ALIAS_MAXIMUM = 10

# mosquitto's numbering of protocol versions in its "New client connected" line.
_MOSQ_PROTOCOL = {3: 1, 4: 2, 5: 5}

# A connection whose pending output reaches this many bytes within one loop turn is treated
# like a paused transport: further PUBLISHes wait in its session queue. The shell reads each
# socket at most once per turn, so this is rarely reached; it must stay well above one turn's
# input (10 publishers x 256 KB reads), or a fast subscriber is starved (measured: 256 KB cut
# fan-in QoS 0 deliveries to a quarter of 4 MB's).
OUT_HIGH_WATER = 4 * 1024 * 1024

# Longest time one receiver's in-flight backlog may hold back the publishers feeding it; a
# receiver that exceeds it is "slow" and its queue then overflows (oldest dropped) instead.
THROTTLE_LIMIT = 1.0

# Seconds a connection may stay silent before sending CONNECT.
CONNECT_TIMEOUT = 30.0

# MQTT 5 property ids the broker reads or writes.
PROP_SESSION_EXPIRY = 0x11
PROP_ASSIGNED_CLIENT_ID = 0x12
PROP_SERVER_KEEP_ALIVE = 0x13
PROP_RECEIVE_MAXIMUM = 0x21
PROP_MAXIMUM_PACKET_SIZE = 0x27
PROP_TOPIC_ALIAS_MAXIMUM = 0x22
PROP_TOPIC_ALIAS = 0x23
PROP_RETAIN_AVAILABLE = 0x25
PROP_SUBSCRIPTION_ID = 0x0B
PROP_SUBSCRIPTION_ID_AVAILABLE = 0x29
PROP_WILL_DELAY = 0x18
PROP_MESSAGE_EXPIRY = 0x02
PROP_PAYLOAD_FORMAT = 0x01
PROP_SHARED_SUBSCRIPTION_AVAILABLE = 0x2A
PROP_REQUEST_PROBLEM_INFORMATION = 0x17
PROP_REQUEST_RESPONSE_INFORMATION = 0x19
PROP_RESPONSE_INFORMATION = 0x1A
PROP_REASON_STRING = 0x1F
PROP_MAXIMUM_QOS = 0x24

# Response Information given to a 5.0 client that asks for it: the client builds its response
# topics below this (see docs/mqtt5.md).
RESPONSE_INFORMATION_PREFIX = "response/"

# Reason codes of the DISCONNECTs the server sends on its own account (MQTT 5.0 4.13.2).
UNSPECIFIED_ERROR = 0x80
SERVER_SHUTTING_DOWN = 0x8B
KEEP_ALIVE_TIMEOUT = 0x8D
SESSION_TAKEN_OVER = 0x8E
PAYLOAD_FORMAT_INVALID = 0x99

# Authorizer answers kept per session and kind (read, write) before the cache starts afresh.
ACL_CACHE_LIMIT = 1024
# Topics whose readable subscriber list _route keeps (like the topic tree's match cache).
READABLE_CACHE_LIMIT = 4096

# The only $SYS topics a client may publish to (mosquitto: bridge state notifications).
_WRITABLE_SYS = "$SYS/broker/connection/+/state"

# Properties that belong to one hop and are not forwarded to subscribers.
_NOT_FORWARDED = (PROP_TOPIC_ALIAS, PROP_SUBSCRIPTION_ID)


class InternalSubscriber(Protocol):
    """A subscriber inside the process (e.g. a CoAP observation of a topic)."""

    def deliver(
        self, topic: str, payload: bytes, qos: int, retain: bool, properties: dict[int, Any]
    ) -> None: ...


def _failure_kind(exc: MQTTError) -> str:
    if isinstance(exc, MalformedPacket):
        return "malformed packet"
    if isinstance(exc, PacketTooLarge):
        return "oversize packet"
    return "protocol error"


def _with_ids(
    forward: dict[int, Any] | None, sub_ids: tuple[int, ...] | None
) -> dict[int, Any] | None:
    """The forwarded properties plus the receiver's Subscription Identifiers, if any."""
    if not sub_ids:
        return forward
    if type(forward) is PublishProperties:  # sent on as received, the identifiers appended
        return forward.plus(PROP_SUBSCRIPTION_ID, list(sub_ids))
    return {**(forward or {}), PROP_SUBSCRIPTION_ID: list(sub_ids)}


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _remaining_length(packet_size: int) -> int:
    """The Remaining Length of a packet of ``packet_size`` bytes (type byte and varint off)."""
    for varint_bytes, below in ((1, 128), (2, 16384), (3, 2097152)):
        if packet_size - 1 - varint_bytes < below:
            return packet_size - 1 - varint_bytes
    return packet_size - 5


def _forwardable(properties: dict[int, Any]) -> dict[int, Any]:
    """The PUBLISH properties a subscriber gets: all but this hop's, in the order received.

    A Message Expiry Interval of 0 means "does not expire" (as mosquitto reads it), so it is
    not sent on, as if absent. With nothing to leave out this is the dict itself, so that a
    decoded PUBLISH's properties are sent on as the bytes they came in (PublishProperties).
    """
    if not properties or (
        PROP_TOPIC_ALIAS not in properties
        and PROP_SUBSCRIPTION_ID not in properties
        and properties.get(PROP_MESSAGE_EXPIRY) != 0
    ):
        return properties
    return {
        k: v
        for k, v in properties.items()
        if k not in _NOT_FORWARDED and (k != PROP_MESSAGE_EXPIRY or v)
    }


class Broker:
    """The MQTT broker core. See the module docstring for how a shell drives it."""

    def __init__(
        self,
        settings: BrokerSettings,
        log: BrokerLog,
        authenticator: Authenticator | None = None,
        now: float = 0.0,
        wakeup: Callable[[], None] | None = None,
        client_id_factory: Callable[[], str] | None = None,
        auth_methods: Iterable[ServerAuthMethod] = (),
        authorizer: Authorizer | None = None,
    ) -> None:
        self.settings = settings
        self.log = log
        self.authenticator = authenticator
        # MQTT 5 enhanced authentication methods by Authentication Method name.
        self.auth_methods: dict[str, ServerAuthMethod] = {}
        for method in auth_methods:
            self.add_auth_method(method)
        # None: every client may read and write every topic (but $SYS, see _may_write).
        self.authorizer = authorizer
        # Per topic: (the tree's match list, _acl_generation, the readable part of it).
        self._readable_cache: dict[str, tuple[list[Match], int, list[Match]]] = {}
        self._acl_generation = 0  # moves on whenever a cached read answer may have changed
        self.wakeup = wakeup
        # Optional: bytes of memory in use, for $SYS/broker/heap/* (the shell supplies it;
        # the core itself reads nothing from the OS).
        self.heap_probe: Callable[[], int] | None = None
        self._heap_max = 0
        self._new_client_id = client_id_factory or _auto_client_id
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        self.clients_connected = 0  # connections past CONNECT
        self.tree = TopicTree()
        # Shared subscriptions by (group name, topic filter).
        self.shared: dict[tuple[str, str], SharedGroup] = {}
        self.retained_store = RetainedStore()
        self.stats = Stats(now)
        self._dirty: list[Connection] = []
        self._now = now
        self._sys_last: dict[str, str] = {}
        self._pending_input: list[Connection] = []
        # Sessions whose in-flight backlog currently holds back publishers (value: since when).
        self._throttling: dict[Session, float] = {}
        self._wakeup_pending = False
        self._timers: list[tuple[float, int, Connection]] = []
        self._seq = itertools.count()
        self._next_sys: float | None = now if settings.sys_interval > 0 else None
        self._next_expiry_check: float | None = None
        self._expiries: list[tuple[float, int, Session]] = []
        # 5.0 wills waiting for their Will Delay Interval: (when, seq, session, will).
        self._wills: list[tuple[float, int, Session, float, Will]] = []
        self._max_inflight = settings.max_inflight_messages or 65535
        self._max_inflight_bytes = settings.max_inflight_bytes  # 0: no byte limit
        self._queue_limit = settings.max_queued_messages
        self._queue_byte_limit = settings.max_queued_bytes
        self._size_limit = settings.message_size_limit
        self._max_qos = settings.max_qos
        self._handlers: dict[type, Callable[[Connection, Any, float], None]] = {
            Publish: self._on_publish,
            Puback: self._on_puback,
            Pubrec: self._on_pubrec,
            Pubrel: self._on_pubrel,
            Pubcomp: self._on_pubcomp,
            Subscribe: self._on_subscribe,
            Unsubscribe: self._on_unsubscribe,
            Pingreq: self._on_pingreq,
            Disconnect: self._on_disconnect,
            Auth: functools.partial(on_auth, self),
        }

    # ------------------------------------------------------------------ shell entry points

    def connection_made(self, sink: Sink, peer: str, listener_port: int, now: float) -> Connection:
        """A transport was accepted; returns the handle the shell passes back in."""
        conn = Connection(sink, peer, listener_port, now)
        # Checked from the fixed header on, before the rest of a packet is buffered.
        conn.reader.max_packet_size = self.settings.max_packet_size
        self.stats.sockets += 1
        limit = self.settings.max_connections
        if limit >= 0 and len(self.connections) >= limit:
            if self.log.notice and self.settings.connection_messages:
                self.log.write(f"Client connection from {peer} denied: max_connections exceeded.")
            conn.state = CLOSED
            sink.close()
            return conn
        if self.log.notice and self.settings.connection_messages:
            self.log.write(f"New connection from {peer} on port {listener_port}.")
        self.connections.add(conn)
        self._schedule(conn, now + CONNECT_TIMEOUT)
        return conn

    def data_received(self, conn: Connection, data: bytes, now: float) -> None:
        """Bytes arrived on ``conn``: handle every complete packet in them."""
        if conn.state == CLOSED:
            return
        conn.last_seen = now
        self._now = now
        self.stats.bytes_received += len(data)
        try:
            conn.reader.feed(data)
        except MQTTError as exc:
            self._fail(conn, exc, now)
            return
        if not conn.throttles:
            self._process(conn, now)

    def _process(self, conn: Connection, now: float) -> None:
        """Handle the complete packets buffered for ``conn`` until it is held back or closed."""
        stats = self.stats
        reader = conn.reader
        handlers = self._handlers
        try:
            while True:
                packet = reader.next_packet()
                if packet is None:
                    return
                stats.messages_received += 1
                if conn.state == CONNECTED:
                    handler = handlers.get(type(packet))
                    if handler is None:
                        name = type(packet).__name__.upper()
                        raise ProtocolError(
                            "second CONNECT" if name == "CONNECT" else f"{name} from a client"
                        )
                    handler(conn, packet, now)
                elif isinstance(packet, Connect):
                    if conn.auth is not None:
                        raise ProtocolError("second CONNECT")
                    self._on_connect(conn, packet, now)
                elif conn.auth is not None and isinstance(packet, Auth):
                    on_auth(self, conn, packet, now)
                elif conn.auth is not None and isinstance(packet, Disconnect):
                    # The client gave up during enhanced authentication.
                    if self.log.notice and self.settings.connection_messages:
                        self.log.write(f"Client {conn.name} disconnected.")
                    self._close(conn, now, publish_will=False)
                else:
                    raise ProtocolError(f"{type(packet).__name__.upper()} before CONNECT")
                if conn.state == CLOSED or conn.throttles:
                    # Held back: the rest stays in the reader until _release lets it go on.
                    return
        except MQTTError as exc:
            self._fail(conn, exc, now)
        except Exception as exc:  # a bug must cost one connection, never the broker
            if self.log.error:
                self.log.write(
                    f"Client {conn.name} disconnected due to internal error "
                    f"({type(exc).__name__}: {exc})."
                )
            with contextlib.suppress(Exception):
                self._disconnect(conn, UNSPECIFIED_ERROR, "internal error")
            self._close(conn, now, publish_will=True)

    def connection_lost(self, conn: Connection, now: float) -> None:
        """The peer closed the connection (or the socket failed)."""
        if conn.state == CLOSED:
            return
        self._now = now  # the will's Message Expiry Interval counts from now
        if self.log.notice and self.settings.connection_messages:
            # mosquitto's exact words, "<unknown>" included: a closed probe is not an error.
            name = conn.client_id if conn.client_id is not None else "<unknown>"
            self.log.write(f"Client {name} closed its connection.")
        self._close(conn, now, publish_will=True)

    def pause_writing(self, conn: Connection) -> None:
        """The transport's buffer is full: queue further PUBLISHes for this client.

        The queue is bounded by ``max_queued_messages`` (oldest dropped and counted), so a
        client that stops reading costs bounded memory and never slows the others.
        """
        conn.paused = True

    def resume_writing(self, conn: Connection, now: float) -> None:
        """The transport drained: send what was queued meanwhile."""
        conn.paused = False
        self._now = now
        session = conn.session
        if session is not None and conn.state == CONNECTED and session.queue:
            self._drain(session)

    def flush(self) -> None:
        """Write each connection's accumulated output to its sink, once."""
        self._wakeup_pending = False
        if self._pending_input:
            pending = self._pending_input
            self._pending_input = []
            for conn in pending:
                if conn.state != CLOSED and not conn.throttles:
                    self._process(conn, self._now)
        dirty = self._dirty
        if not dirty:
            return
        self._dirty = []
        stats = self.stats
        backlog: list[Session] = []
        for conn in dirty:
            conn.dirty = False
            if conn.state == CLOSED or not conn.out:
                continue
            data = conn.out
            conn.out = bytearray()
            stats.bytes_sent += len(data)
            conn.sink.write(data)
            session = conn.session
            if session is not None and session.queue and not conn.paused:
                backlog.append(session)
        # Messages held back only because a turn's output was already large go out now
        # (they are written at the next flush, which _drain asks for).
        for session in backlog:
            self._drain(session)

    def next_deadline(self) -> float | None:
        """When ``tick`` should next be called (None: nothing scheduled)."""
        best: float | None = self._timers[0][0] if self._timers else None
        if self._throttling:
            soonest = min(self._throttling.values()) + THROTTLE_LIMIT
            if best is None or soonest < best:
                best = soonest
        if self._wills:
            soonest_will = self._wills[0][0]
            if best is None or soonest_will < best:
                best = soonest_will
        for t in (self._next_sys, self._next_expiry_check):
            if t is not None and (best is None or t < best):
                best = t
        return best

    def tick(self, now: float) -> None:
        """Enforce keepalive and connect timeouts, publish $SYS, expire old sessions."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _, conn = heapq.heappop(timers)
            if conn.state == CLOSED or when != conn.timer_at:
                continue
            if conn.state == NEW:
                due = conn.last_seen + CONNECT_TIMEOUT
            elif conn.keepalive:
                due = conn.last_seen + conn.keepalive * 1.5
            else:
                continue
            if due > now:
                self._schedule(conn, due)
                continue
            if self.log.notice and self.settings.connection_messages:
                self.log.write(f"Client {conn.name} has exceeded timeout, disconnecting.")
            self._disconnect(conn, KEEP_ALIVE_TIMEOUT, "keep alive timeout")
            self._close(conn, now, publish_will=True)
        self._now = now
        if self._wills and self._wills[0][0] <= now:
            self._due_wills(now)
        if self._throttling:
            for target, since in list(self._throttling.items()):
                if now - since >= THROTTLE_LIMIT:
                    target.slow = True  # until its queue drains, it no longer holds anyone
                    self._release(target)
        if self._next_sys is not None and now >= self._next_sys:
            publish_sys(self, now)
            self._next_sys = now + self.settings.sys_interval
        if self._next_expiry_check is not None and now >= self._next_expiry_check:
            self._expire_sessions(now)
        self._flush_if_no_shell()

    def shutdown(self, now: float) -> None:
        """Close every connection (persistent sessions stay in memory); 5.0 clients are told
        why with DISCONNECT 0x8B (Server shutting down)."""
        for conn in list(self.connections):
            self._disconnect(conn, SERVER_SHUTTING_DOWN, "server shutting down")
            self._close(conn, now, publish_will=False)

    # ------------------------------------------------------------------ persistence

    def snapshot(self, now: float) -> Snapshot:
        """Retained messages and persistent sessions as plain data, for a store to save.

        Non-persistent sessions and ``$SYS`` topics are left out (as mosquitto does). A client
        connected at ``now`` counts as going offline at ``now``: if the broker stops without
        another save, its session expiry runs from this snapshot.
        """
        return persistence.snapshot(self, now)

    def restore(self, data: Snapshot, now: float) -> None:
        """Take back a :meth:`snapshot` at start-up (before any client connects).

        Sessions whose expiry passed while the broker was down are not restored, nor are
        queued or retained messages whose MQTT 5 Message Expiry passed.
        """
        persistence.restore(self, data, now)

    # ------------------------------------------------------------------ API for other faces

    def add_auth_method(self, method: ServerAuthMethod) -> None:
        """Offer an MQTT 5 enhanced authentication method to clients (replaces one of the
        same name). A CONNECT naming a method nobody registered gets CONNACK 0x8C."""
        self.auth_methods[method.name] = method

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        now: float = 0.0,
        properties: dict[int, Any] | None = None,
    ) -> None:
        """Publish a message from inside the process (e.g. a CoAP PUT/POST).

        Raises :class:`TopicNameInvalid` for a bad topic name. ``now`` (the broker's clock)
        dates the message for a 5.0 Message Expiry Interval in ``properties``; 0 (the default)
        means the time of the broker's latest event.
        """
        validate_topic_name(topic)
        if now > self._now:
            self._now = now
        stats = self.stats
        stats.publish_received += 1
        stats.publish_bytes_received += len(payload)
        if retain and not self.settings.retain_available:
            retain = False
        self._route(topic, payload, qos, retain, properties or {}, None)

    def subscribe_internal(
        self, topic_filter: str, subscriber: InternalSubscriber, qos: int
    ) -> None:
        """Deliver every message matching ``topic_filter`` to ``subscriber.deliver``."""
        self.tree.add(topic_filter, subscriber, SubscriptionOptions(qos=qos))

    def unsubscribe_internal(self, topic_filter: str, subscriber: InternalSubscriber) -> bool:
        """Undo :meth:`subscribe_internal`; False if there was no such subscription."""
        return self.tree.remove(topic_filter, subscriber)

    def retained(self, topic: str) -> tuple[bytes, int, dict[int, Any]] | None:
        """The retained message of ``topic`` as ``(payload, qos, properties)``, or None."""
        message = self.retained_store.get(topic)
        if message is None:
            return None
        if message.expires_at is not None and self._expired(message):
            self.retained_store.clear(topic)
            return None
        return message.payload, message.qos, message.properties

    def clear_retained(self, topic: str) -> bool:
        """Forget the retained message of ``topic``; False if there was none."""
        return self.retained_store.clear(topic)

    def set_authorizer(self, authorizer: Authorizer | None) -> None:
        """Use ``authorizer`` from now on (e.g. ACLs re-read on SIGHUP), forgetting every
        cached answer. Messages already queued for a client stay queued."""
        self.authorizer = authorizer
        for session in self.sessions.values():
            session.readable = session.writable = None
        self._acl_generation += 1

    def recheck_credentials(self, now: float) -> list[str]:
        """Check every connected client that logged in with a user name and password against
        the authenticator again (its password file was re-read) and close those it refuses.

        As mosquitto 2.0.11 on SIGHUP: the client goes as if it had sent DISCONNECT (logged
        ``Client ID disconnected.``, no will, a persistent session stays) and an MQTT 5
        client gets no DISCONNECT packet. Clients that authenticated with an MQTT 5
        authentication method are not checked here. Returns the closed clients' ids.
        """
        authenticator = self.authenticator
        if authenticator is None:
            return []
        closed: list[str] = []
        log = self.log
        # Sessions, not the connection set, so that the log lines come in a stable order.
        for session in list(self.sessions.values()):
            conn = session.connection
            if conn is None or conn.state != CONNECTED or conn.credentials is None:
                continue
            username, password = conn.credentials
            if authenticator.check(username, password, session.client_id):
                continue
            if log.notice and self.settings.connection_messages:
                log.write(f"Client {session.client_id} disconnected.")
            conn.will = None
            self._close(conn, now, publish_will=False)
            closed.append(session.client_id)
        return closed

    # ------------------------------------------------------------------ access control

    def _may_read(self, session: Session, topic: str) -> bool:
        """Whether a message on ``topic`` may be delivered to ``session`` (authorizer set)."""
        cache = session.readable
        if cache is None:
            cache = session.readable = {}
        allowed = cache.get(topic)
        if allowed is None:
            assert self.authorizer is not None
            allowed = self.authorizer.check(session.client_id, session.username, topic, READ)
            if len(cache) >= ACL_CACHE_LIMIT:
                cache.clear()
            cache[topic] = allowed
        return allowed

    def _may_write(self, session: Session, topic: str) -> bool:
        """Whether ``session``'s client may publish to ``topic`` (or have its will sent there).

        Like mosquitto, clients never publish to ``$SYS`` (bar bridge state topics) or to a
        ``$share/`` topic, whatever the authorizer says.
        """
        if topic[:1] == "$" and (
            topic.startswith("$share")
            or (topic.startswith("$SYS") and not topic_matches(_WRITABLE_SYS, topic))
        ):
            return False
        if self.authorizer is None:
            return True
        cache = session.writable
        if cache is None:
            cache = session.writable = {}
        allowed = cache.get(topic)
        if allowed is None:
            allowed = self.authorizer.check(session.client_id, session.username, topic, WRITE)
            if len(cache) >= ACL_CACHE_LIMIT:
                cache.clear()
            cache[topic] = allowed
        return allowed

    def _identify(self, session: Session, username: str | None) -> None:
        """``session``'s client is now ``username`` (CONNECT, or a re-authentication that
        named another user): the authorizer's answers for the old name no longer hold."""
        if session.username != username:
            session.username = username
            session.readable = session.writable = None
            self._acl_generation += 1

    def _readable(self, matches: list[Match], topic: str) -> list[Match]:
        """The matches whose session may read ``topic``; internal subscribers always may, and
        a shared group's member is checked once picked.

        Kept per topic while the tree hands out the same match list (no (un)subscribe since)
        and no answer may have changed, so a steady fan-out pays one dict lookup per message.
        """
        cache = self._readable_cache
        cached = cache.get(topic)
        if cached is not None and cached[0] is matches and cached[1] == self._acl_generation:
            return cached[2]
        may_read = self._may_read
        readable = [m for m in matches if type(m[0]) is not Session or may_read(m[0], topic)]
        if len(cache) >= READABLE_CACHE_LIMIT:
            cache.clear()
        cache[topic] = (matches, self._acl_generation, readable)
        return readable

    # ------------------------------------------------------------------ errors and closing

    def _fail(self, conn: Connection, exc: MQTTError, now: float) -> None:
        """The one place bad input ends up: answer as the protocol says, log, close."""
        if conn.state == CLOSED:
            return
        log = self.log
        reason = exc.reason.rstrip(".")
        if conn.state == NEW:
            level = conn.reader.protocol_level
            if isinstance(exc, UnsupportedProtocolVersion):
                connack = getattr(exc, "connack", None)
                if connack:
                    self._append(conn, connack)
                    if log.debug:
                        log.write(f"Sending CONNACK to {conn.host} (0, {connack[-1]})")
            elif level == MQTT_5 and exc.reason_code >= 0x80:
                # A bad CONNECT from a 5.0 client gets a CONNACK with the reason code.
                self._send_connack(
                    conn, False, exc.reason_code, self._reason_string(conn, reason), MQTT_5
                )
        else:
            self._disconnect(conn, exc.reason_code, reason)
        if log.notice:
            log.write(f"Client {conn.name} disconnected due to {_failure_kind(exc)} ({reason}).")
        self._close(conn, now, publish_will=True)

    def _disconnect(self, conn: Connection, reason_code: int, reason: str) -> None:
        """Queue a server DISCONNECT for a connected 5.0 client that the server closes on its
        own account (3.x has no such packet: the connection is just closed); ``_close``
        writes it out. mosquitto 2.0.11 logs no "Sending DISCONNECT" line, so neither do we.
        """
        if conn.state == CONNECTED and conn.protocol_level == MQTT_5:
            self._send_disconnect(conn, reason_code, reason)

    def _close(self, conn: Connection, now: float, publish_will: bool) -> None:
        """Write what is pending, close the sink, detach the session, maybe send the will."""
        if conn.state == CLOSED:
            return
        if conn.state == CONNECTED:
            self.clients_connected -= 1
        conn.state = CLOSED
        self.connections.discard(conn)
        if conn.out:
            data = conn.out
            conn.out = bytearray()
            self.stats.bytes_sent += len(data)
            with contextlib.suppress(Exception):
                conn.sink.write(data)
        with contextlib.suppress(Exception):
            conn.sink.close()
        will = conn.will
        conn.will = None
        session = conn.session
        if session is not None and session.connection is conn:
            session.connection = None
            session.disconnected_at = now
            if session in self._throttling:
                self._release(session)
            if session.persistent:
                ends = self._session_expires_at(session)
                if ends is not None:
                    self._expiry_soon(session, ends)
            if not session.persistent:
                self._drop_session(session)
        if will is not None and publish_will:
            delay = int(will.properties.get(PROP_WILL_DELAY, 0)) if will.properties else 0
            if delay > 0 and session is not None and session.persistent:
                # 5.0: sent after the delay unless the client is back by then.
                heapq.heappush(self._wills, (now + delay, next(self._seq), session, now, will))
            else:
                self._publish_will(will, session)
        self._flush_if_no_shell()

    def _publish_will(self, will: Will, session: Session | None) -> None:
        if session is not None and not self._may_write(session, will.topic):
            return  # as mosquitto: not sent, and nothing logged
        properties = {k: v for k, v in will.properties.items() if k != PROP_WILL_DELAY}
        self._route(
            will.topic,
            will.payload,
            will.qos,
            will.retain and self.settings.retain_available,
            properties,
            None,
        )

    def _due_wills(self, now: float) -> None:
        wills = self._wills
        while wills and wills[0][0] <= now:
            _, _, session, gone_at, will = heapq.heappop(wills)
            # Not if the client came back meanwhile (even if it left again since).
            if (
                self.sessions.get(session.client_id) is session
                and session.connection is None
                and session.disconnected_at == gone_at
            ):
                self._publish_will(will, session)

    def _wills_of_ending_session(self, session: Session) -> None:
        """A session that ends sends its delayed will now (MQTT 5: whichever comes first)."""
        if not self._wills:
            return
        keep = []
        for entry in self._wills:
            if entry[2] is session and session.disconnected_at == entry[3]:
                self._publish_will(entry[4], session)
            else:
                keep.append(entry)
        heapq.heapify(keep)
        self._wills = keep

    def _flush_if_no_shell(self) -> None:
        # Work done outside data_received (timers, closes) still needs a flush.
        if self._dirty and not self._wakeup_pending and self.wakeup is not None:
            self._wakeup_pending = True
            self.wakeup()

    def _drop_session(self, session: Session) -> None:
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        for topic_filter in session.subscriptions:
            self._remove_subscription(session, topic_filter)
        session.subscriptions.clear()
        self._move_shared(session, None)
        session.queue = None
        session.queued_bytes = 0
        session.inflight.clear()

    def _session_expires_at(self, session: Session) -> float | None:
        """When an offline session ends: its 5.0 Session Expiry Interval, else
        ``persistent_client_expiration``; None for never."""
        gone = session.disconnected_at
        if gone is None or session.connection is not None:
            return None
        if session.protocol_level == MQTT_5 and session.expiry_interval != NEVER_EXPIRES:
            return gone + session.expiry_interval
        limit = self.settings.persistent_client_expiration
        return gone + limit if limit else None

    def _expire_sessions(self, now: float) -> None:
        heap = self._expiries
        while heap and heap[0][0] <= now:
            ends, _, session = heapq.heappop(heap)
            # Stale if the client came back (and maybe left again) or the session is gone.
            if self.sessions.get(session.client_id) is not session:
                continue
            if self._session_expires_at(session) != ends:
                continue
            if self.log.notice:
                self.log.write(f"Expiring client {session.client_id} due to timeout.")
            self.stats.clients_expired += 1
            self._wills_of_ending_session(session)
            self._drop_session(session)
        self._next_expiry_check = heap[0][0] if heap else None

    def _expiry_soon(self, session: Session, when: float) -> None:
        heapq.heappush(self._expiries, (when, next(self._seq), session))
        if self._next_expiry_check is None or when < self._next_expiry_check:
            self._next_expiry_check = when

    # ------------------------------------------------------------------ output helpers

    def _append(self, conn: Connection, data: bytes) -> None:
        conn.out += data
        self.stats.messages_sent += 1
        if not conn.dirty:
            self._mark_dirty(conn)

    def _mark_dirty(self, conn: Connection) -> None:
        conn.dirty = True
        self._dirty.append(conn)
        if not self._wakeup_pending and self.wakeup is not None:
            self._wakeup_pending = True
            self.wakeup()

    def _schedule(self, conn: Connection, when: float) -> None:
        conn.timer_at = when
        heapq.heappush(self._timers, (when, next(self._seq), conn))

    def _send_connack(
        self,
        conn: Connection,
        session_present: bool,
        code: int,
        properties: dict[int, Any],
        level: int,
    ) -> None:
        self._append(conn, self._fitting(conn, Connack(session_present, code, properties), level))

    def _send_disconnect(self, conn: Connection, code: int, reason: str) -> None:
        """A 5.0 server DISCONNECT with ``code`` and, if the client wants it, ``reason``."""
        packet = Disconnect(code, self._reason_string(conn, reason))
        self._append(conn, self._fitting(conn, packet, MQTT_5))

    @staticmethod
    def _reason_string(conn: Connection, reason: str) -> dict[int, Any]:
        """Reason String properties for a 5.0 packet: none if the client set Request Problem
        Information to 0 (MQTT 5.0 3.1.2.11.7 allows them on CONNACK and DISCONNECT even
        then, but a client that asked for none is better served by none)."""
        if not reason or not conn.problem_info:
            return {}
        return {PROP_REASON_STRING: reason}

    @staticmethod
    def _fitting(conn: Connection, packet: Connack | Disconnect | Auth, level: int) -> bytes:
        """Encode ``packet``, leaving out its Reason String if that would exceed the client's
        Maximum Packet Size (MQTT 5.0 3.1.2.11.4)."""
        data = encode(packet, level)
        too_large = conn.max_packet and len(data) > conn.max_packet
        if too_large and packet.properties.pop(PROP_REASON_STRING, None) is not None:
            data = encode(packet, level)
        return data

    # ------------------------------------------------------------------ CONNECT

    def _refuse(
        self,
        conn: Connection,
        packet: Connect,
        code: int,
        name: str,
        now: float,
        reason: str = "",
        properties: dict[int, Any] | None = None,
    ) -> None:
        """CONNACK ``code`` (5.0: with ``reason`` as Reason String) and close."""
        level = packet.protocol_level
        props = dict(properties or {})
        if level == MQTT_5:
            props.update(self._reason_string(conn, reason))
        self._send_connack(conn, False, code, props, level)
        if self.log.debug:
            self.log.write(f"Sending CONNACK to {name} (0, {code})")
        self._close(conn, now, publish_will=False)

    def _on_connect(self, conn: Connection, packet: Connect, now: float) -> None:
        settings = self.settings
        log = self.log
        level = packet.protocol_level
        v5 = level == MQTT_5
        conn.protocol_level = level
        if v5:
            conn.problem_info = packet.properties.get(PROP_REQUEST_PROBLEM_INFORMATION, 1) != 0
        client_id = packet.client_id
        assigned = False
        if not client_id:
            if level == MQTT_3_1 or (not v5 and not packet.clean_start):
                if log.notice:
                    log.write(
                        f"Client {conn.name} disconnected due to protocol error "
                        "(empty client id without clean session)."
                    )
                self._refuse(
                    conn,
                    packet,
                    0x85 if v5 else 0x02,
                    conn.host,
                    now,
                    "empty client id without clean session",
                )
                return
            client_id = self._new_client_id()
            assigned = True

        will = packet.will
        if will is not None and will.qos > self._max_qos:
            # mosquitto 2.0.11: CONNACK 0x9B with Maximum QoS for 5.0, a plain close for 3.x.
            if v5:
                self._refuse(
                    conn,
                    packet,
                    0x9B,
                    conn.host,
                    now,
                    f"will QoS {will.qos} above the maximum QoS {self._max_qos}",
                    {PROP_MAXIMUM_QOS: self._max_qos},
                )
            else:
                self._close(conn, now, publish_will=False)
            if log.notice:
                log.write(
                    "Client <unknown> disconnected due to QoS too high or retain not supported."
                )
            return

        method_name = packet.properties.get(AUTHENTICATION_METHOD) if v5 else None
        if method_name is not None:
            start_auth(self, conn, packet, client_id, assigned, method_name, now)
            return

        if packet.username is None:
            allowed = settings.allow_anonymous
        elif self.authenticator is not None:
            allowed = self.authenticator.check(packet.username, packet.password, client_id)
            if allowed:
                conn.credentials = (packet.username, packet.password)
        else:
            allowed = settings.allow_anonymous
        if not allowed:
            self._refuse(conn, packet, 0x87 if v5 else 0x05, conn.host, now, "not authorised")
            if log.notice:
                log.write(f"Client {conn.name} disconnected, not authorised.")
            return
        self._accept(conn, packet, client_id, assigned, packet.username, None, now)

    def _accept(
        self,
        conn: Connection,
        packet: Connect,
        client_id: str,
        assigned: bool,
        username: str | None,
        auth_properties: dict[int, Any] | None,
        now: float,
    ) -> None:
        """The client is authenticated: set up its session and send CONNACK (or refuse)."""
        settings = self.settings
        log = self.log
        level = packet.protocol_level
        v5 = level == MQTT_5
        will = packet.will
        if will is not None and will.retain and not settings.retain_available:
            if v5:
                self._refuse(conn, packet, 0x9A, client_id, now, "retain not supported")
                return
            will.retain = False

        if (
            v5
            and will is not None
            and will.properties.get(PROP_PAYLOAD_FORMAT) == 1
            and not _is_utf8(will.payload)
        ):
            # MQTT 5.0 3.1.3.2.3 lets the server check the will's format and refuse it so.
            reason = "will payload is not valid UTF-8"
            self._refuse(conn, packet, PAYLOAD_FORMAT_INVALID, client_id, now, reason)
            if log.notice:
                log.write(f"Client {client_id} disconnected, {reason}.")
            return

        keepalive = packet.keepalive
        connack_props: dict[int, Any] = {}
        if v5:
            max_keepalive = settings.max_keepalive
            if max_keepalive and (keepalive > max_keepalive or keepalive == 0):
                keepalive = max_keepalive
                connack_props[PROP_SERVER_KEEP_ALIVE] = keepalive
            connack_props[PROP_TOPIC_ALIAS_MAXIMUM] = TOPIC_ALIAS_MAXIMUM
            connack_props[PROP_SUBSCRIPTION_ID_AVAILABLE] = 1
            connack_props[PROP_SHARED_SUBSCRIPTION_AVAILABLE] = 1
            if assigned:
                connack_props[PROP_ASSIGNED_CLIENT_ID] = client_id
            if not settings.retain_available:
                connack_props[PROP_RETAIN_AVAILABLE] = 0
            if self._max_qos < 2:
                connack_props[PROP_MAXIMUM_QOS] = self._max_qos
            if self._max_inflight < 65535:
                connack_props[PROP_RECEIVE_MAXIMUM] = self._max_inflight
            if settings.max_packet_size:
                connack_props[PROP_MAXIMUM_PACKET_SIZE] = settings.max_packet_size
            if packet.properties.get(PROP_REQUEST_RESPONSE_INFORMATION) == 1:
                info = response_information(client_id)
                if info is not None:
                    connack_props[PROP_RESPONSE_INFORMATION] = info
            if auth_properties:
                connack_props.update(auth_properties)

        session = self.sessions.get(client_id)
        if session is not None and session.connection is not None:
            old = session.connection
            if log.notice and settings.connection_messages:
                log.write(f"Client {client_id} already connected, closing old connection.")
            self._disconnect(old, SESSION_TAKEN_OVER, "session taken over")
            self._close(old, now, publish_will=True)
            session = self.sessions.get(client_id)
        if session is not None and packet.clean_start:
            self._drop_session(session)
            session = None
        session_present = session is not None
        expiry_interval = int(packet.properties.get(PROP_SESSION_EXPIRY, 0)) if v5 else 0
        persistent = bool(expiry_interval) if v5 else not packet.clean_start
        if session is None:
            session = Session(client_id, persistent, level)
            self.sessions[client_id] = session
        session.persistent = persistent
        session.expiry_interval = expiry_interval
        self._identify(session, username)
        session.protocol_level = level
        session.connection = conn
        session.disconnected_at = None
        inflight_max = self._max_inflight
        if v5:
            receive_max = packet.properties.get(PROP_RECEIVE_MAXIMUM)
            if receive_max:
                inflight_max = min(inflight_max, int(receive_max))
        session.inflight_max = inflight_max
        if v5:
            conn.max_packet = int(packet.properties.get(PROP_MAXIMUM_PACKET_SIZE, 0))
            alias_maximum = int(packet.properties.get(PROP_TOPIC_ALIAS_MAXIMUM, 0))
            if alias_maximum:
                conn.out_aliases = OutboundAliases(alias_maximum)
            if session.inbound:
                # QoS 2 flows of an earlier connection do not count against this one's
                # Receive Maximum (MQTT 5 4.9: the quota starts afresh on each connection).
                conn.inherited = set(session.inbound)

        conn.client_id = client_id
        conn.session = session
        conn.keepalive = keepalive
        conn.will = will
        conn.username = username
        conn.state = CONNECTED
        self.clients_connected += 1
        stats = self.stats
        stats.connections += 1
        if self.clients_connected > stats.clients_maximum:
            stats.clients_maximum = self.clients_connected
        if keepalive and keepalive * 1.5 < CONNECT_TIMEOUT:
            # Otherwise the connect-timeout timer entry, when it fires, moves on to keepalive.
            self._schedule(conn, now + keepalive * 1.5)

        if log.notice and settings.connection_messages:
            user = f", u'{username}'" if username is not None else ""
            log.write(
                f"New client connected from {conn.peer} as {client_id} "
                f"(p{_MOSQ_PROTOCOL[level]}, c{int(packet.clean_start)}, k{keepalive}{user})."
            )
        if log.debug:
            if will is not None:
                log.write(
                    f"Will message specified ({len(will.payload)} bytes) "
                    f"(r{int(will.retain)}, q{will.qos})."
                )
                log.write(f"\t{will.topic}")
            else:
                log.write("No will message specified.")
            log.write(f"Sending CONNACK to {client_id} ({int(session_present)}, 0)")
        self._send_connack(conn, session_present, 0, connack_props, level)
        if session_present:
            self._resend(session, conn)
            self._drain(session)

    # ------------------------------------------------------------------ inbound PUBLISH

    def _on_publish(self, conn: Connection, packet: Publish, now: float) -> None:
        stats = self.stats
        payload = packet.payload
        stats.publish_received += 1
        stats.publish_bytes_received += len(payload)
        topic = packet.topic
        qos = packet.qos
        if qos > self._max_qos:
            self._qos_too_high(conn, now)
            return
        properties = packet.properties
        if properties and PROP_TOPIC_ALIAS in properties:
            topic = self._resolve_alias(conn, topic, properties[PROP_TOPIC_ALIAS])
        log = self.log
        mid = packet.packet_id or 0
        if packet.retain and not self.settings.retain_available:
            raise MQTTError("retain is not supported", 0x9A)
        limit = self._size_limit
        if limit and len(payload) > limit:
            if log.debug:
                log.write(
                    f"Dropped too large PUBLISH from {conn.client_id} (d{int(packet.dup)}, "
                    f"q{qos}, r{int(packet.retain)}, m{mid}, '{topic}', ... "
                    f"({len(payload)} bytes))"
                )
            # 0x95 (packet too large) as mosquitto 2.0.11 answers, although MQTT 5 does not
            # list it for PUBACK/PUBREC; clients built on mosquitto's library accept it.
            if qos == 1:
                self._send_ack(conn, Puback, mid, 0x95)
            elif qos == 2:
                self._send_ack(conn, Pubrec, mid, 0x95)
            return
        if properties and properties.get(PROP_PAYLOAD_FORMAT) == 1 and not _is_utf8(payload):
            # 5.0 3.3.2.3.2 lets the receiver check a payload said to be UTF-8 (mosquitto
            # 2.0.11 does not): the sender learns it from the ack, or at QoS 0 a DISCONNECT.
            if qos == 0:
                raise MQTTError("payload is not valid UTF-8", 0x99)
            if log.debug:
                log.write(
                    f"Dropped PUBLISH with a payload that is not UTF-8 from {conn.client_id} "
                    f"(d{int(packet.dup)}, q{qos}, r{int(packet.retain)}, m{mid}, '{topic}', "
                    f"... ({len(payload)} bytes))"
                )
            self._send_ack(conn, Puback if qos == 1 else Pubrec, mid, 0x99)
            return
        if self.authorizer is not None or topic[:1] == "$":
            session = conn.session
            assert session is not None
            if not self._may_write(session, topic):
                self._deny_publish(conn, packet, topic)
                return
        # (Like mosquitto's, this line is only for a PUBLISH that was not dropped or denied.)
        if log.debug:
            log.write(
                f"Received PUBLISH from {conn.client_id} (d{int(packet.dup)}, q{qos}, "
                f"r{int(packet.retain)}, m{mid}, '{topic}', ... ({len(payload)} bytes))"
            )
        if qos == 0:
            self._route(topic, payload, 0, packet.retain, properties, conn.session)
        elif qos == 1:
            if (
                self._route(topic, payload, 1, packet.retain, properties, conn.session)
                or conn.protocol_level != MQTT_5
            ):
                self._append(conn, bytes((0x40, 2, mid >> 8, mid & 0xFF)))
                if log.debug:
                    log.write(f"Sending PUBACK to {conn.client_id} (m{mid}, rc0)")
            else:
                # 5.0: as mosquitto, say nobody was subscribed (QoS 2's PUBREC comes before
                # routing, so it always says 0).
                self._send_ack(conn, Puback, mid, NO_MATCHING_SUBSCRIBERS)
        else:
            session = conn.session
            assert session is not None
            inbound = session.inbound
            if inbound is None:
                inbound = session.inbound = {}
            if mid not in inbound:
                if conn.protocol_level == MQTT_5:
                    self._check_receive_maximum(conn, inbound)
                inbound[mid] = self._message(topic, payload, 2, packet.retain, properties)
            self._append(conn, bytes((0x50, 2, mid >> 8, mid & 0xFF)))
            if log.debug:
                log.write(f"Sending PUBREC to {conn.client_id} (m{mid}, rc0)")

    def _check_receive_maximum(self, conn: Connection, inbound: dict[int, Any]) -> None:
        """A 5.0 client may not have more unfinished QoS 2 PUBLISHes than our Receive Maximum.

        (QoS 1 is acknowledged at once, so only QoS 2 flows awaiting PUBREL count.)
        """
        pending = len(inbound) - (len(conn.inherited) if conn.inherited else 0)
        if pending >= self._max_inflight:
            raise ProtocolError(
                f"more than {self._max_inflight} unacknowledged QoS 2 messages", 0x93
            )

    def _deny_publish(self, conn: Connection, packet: Publish, topic: str) -> None:
        """The client may not publish to ``topic``: 0x87 in PUBACK/PUBREC (5.0; a plain ack
        before), the message dropped, one debug line -- all as mosquitto does."""
        mid = packet.packet_id or 0
        qos = packet.qos
        if self.log.debug:
            self.log.write(
                f"Denied PUBLISH from {conn.client_id} (d{int(packet.dup)}, q{qos}, "
                f"r{int(packet.retain)}, m{mid}, '{topic}', ... ({len(packet.payload)} bytes))"
            )
        if qos == 1:
            self._send_ack(conn, Puback, mid, 0x87)
        elif qos == 2:
            self._send_ack(conn, Pubrec, mid, 0x87)

    def _qos_too_high(self, conn: Connection, now: float) -> None:
        """A PUBLISH above ``max_qos``: DISCONNECT 0x9B (5.0) or close, with mosquitto's lines."""
        log = self.log
        if conn.protocol_level == MQTT_5:
            self._send_disconnect(conn, 0x9B, f"QoS above the maximum QoS {self._max_qos}")
        if log.information:
            log.write(f"Too high QoS in PUBLISH from {conn.client_id}, disconnecting.")
        if log.notice:
            log.write(
                f"Bad socket read/write on client {conn.client_id}: "
                "Requested QoS not supported on server."
            )
        self._close(conn, now, publish_will=True)

    def _resolve_alias(self, conn: Connection, topic: str, alias: Any) -> str:
        if not 0 < int(alias) <= TOPIC_ALIAS_MAXIMUM:
            raise ProtocolError(f"topic alias {alias} out of range", 0x94)
        aliases = conn.aliases
        if aliases is None:
            aliases = conn.aliases = {}
        if topic:
            aliases[alias] = topic
            return topic
        known = aliases.get(alias)
        if known is None:
            raise ProtocolError(f"unknown topic alias {alias}")
        return known

    def _send_ack(self, conn: Connection, kind: type, mid: int, code: int) -> None:
        self._append(conn, encode(kind(mid, code), conn.protocol_level))
        if self.log.debug:
            self.log.write(
                f"Sending {kind.__name__.upper()} to {conn.client_id} (m{mid}, rc{code})"
            )

    def _on_pubrel(self, conn: Connection, packet: Pubrel, now: float) -> None:
        mid = packet.packet_id
        log = self.log
        if log.debug:
            log.write(f"Received PUBREL from {conn.client_id} (Mid: {mid})")
        session = conn.session
        assert session is not None
        message = session.inbound.pop(mid, None) if session.inbound else None
        if conn.inherited:
            conn.inherited.discard(mid)
        if message is not None:
            self._route(
                message.topic,
                message.payload,
                2,
                message.retain,
                message.properties,
                session,
            )
            self._append(conn, bytes((0x70, 2, mid >> 8, mid & 0xFF)))
        elif conn.protocol_level == MQTT_5:
            self._append(conn, encode(Pubcomp(mid, 0x92), MQTT_5))
        else:
            self._append(conn, bytes((0x70, 2, mid >> 8, mid & 0xFF)))
        if log.debug:
            log.write(f"Sending PUBCOMP to {conn.client_id} (m{mid})")

    # ------------------------------------------------------------------ routing (hot path)

    def _route(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        properties: dict[int, Any],
        origin: Session | None,
    ) -> bool:
        """Deliver one message to every matching subscriber; encode once per wire variant.

        Returns whether any subscription matched (MQTT 5 acks say "no matching subscribers").
        """
        if retain:
            if payload:
                self.retained_store.set(self._message(topic, payload, qos, True, properties))
            else:
                self.retained_store.clear(topic)
        matches = self.tree.match(topic)
        if not matches:
            return False
        if self.authorizer is not None:
            matches = self._readable(matches, topic)
        # Encodings by (5.0?, qos, retain); the last one used is kept in locals because
        # nearly every fan-out needs just one.
        encoded: dict[tuple[bool, int, bool], tuple[bytes, bytes]] | None = None
        # 5.0 encodings for receivers with Subscription Identifiers, which are spliced in
        # per receiver instead of encoding once per set of identifiers; at qos * 2 + retain.
        splices: list[PublishSplice | None] | None = None
        # Encodings for connections with server topic aliases, by (qos, retain, dup,
        # subscription ids, alias, topic included?): shared while they use the same alias.
        aliased: dict[tuple[Any, ...], tuple[bytes, bytes]] | None = None
        last_key: tuple[bool, int, bool] | None = None
        last_parts: tuple[bytes, bytes] = (b"", b"")
        message: Message | None = None
        forward: dict[int, Any] | None = None
        stats = self.stats
        debug = self.log.debug
        upgrade = self.settings.upgrade_outgoing_qos
        max_bytes = self._max_inflight_bytes
        sent = 0
        group: SharedGroup | None = None
        for target, sub_qos, options, sub_ids in matches:
            if type(target) is not Session:
                if type(target) is SharedGroup:
                    group = target
                    target = group.pick()
                    if self.authorizer is not None and not self._may_read(target, topic):
                        continue  # as mosquitto: the member picked may not read it; dropped
                    options = group.options[target]
                    sub_qos = options.qos
                    member_id = group.ids.get(target)
                    sub_ids = (member_id,) if member_id is not None else None
                else:
                    try:
                        target.deliver(
                            topic,
                            payload,
                            sub_qos if upgrade else (qos if qos < sub_qos else sub_qos),
                            False,
                            properties,
                        )
                    except Exception as exc:  # an in-process subscriber's bug stays its own
                        if self.log.error:
                            self.log.write(
                                f"Error: internal subscriber {target!r} failed on '{topic}' "
                                f"({type(exc).__name__}: {exc})."
                            )
                    continue
            elif group is not None:
                group = None
            q = sub_qos if upgrade else (qos if qos < sub_qos else sub_qos)
            if options.no_local and target is origin:
                continue
            conn = target.connection
            r = retain if options.retain_as_published else False
            if q == 0:
                if conn is None or conn.paused or len(conn.out) >= OUT_HIGH_WATER:
                    # A paused (slow) client queues QoS 0 too, bounded like QoS 1/2;
                    # an offline one only with queue_qos0_messages. A full queue refuses
                    # the new QoS 0 message (as mosquitto does) before allocating anything.
                    queue = target.queue
                    if queue is not None and (
                        0 < self._queue_limit <= len(queue)
                        or 0 < self._queue_byte_limit < target.queued_bytes + len(payload)
                    ):
                        stats.publish_dropped += 1
                        continue
                    if conn is not None or self.settings.queue_qos0_messages:
                        if message is None:
                            message = self._message(topic, payload, qos, retain, properties)
                        self._enqueue(target, Outgoing(message, 0, r, sub_ids, group))
                    else:
                        stats.publish_dropped += 1
                    continue
                v5 = conn.protocol_level == MQTT_5
                if v5 and conn.out_aliases is not None:
                    # Fast path: the client knows the topic's alias and another client with
                    # the same alias already had the short form encoded.
                    alias = conn.out_aliases.by_topic.get(topic)
                    if alias is not None and aliased is not None:
                        short = aliased.get((0, r, False, sub_ids, alias, False))
                        # (QoS 0 encodings are kept whole, as the head.)
                        if short is not None and (
                            not conn.max_packet or len(short[0]) <= conn.max_packet
                        ):
                            conn.out += short[0]
                            sent += 1
                            if not conn.dirty:
                                self._mark_dirty(conn)
                            if debug:
                                self._log_sending(target, 0, False, 0, r, topic, payload)
                            continue
                    if forward is None:
                        forward = _forwardable(properties)
                    if aliased is None:
                        aliased = {}
                    if debug:
                        self._log_sending(target, 0, False, 0, r, topic, payload)
                    props = _with_ids(forward, sub_ids) or {}
                    if self._send_aliased(
                        target, conn, topic, payload, 0, r, False, 0, props, aliased, sub_ids
                    ):
                        sent += 1
                    continue
                if sub_ids and v5:
                    # Its own Subscription Identifiers: one encoding, the identifiers spliced in.
                    if splices is None:
                        splices = [None] * 6
                    splice = splices[r]
                    if splice is None:
                        if forward is None:
                            forward = _forwardable(properties)
                        splice = PublishSplice(topic, payload, 0, r, False, forward)
                        splices[r] = splice
                    head, middle = splice.parts(sub_ids)
                    size = len(head) + len(middle) + len(payload)
                    if conn.max_packet and size > conn.max_packet:
                        if debug:
                            self._log_sending(target, 0, False, 0, r, topic, payload)
                        self._too_large(target, size)
                        continue
                    out = conn.out
                    out += head
                    out += middle
                    out += payload
                    sent += 1
                    if not conn.dirty:
                        self._mark_dirty(conn)
                    if debug:
                        self._log_sending(target, 0, False, 0, r, topic, payload)
                    continue
                key = (v5, 0, r)
                if key == last_key:
                    parts = last_parts
                else:
                    found = encoded.get(key) if encoded is not None else None
                    if found is None:
                        if v5 and forward is None:
                            forward = _forwardable(properties)
                        head, tail = encode_publish_parts(
                            topic,
                            payload,
                            0,
                            r,
                            False,
                            forward,
                            conn.protocol_level,
                        )
                        found = (head + tail, b"")
                        if encoded is None:
                            encoded = {}
                        encoded[key] = found
                    parts = last_parts = found
                    last_key = key
                if conn.max_packet and len(parts[0]) > conn.max_packet:
                    # 5.0: never more than the client's maximum (logged as mosquitto does).
                    if debug:
                        self._log_sending(target, 0, False, 0, r, topic, payload)
                    self._too_large(target, len(parts[0]))
                    continue
                conn.out += parts[0]
                sent += 1
                if not conn.dirty:
                    self._mark_dirty(conn)
                if debug:
                    self._log_sending(target, 0, False, 0, r, topic, payload)
                continue
            if message is None:
                message = self._message(topic, payload, qos, retain, properties)
            item = Outgoing(message, q, r, sub_ids, group)
            if (
                conn is None
                or conn.paused
                or target.queue
                or len(target.inflight) >= target.inflight_max
                or len(conn.out) >= OUT_HIGH_WATER
                or (max_bytes and _inflight_bytes_reached(target, max_bytes))
            ):
                self._enqueue(target, item)
                if (
                    conn is not None
                    and origin is not None
                    and not origin.inflight
                    and len(target.queue or ()) > target.inflight_max
                    and not target.slow
                    and not conn.paused
                ):
                    # Only pure publishers are held back: one that is also waiting for its
                    # own acknowledgements must keep being read, or two busy clients
                    # subscribed to each other would hold each other up.
                    self._throttle(origin, target)
                continue
            mid = target.allocate_mid()
            target.inflight[mid] = item
            v5 = conn.protocol_level == MQTT_5
            if v5 and conn.out_aliases is not None:
                alias = conn.out_aliases.by_topic.get(topic)
                if alias is not None and aliased is not None:
                    short = aliased.get((q, r, False, sub_ids, alias, False))
                    if short is not None and (
                        not conn.max_packet or len(short[0]) + 2 + len(short[1]) <= conn.max_packet
                    ):
                        out = conn.out
                        out += short[0]
                        out += mid.to_bytes(2, "big")
                        out += short[1]
                        sent += 1
                        if not conn.dirty:
                            self._mark_dirty(conn)
                        if debug:
                            self._log_sending(target, q, False, mid, r, topic, payload)
                        continue
                if forward is None:
                    forward = _forwardable(properties)
                if aliased is None:
                    aliased = {}
                if debug:
                    self._log_sending(target, q, False, mid, r, topic, payload)
                props = _with_ids(forward, sub_ids) or {}
                if self._send_aliased(
                    target, conn, topic, payload, q, r, False, mid, props, aliased, sub_ids
                ):
                    sent += 1
                continue
            if sub_ids and v5:
                if splices is None:
                    splices = [None] * 6
                splice = splices[q * 2 + r]
                if splice is None:
                    if forward is None:
                        forward = _forwardable(properties)
                    splice = PublishSplice(topic, payload, q, r, False, forward)
                    splices[q * 2 + r] = splice
                head, middle = splice.parts(sub_ids)
                size = len(head) + 2 + len(middle) + len(payload)
                if conn.max_packet and size > conn.max_packet:
                    del target.inflight[mid]
                    if debug:
                        self._log_sending(target, q, False, mid, r, topic, payload)
                    self._too_large(target, size)
                    continue
                out = conn.out
                out += head
                out += mid.to_bytes(2, "big")
                out += middle
                out += payload
                sent += 1
                if not conn.dirty:
                    self._mark_dirty(conn)
                if debug:
                    self._log_sending(target, q, False, mid, r, topic, payload)
                continue
            key = (v5, q, r)
            if key == last_key:
                parts = last_parts
            else:
                found = encoded.get(key) if encoded is not None else None
                if found is None:
                    if v5 and forward is None:
                        forward = _forwardable(properties)
                    found = encode_publish_parts(
                        topic,
                        payload,
                        q,
                        r,
                        False,
                        forward,
                        conn.protocol_level,
                    )
                    if encoded is None:
                        encoded = {}
                    encoded[key] = found
                parts = last_parts = found
                last_key = key
            if conn.max_packet and len(parts[0]) + 2 + len(parts[1]) > conn.max_packet:
                del target.inflight[mid]
                if debug:
                    self._log_sending(target, q, False, mid, r, topic, payload)
                self._too_large(target, len(parts[0]) + 2 + len(parts[1]))
                continue
            out = conn.out
            out += parts[0]
            out += mid.to_bytes(2, "big")
            out += parts[1]
            sent += 1
            if not conn.dirty:
                self._mark_dirty(conn)
            if debug:
                self._log_sending(target, q, False, mid, r, topic, payload)
        if sent:
            stats.messages_sent += sent
            stats.publish_sent += sent
            stats.publish_bytes_sent += sent * len(payload)
        return True

    def _message(
        self, topic: str, payload: bytes, qos: int, retain: bool, properties: dict[int, Any]
    ) -> Message:
        """A message to keep (queue, retained, in flight), with its 5.0 expiry time."""
        message = Message(topic, payload, qos, retain, properties)
        if properties and properties.get(PROP_MESSAGE_EXPIRY):  # 0: never expires
            message.expires_at = self._now + int(properties[PROP_MESSAGE_EXPIRY])
        return message

    def _expired(self, message: Message) -> bool:
        return message.expires_at is not None and message.expires_at <= self._now

    def _enqueue(self, session: Session, item: Outgoing) -> None:
        queue = session.queue
        if queue is None:
            queue = session.queue = deque()
        limit = self._queue_limit
        byte_limit = self._queue_byte_limit
        size = len(item.message.payload)
        while queue and (
            (limit > 0 and len(queue) >= limit)
            or (byte_limit > 0 and session.queued_bytes + size > byte_limit)
        ):
            old = queue.popleft()
            session.queued_bytes -= len(old.message.payload)
            session.dropped += 1
            self.stats.publish_dropped += 1
            if session.dropped == 1 and self.log.notice:
                self.log.write(
                    f"Outgoing messages are being dropped for client {session.client_id}."
                )
        queue.append(item)
        session.queued_bytes += size

    def _send_publish(
        self, session: Session, conn: Connection, item: Outgoing, mid: int, dup: bool
    ) -> None:
        """Encode and send one PUBLISH on its own (queue drains, resends, retained)."""
        message = item.message
        level = conn.protocol_level
        v5 = level == MQTT_5
        qos = item.qos
        if self.log.debug:
            self._log_sending(session, qos, dup, mid, item.retain, message.topic, message.payload)
        # Queued copies of one message (fan-out to slow receivers) share one encoding.
        sub_ids = item.sub_ids if v5 else None
        key = (v5, qos, item.retain, dup, sub_ids)
        wire = message.wire
        parts = wire.get(key) if wire is not None else None
        expiring = v5 and message.expires_at is not None
        if parts is None or expiring or conn.out_aliases is not None:
            props: dict[int, Any] | None = None
            if v5:
                props = _forwardable(message.properties)
                if expiring:
                    # 5.0: forward the time left, not the original interval. A message in
                    # flight that expired before its resend (which MQTT 5.0 4.4 still
                    # requires) says 1: 0 would read as "never expires" to mosquitto and to us.
                    assert message.expires_at is not None
                    # Rounded to the microsecond first: (t + 3600) - t can be
                    # 3600.0000000000005 in floating point, which must not go up to 3601.
                    left = max(1, math.ceil(round(message.expires_at - self._now, 6)))
                    props = {**props, PROP_MESSAGE_EXPIRY: left}
                if sub_ids:
                    props = {**props, PROP_SUBSCRIPTION_ID: list(sub_ids)}
            if wire is None and not expiring:
                wire = message.wire = {}
            if conn.out_aliases is not None:
                if not self._send_aliased(
                    session,
                    conn,
                    message.topic,
                    message.payload,
                    qos,
                    item.retain,
                    dup,
                    mid,
                    props or {},
                    None if expiring else wire,
                    sub_ids,
                ):
                    return
                self._count_sent(conn, len(message.payload))
                return
            parts = encode_publish_parts(
                message.topic, message.payload, qos, item.retain, dup, props, level
            )
            if wire is not None and not expiring:
                wire[key] = parts
        head, tail = parts
        size = len(head) + len(tail) + (2 if qos else 0)
        if conn.max_packet and size > conn.max_packet:
            session.inflight.pop(mid, None)
            self._too_large(session, size)
            return
        out = conn.out
        out += head
        if qos:
            out += mid.to_bytes(2, "big")
        out += tail
        self._count_sent(conn, len(message.payload))

    def _count_sent(self, conn: Connection, payload_size: int) -> None:
        stats = self.stats
        stats.messages_sent += 1
        stats.publish_sent += 1
        stats.publish_bytes_sent += payload_size
        if not conn.dirty:
            self._mark_dirty(conn)

    def _send_aliased(
        self,
        session: Session,
        conn: Connection,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        dup: bool,
        mid: int,
        props: dict[int, Any],
        cache: dict[tuple[Any, ...], tuple[bytes, bytes]] | None,
        sub_ids: tuple[int, ...] | None,
    ) -> bool:
        """Write one PUBLISH to a 5.0 connection that lets the broker assign topic aliases.

        A topic the client knows by alias goes as an empty name plus the alias; a new one as
        name plus a new alias while there are free ones, else (or if that would exceed the
        client's Maximum Packet Size) by name alone. The alias is recorded only once the
        packet is written, so the client's table and ours never disagree. ``cache`` shares
        encodings between connections that use the same alias for the topic. Returns False
        when the packet was too large for the client and dropped (stats are the caller's).
        """
        aliases = conn.out_aliases
        assert aliases is not None
        limit = conn.max_packet
        id_bytes = 2 if qos else 0
        alias = aliases.get(topic)
        new = alias is None
        if alias is None:
            alias = aliases.free()
        parts: tuple[bytes, bytes] | None = None
        if alias:
            key = (qos, retain, dup, sub_ids, alias, new)
            parts = cache.get(key) if cache is not None else None
            if parts is None:
                parts = encode_publish_parts(
                    topic if new else "",
                    payload,
                    qos,
                    retain,
                    dup,
                    {**props, PROP_TOPIC_ALIAS: alias},
                    MQTT_5,
                )
                if not qos:
                    parts = (parts[0] + parts[1], b"")  # one write for the fan-out's fast path
                if cache is not None:
                    cache[key] = parts
            size = len(parts[0]) + len(parts[1]) + id_bytes
            if limit and size > limit:
                if not new:
                    # The shortest form of this PUBLISH is already too large.
                    session.inflight.pop(mid, None)
                    self._too_large(session, size)
                    return False
                parts = None  # three bytes too many: try the name without an alias
            elif new:
                aliases.assign(topic, alias)
        if parts is None:
            key = (qos, retain, dup, sub_ids, 0, True)
            parts = cache.get(key) if cache is not None else None
            if parts is None:
                parts = encode_publish_parts(topic, payload, qos, retain, dup, props, MQTT_5)
                if cache is not None:
                    cache[key] = parts
            size = len(parts[0]) + len(parts[1]) + id_bytes
            if limit and size > limit:
                session.inflight.pop(mid, None)
                self._too_large(session, size)
                return False
        out = conn.out
        out += parts[0]
        if qos:
            out += mid.to_bytes(2, "big")
        if parts[1]:
            out += parts[1]
        if not conn.dirty:
            self._mark_dirty(conn)
        return True

    def _too_large(self, session: Session, size: int) -> None:
        """A PUBLISH over the client's 5.0 Maximum Packet Size is dropped, never sent.

        As mosquitto 2.0.11: a notice naming the remaining length (the packet without its
        fixed header), and not counted in ``$SYS/broker/publish/messages/dropped``.
        """
        if self.log.notice:
            self.log.write(
                f"Dropping too large outgoing PUBLISH for {session.client_id} "
                f"({_remaining_length(size)} bytes)"
            )

    def _log_sending(
        self,
        session: Session,
        qos: int,
        dup: bool,
        mid: int,
        retain: bool,
        topic: str,
        payload: bytes,
    ) -> None:
        self.log.write(
            f"Sending PUBLISH to {session.client_id} (d{int(dup)}, q{qos}, r{int(retain)}, "
            f"m{mid}, '{topic}', ... ({len(payload)} bytes))"
        )

    def _deliver(self, session: Session, item: Outgoing) -> None:
        """Send now if the window allows, else queue (QoS 0 offline is dropped unless queued)."""
        conn = session.connection
        if item.qos == 0:
            if conn is not None and not conn.paused and len(conn.out) < OUT_HIGH_WATER:
                self._send_publish(session, conn, item, 0, False)
            elif conn is not None or self.settings.queue_qos0_messages:
                self._enqueue(session, item)
            else:
                self.stats.publish_dropped += 1
            return
        if (
            conn is None
            or conn.paused
            or session.queue
            or len(session.inflight) >= session.inflight_max
            or len(conn.out) >= OUT_HIGH_WATER
            or (
                self._max_inflight_bytes
                and _inflight_bytes_reached(session, self._max_inflight_bytes)
            )
        ):
            self._enqueue(session, item)
            return
        mid = session.allocate_mid()
        session.inflight[mid] = item
        self._send_publish(session, conn, item, mid, False)

    def _drain(self, session: Session) -> None:
        """Move queued messages into the in-flight window while there is room."""
        conn = session.connection
        if conn is None or conn.state != CONNECTED:
            return
        queue = session.queue
        if queue is None:
            return
        inflight = session.inflight
        out = conn.out
        max_bytes = self._max_inflight_bytes
        while queue and not conn.paused and len(out) < OUT_HIGH_WATER:
            item = queue[0]
            if item.message.expires_at is not None and self._expired(item.message):
                queue.popleft()  # 5.0: expired before delivery started
                session.queued_bytes -= len(item.message.payload)
                continue
            if item.qos == 0:
                queue.popleft()
                session.queued_bytes -= len(item.message.payload)
                self._send_publish(session, conn, item, 0, False)
                continue
            if len(inflight) >= session.inflight_max or (
                max_bytes and _inflight_bytes_reached(session, max_bytes)
            ):
                break
            queue.popleft()
            session.queued_bytes -= len(item.message.payload)
            mid = session.allocate_mid()
            inflight[mid] = item
            self._send_publish(session, conn, item, mid, False)
        if not queue:
            session.queue = None
            session.queued_bytes = 0
            session.dropped = 0
            session.slow = False
        if session in self._throttling and len(queue) <= session.inflight_max:
            self._release(session)

    # ------------------------------------------------------------------ publisher throttling

    def _throttle(self, origin: Session, target: Session) -> None:
        """Stop reading from ``origin`` until ``target`` works off its in-flight backlog.

        This keeps QoS 1/2 lossless when publishers outpace a receiver's in-flight window
        (mosquitto gets the same balance by reading one packet per socket per loop turn).
        """
        conn = origin.connection
        if conn is None or conn is target.connection:
            return
        holders = self._throttling
        if target not in holders:
            holders[target] = self._now
        if target.throttled is None:
            target.throttled = []
        elif conn in target.throttled:
            return
        target.throttled.append(conn)
        conn.throttles += 1
        if conn.throttles == 1:
            _call(conn.sink, "pause_reading")

    def _release(self, target: Session) -> None:
        """``target`` caught up (or gave up): let the publishers it held back read again."""
        self._throttling.pop(target, None)
        held = target.throttled
        target.throttled = None
        if not held:
            return
        for conn in held:
            conn.throttles -= 1
            if conn.throttles == 0 and conn.state != CLOSED:
                _call(conn.sink, "resume_reading")
                if conn.reader.buffered:
                    # Packets read before the hold are handled at the next flush, outside
                    # whatever handler released them.
                    self._pending_input.append(conn)
                    if not self._wakeup_pending and self.wakeup is not None:
                        self._wakeup_pending = True
                        self.wakeup()

    def _resend(self, session: Session, conn: Connection) -> None:
        """On reconnect: resend unacknowledged PUBLISHes with DUP, and pending PUBRELs."""
        for mid, item in list(session.inflight.items()):
            if item.state == AWAIT_ACK:
                self._send_publish(session, conn, item, mid, True)
            else:
                self._append(conn, bytes((0x62, 2, mid >> 8, mid & 0xFF)))
                if self.log.debug:
                    self.log.write(f"Sending PUBREL to {session.client_id} (m{mid})")

    # ------------------------------------------------------------------ outbound acks

    def _on_puback(self, conn: Connection, packet: Puback, now: float) -> None:
        mid = packet.packet_id
        if self.log.debug:
            self.log.write(
                f"Received PUBACK from {conn.client_id} (Mid: {mid}, RC:{packet.reason_code})"
            )
        session = conn.session
        assert session is not None
        item = session.inflight.get(mid)
        if item is not None and item.qos == 1:
            self._outbound_done(session, mid)

    def _on_pubrec(self, conn: Connection, packet: Pubrec, now: float) -> None:
        mid = packet.packet_id
        log = self.log
        if log.debug:
            log.write(f"Received PUBREC from {conn.client_id} (Mid: {mid})")
        session = conn.session
        assert session is not None
        item = session.inflight.get(mid)
        if item is None or item.qos != 2:
            if conn.protocol_level == MQTT_5:
                self._append(conn, encode(Pubrel(mid, 0x92), MQTT_5))
            else:
                self._append(conn, bytes((0x62, 2, mid >> 8, mid & 0xFF)))
        elif packet.reason_code >= 0x80:
            # 5.0: the receiver refused the message; the flow ends here.
            self._outbound_done(session, mid)
            return
        else:
            item.state = AWAIT_COMP
            self._append(conn, bytes((0x62, 2, mid >> 8, mid & 0xFF)))
        if log.debug:
            log.write(f"Sending PUBREL to {conn.client_id} (m{mid})")

    def _on_pubcomp(self, conn: Connection, packet: Pubcomp, now: float) -> None:
        mid = packet.packet_id
        if self.log.debug:
            self.log.write(
                f"Received PUBCOMP from {conn.client_id} (Mid: {mid}, RC:{packet.reason_code})"
            )
        session = conn.session
        assert session is not None
        item = session.inflight.get(mid)
        if item is not None and item.state == AWAIT_COMP:
            self._outbound_done(session, mid)

    def _outbound_done(self, session: Session, mid: int) -> None:
        """An outgoing QoS 1/2 flow has ended: free its in-flight slot for the next queued one."""
        del session.inflight[mid]
        if session.queue:
            self._drain(session)

    # ------------------------------------------------------------------ SUBSCRIBE & co

    def _on_subscribe(self, conn: Connection, packet: Subscribe, now: float) -> None:
        log = self.log
        session = conn.session
        assert session is not None
        client_id = session.client_id
        if log.debug:
            log.write(f"Received SUBSCRIBE from {client_id}")
        codes: list[int] = []
        granted: list[tuple[str, int, bool, SubscriptionOptions]] = []
        sub_id: int | None = None
        if conn.protocol_level == MQTT_5:
            ids = packet.properties.get(PROP_SUBSCRIPTION_ID)
            if ids:
                sub_id = int(ids[0]) if isinstance(ids, list) else int(ids)
        max_qos = self._max_qos
        for topic_filter, options in packet.subscriptions:
            if options.qos > max_qos:
                options.qos = max_qos  # granted at most max_qos, as mosquitto does
            qos = min(options.qos, 2)
            if log.debug:
                log.write(f"\t{topic_filter} (QoS {qos})")
            if self.authorizer is not None and not self.authorizer.check(
                client_id, session.username, topic_filter, SUBSCRIBE
            ):
                # As mosquitto: 3.1 has no failure code, so it gets its QoS, unsubscribed.
                level = conn.protocol_level
                codes.append(0x87 if level == MQTT_5 else qos if level == MQTT_3_1 else 0x80)
                continue
            if topic_filter.startswith("$share/"):
                group_name, shared_filter = split_shared(topic_filter)
                try:
                    validate_topic_filter(topic_filter, shared=True)
                except TopicFilterInvalid as exc:
                    if log.notice:
                        log.write(f"Client {client_id} refused subscription ({exc.reason}).")
                    codes.append(0x8F if conn.protocol_level == MQTT_5 else 0x80)
                    continue
                assert group_name is not None
                if options.no_local:
                    raise ProtocolError("No Local on a shared subscription")
                self._add_shared(session, group_name, shared_filter, options, sub_id)
                session.subscriptions[topic_filter] = options
                if log.subscribe:
                    log.write(f"{client_id} {qos} {topic_filter}")
                codes.append(qos)  # no retained messages for a shared subscription
                continue
            existed = self.tree.add(topic_filter, session, options, sub_id)
            session.subscriptions[topic_filter] = options
            if log.subscribe:
                log.write(f"{client_id} {qos} {topic_filter}")
            codes.append(qos)
            granted.append((topic_filter, qos, existed, options))
        self._append(conn, encode(Suback(packet.packet_id, codes), conn.protocol_level))
        if log.debug:
            log.write(f"Sending SUBACK to {client_id}")
        retained_ids = (sub_id,) if sub_id is not None else None
        check = self.authorizer is not None
        for topic_filter, qos, existed, options in granted:
            handling = options.retain_handling
            if handling == 2 or (handling == 1 and existed):
                continue
            for message in list(self.retained_store.matching(topic_filter)):
                if message.expires_at is not None and self._expired(message):
                    self.retained_store.clear(message.topic)
                    continue
                if check and not self._may_read(session, message.topic):
                    continue
                q = message.qos if message.qos < qos else qos
                self._deliver(session, Outgoing(message, q, True, retained_ids))

    def _add_shared(
        self,
        session: Session,
        group_name: str,
        topic_filter: str,
        options: SubscriptionOptions,
        sub_id: int | None,
    ) -> None:
        key = (group_name, topic_filter)
        group = self.shared.get(key)
        if group is None:
            group = self.shared[key] = SharedGroup(group_name, topic_filter)
            self.tree.add(topic_filter, group, GROUP_OPTIONS)
        group.add(session, options, sub_id)

    def _move_shared(self, session: Session, group: SharedGroup | None) -> None:
        """Hand the messages ``session`` got through shared subscriptions it left (``group``,
        or all of them for None) and has not yet received to other members of their groups.

        A QoS 2 message whose PUBREC came back was received and stays.
        """
        moving: list[Outgoing] = []
        inflight = session.inflight
        for mid, item in list(inflight.items()):
            shared = item.group
            if shared is not None and item.state == AWAIT_ACK and group in (None, shared):
                del inflight[mid]
                moving.append(item)
        queue = session.queue
        if queue:
            kept: deque[Outgoing] = deque()
            for item in queue:
                if item.group is not None and (group is None or item.group is group):
                    session.queued_bytes -= len(item.message.payload)
                    moving.append(item)
                else:
                    kept.append(item)
            session.queue = kept or None
        for item in moving:
            shared = item.group
            assert shared is not None
            if session in shared.options or not shared.members:
                continue  # still a member (or nobody left): nowhere else to go
            target = shared.pick()
            options = shared.options[target]
            message = item.message
            member_id = shared.ids.get(target)
            self._deliver(
                target,
                Outgoing(
                    message,
                    min(message.qos, options.qos),
                    message.retain if options.retain_as_published else False,
                    (member_id,) if member_id is not None else None,
                    shared,
                ),
            )
        if moving and session.queue is None:
            session.queued_bytes = 0

    def _remove_subscription(self, session: Session, topic_filter: str) -> bool:
        """Remove one subscription of ``session`` (shared or not); False if there was none."""
        if not topic_filter.startswith("$share/"):
            return self.tree.remove(topic_filter, session)
        group_name, shared_filter = split_shared(topic_filter)
        group = self.shared.get((group_name or "", shared_filter))
        if group is None or not group.remove(session):
            return False
        self._move_shared(session, group)
        if not group.members:
            del self.shared[(group.name, group.filter)]
            self.tree.remove(group.filter, group)
        return True

    def _on_unsubscribe(self, conn: Connection, packet: Unsubscribe, now: float) -> None:
        log = self.log
        session = conn.session
        assert session is not None
        client_id = session.client_id
        if log.debug:
            log.write(f"Received UNSUBSCRIBE from {client_id}")
        codes: list[int] = []
        for topic_filter in packet.topic_filters:
            if log.debug:
                log.write(f"\t{topic_filter}")
            removed = self._remove_subscription(session, topic_filter)
            session.subscriptions.pop(topic_filter, None)
            if log.unsubscribe:
                log.write(f"{client_id} {topic_filter}")
            codes.append(0x00 if removed else 0x11)
        self._append(conn, encode(Unsuback(packet.packet_id, codes), conn.protocol_level))
        if log.debug:
            log.write(f"Sending UNSUBACK to {client_id}")

    def _on_pingreq(self, conn: Connection, packet: Pingreq, now: float) -> None:
        if self.log.debug:
            self.log.write(f"Received PINGREQ from {conn.client_id}")
        self._append(conn, b"\xd0\x00")
        if self.log.debug:
            self.log.write(f"Sending PINGRESP to {conn.client_id}")

    def _on_disconnect(self, conn: Connection, packet: Disconnect, now: float) -> None:
        log = self.log
        session = conn.session
        if conn.protocol_level == MQTT_5 and session is not None:
            expiry = packet.properties.get(PROP_SESSION_EXPIRY)
            if expiry is not None:
                if expiry and not session.expiry_interval:
                    # MQTT 5.0 3.14.2.2.2: a session that was to end with the connection
                    # cannot be kept by its DISCONNECT (mosquitto 2.0.11 answers 0x82 too,
                    # before logging the DISCONNECT).
                    raise ProtocolError("session expiry interval set on DISCONNECT after 0")
                session.persistent = bool(expiry)
                session.expiry_interval = int(expiry)
        if log.debug:
            log.write(f"Received DISCONNECT from {conn.client_id}")
        # MQTT 5.0 3.14.4: only Normal disconnection (0x00) discards the will; 0x04 asks for
        # it and an error code (0x80...) ends the connection as abnormally as a lost socket.
        # (mosquitto 2.0.11 discards it for every code but 0x04.)
        keep_will = conn.protocol_level == MQTT_5 and packet.reason_code != 0x00
        if not keep_will:
            conn.will = None
        if log.notice and self.settings.connection_messages:
            log.write(f"Client {conn.client_id} disconnected.")
        self._close(conn, now, publish_will=keep_will)


def _call(sink: Sink, method: str) -> None:
    """Call an optional flow-control method of a sink (transports have them; tests may not)."""
    fn = getattr(sink, method, None)
    if fn is not None:
        with contextlib.suppress(Exception):
            fn()


def response_information(client_id: str) -> str | None:
    """The Response Information for a 5.0 client that requests it: ``response/<client id>``,
    a topic the client can build response topics below. None for a client id that cannot be
    part of a topic (wildcards, NUL)."""
    if "+" in client_id or "#" in client_id or "\0" in client_id:
        return None
    return RESPONSE_INFORMATION_PREFIX + client_id


def _auto_client_id() -> str:
    """An id like mosquitto's ``auto-F48B4E53-24B0-C227-8112-A1A6CBE83390``."""
    return "auto-" + str(uuid.uuid4()).upper()


def _inflight_bytes_reached(session: Session, limit: int) -> bool:
    """``max_inflight_bytes``: whether the payload bytes in flight to ``session`` have reached
    ``limit``. Below it one more message may go, however large (mosquitto.conf's rule).

    Summed when asked rather than kept as a running total, so that the many places that end
    a flow need not know about the limit. Only asked when a limit is set; the walk stops at
    the limit and the window is bounded by ``max_inflight_messages`` / Receive Maximum.
    """
    total = 0
    for item in session.inflight.values():
        total += len(item.message.payload)
        if total >= limit:
            return True
    return False
