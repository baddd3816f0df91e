"""What the broker core hands out for persistence, and takes back at start-up: plain data.

:meth:`Broker.snapshot <m2mhub.hub.broker.Broker.snapshot>` fills a :class:`Snapshot` and
:meth:`Broker.restore <m2mhub.hub.broker.Broker.restore>` rebuilds the state from one. The
core's clock is not a wall clock, so times travel as durations relative to the ``now`` of the
snapshot: a message's remaining lifetime, how long a session has been offline. A store turns
those into wall-clock times on disk and back (see :mod:`m2mhub.store.sqlite`).

Messages are listed once in ``Snapshot.messages`` and referred to by index, as one message
queued for many sessions is one object in the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class MessageState:
    """One application message (retained, queued, in flight or received QoS 2)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    # MQTT 5 properties as the core keeps them (ints, strs, bytes, user-property pairs).
    properties: dict[int, Any] = field(default_factory=dict)
    # Seconds of MQTT 5 Message Expiry left at the snapshot; None: never expires.
    expires_in: float | None = None


@dataclass(slots=True)
class SubscriptionState:
    """One subscription of a session (a ``$share/GROUP/FILTER`` one keeps that form)."""

    topic_filter: str
    qos: int
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0
    subscription_id: int | None = None


@dataclass(slots=True)
class OutgoingState:
    """A message on its way to a session: in flight (``packet_id`` set) or queued."""

    message: int  # index into Snapshot.messages
    qos: int
    retain: bool
    subscription_ids: tuple[int, ...] | None = None
    shared: str | None = None  # "$share/GROUP/FILTER" it came through
    packet_id: int | None = None
    # QoS 2 in flight: PUBREC received, PUBREL sent, waiting for PUBCOMP.
    released: bool = False


@dataclass(slots=True)
class SessionState:
    """A persistent session: what survives a restart of the broker."""

    client_id: str
    protocol_level: int
    expiry_interval: int  # MQTT 5 Session Expiry Interval (seconds; 0xFFFFFFFF: never)
    username: str | None
    # Seconds since the client went offline (0 for a client connected at the snapshot).
    offline_for: float
    next_packet_id: int
    subscriptions: list[SubscriptionState] = field(default_factory=list)
    inflight: list[OutgoingState] = field(default_factory=list)
    queue: list[OutgoingState] = field(default_factory=list)
    # Inbound QoS 2 packet ids not yet released (PUBREC sent), with their message (index
    # into Snapshot.messages) or None if it was already routed.
    inbound: list[tuple[int, int | None]] = field(default_factory=list)


@dataclass(slots=True)
class Snapshot:
    """Everything the broker persists: retained messages and persistent sessions."""

    messages: list[MessageState] = field(default_factory=list)
    retained: list[int] = field(default_factory=list)  # indexes into messages
    sessions: list[SessionState] = field(default_factory=list)
