"""One network connection as the broker core sees it: a sink, a reader and an out-buffer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from m2mhub.mqtt.codec import PacketReader
from m2mhub.mqtt.packets import Will

if TYPE_CHECKING:
    from m2mhub.hub.aliases import OutboundAliases
    from m2mhub.hub.enhanced_auth import AuthFlow
    from m2mhub.hub.session import Session

# Connection states.
NEW = 0  # waiting for CONNECT
CONNECTED = 1
CLOSED = 2


class Sink(Protocol):
    """Where a connection's bytes go: an asyncio transport or a test double."""

    def write(self, data: Any) -> None: ...

    def close(self) -> None: ...

    def get_write_buffer_size(self) -> int: ...


# Sinks may also offer ``pause_reading()`` / ``resume_reading()`` (asyncio transports do): the
# broker uses them to hold back publishers that outpace a receiver's in-flight window.


class Connection:
    """Broker-side state of one connection; created by ``Broker.connection_made``."""

    __slots__ = (
        "aliases",
        "auth",
        "client_id",
        "credentials",
        "dirty",
        "inherited",
        "keepalive",
        "last_seen",
        "listener_port",
        "max_packet",
        "out",
        "out_aliases",
        "paused",
        "peer",
        "problem_info",
        "protocol_level",
        "reader",
        "session",
        "sink",
        "state",
        "throttles",
        "timer_at",
        "username",
        "will",
    )

    def __init__(self, sink: Sink, peer: str, listener_port: int, now: float) -> None:
        self.sink = sink
        self.peer = peer  # "host:port"
        self.listener_port = listener_port
        self.reader = PacketReader()
        self.out = bytearray()
        self.dirty = False
        self.paused = False
        self.state = NEW
        self.client_id: str | None = None
        self.protocol_level = 4
        self.keepalive = 0
        self.last_seen = now
        self.session: Session | None = None
        self.username: str | None = None
        self.will: Will | None = None
        self.timer_at = 0.0  # the live timer entry's time (older heap entries are stale)
        self.throttles = 0  # sessions currently holding back reading from this connection
        self.aliases: dict[int, str] | None = None  # MQTT 5 inbound topic aliases
        # Topic aliases we assign to what we send (5.0 clients with Topic Alias Maximum > 0).
        self.out_aliases: OutboundAliases | None = None
        self.max_packet = 0  # 5.0 client's Maximum Packet Size (0: the protocol's)
        # Inbound QoS 2 packet ids left over from an earlier connection of the session.
        self.inherited: set[int] | None = None
        # 5.0 enhanced authentication, if the CONNECT named an Authentication Method.
        self.auth: AuthFlow | None = None
        # 5.0 Request Problem Information: False when the client asked for no Reason Strings.
        self.problem_info = True
        # The user name and password the authenticator accepted, kept to check them again
        # when the password file is re-read; None for anonymous and enhanced-auth clients.
        self.credentials: tuple[str, bytes | None] | None = None

    @property
    def host(self) -> str:
        """The peer address without the port (mosquitto names clients so before CONNECT)."""
        return self.peer.rsplit(":", 1)[0] if ":" in self.peer else self.peer

    @property
    def name(self) -> str:
        """The client id; before CONNECT mosquitto's ``<unknown>`` plus the peer address."""
        return self.client_id if self.client_id is not None else f"<unknown> ({self.peer})"

    def __repr__(self) -> str:
        return f"Connection({self.peer}, {self.client_id!r})"
