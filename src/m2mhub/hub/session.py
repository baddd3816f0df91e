"""Per-client session state: subscriptions, outgoing QoS 1/2 flows, queue, inbound QoS 2."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from m2mhub.hub.message import Message
from m2mhub.mqtt.packets import SubscriptionOptions

if TYPE_CHECKING:
    from m2mhub.hub.connection import Connection
    from m2mhub.hub.shared import SharedGroup

# Outgoing flow states of an in-flight message.
AWAIT_ACK = 0  # PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2)
AWAIT_COMP = 1  # PUBREL sent, waiting for PUBCOMP


class Outgoing:
    """One message on its way to a client: in flight (with a packet id) or queued."""

    __slots__ = ("group", "message", "qos", "retain", "state", "sub_ids")

    def __init__(
        self,
        message: Message,
        qos: int,
        retain: bool,
        sub_ids: tuple[int, ...] | None = None,
        group: SharedGroup | None = None,
    ) -> None:
        self.message = message
        self.qos = qos
        self.retain = retain
        self.state = AWAIT_ACK
        # MQTT 5 Subscription Identifiers of the receiver's matching subscriptions.
        self.sub_ids = sub_ids
        # The shared subscription it came through: moved to another member if this one leaves.
        self.group = group


class Session:
    """What the broker remembers about a client id, connected or not."""

    __slots__ = (
        "client_id",
        "connection",
        "disconnected_at",
        "dropped",
        "expiry_interval",
        "inbound",
        "inflight",
        "inflight_max",
        "next_mid",
        "persistent",
        "protocol_level",
        "queue",
        "queued_bytes",
        "readable",
        "slow",
        "subscriptions",
        "throttled",
        "username",
        "writable",
    )

    def __init__(self, client_id: str, persistent: bool, protocol_level: int) -> None:
        self.client_id = client_id
        self.persistent = persistent
        self.protocol_level = protocol_level
        self.connection: Connection | None = None
        self.subscriptions: dict[str, SubscriptionOptions] = {}
        # Outgoing QoS 1/2 messages by packet id, in sending order.
        self.inflight: dict[int, Outgoing] = {}
        self.inflight_max = 20
        # Messages waiting for room in the in-flight window or for the client to come back.
        # (None while empty: most sessions never queue, and an empty deque costs ~700 bytes.)
        self.queue: deque[Outgoing] | None = None
        self.queued_bytes = 0  # payload bytes in the queue (max_queued_bytes)
        # Inbound QoS 2 messages received (PUBREC sent) and not yet released by PUBREL.
        self.inbound: dict[int, Message | None] | None = None
        self.next_mid = 0
        self.dropped = 0
        self.disconnected_at: float | None = None
        self.expiry_interval = 0  # MQTT 5 Session Expiry Interval, seconds
        # Publisher connections held back until this session's backlog shrinks.
        self.throttled: list[Connection] | None = None
        self.slow = False  # held publishers too long; until its queue empties it drops instead
        # The user name of its last CONNECT, and the authorizer's answers for it by topic
        # (only with an authorizer; dropped on reconnect and when the rules change).
        self.username: str | None = None
        self.readable: dict[str, bool] | None = None
        self.writable: dict[str, bool] | None = None

    def allocate_mid(self) -> int:
        """Next free packet id for an outgoing message (1..65535, skipping ids in flight)."""
        mid = self.next_mid
        inflight = self.inflight
        for _ in range(65536):
            mid = mid + 1 if mid < 65535 else 1
            if mid not in inflight:
                self.next_mid = mid
                return mid
        raise RuntimeError("no free packet id")  # unreachable: the window is far smaller

    def __repr__(self) -> str:
        return f"Session({self.client_id!r})"
