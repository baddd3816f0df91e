"""The client side of one MQTT connection, without any I/O (sans-IO).

Bytes from the broker go in with :meth:`ClientConnection.feed`; :meth:`ClientConnection.next_event`
then turns them, one packet at a time, into events (a CONNACK, a received message, an
acknowledged publish...). Calls such as :meth:`~ClientConnection.publish` queue packets; the
bytes to write are collected by :meth:`~ClientConnection.data_to_send`. Time is passed in as
``now`` (any monotonic clock in seconds); :meth:`~ClientConnection.next_deadline` says when
:meth:`~ClientConnection.handle_timer` must be called next, for keepalive pings.

QoS flows, both directions:

* outgoing QoS 1: PUBLISH -> PUBACK; QoS 2: PUBLISH -> PUBREC -> PUBREL -> PUBCOMP. At most
  ``max_inflight`` (or the broker's Receive Maximum, if smaller) are in flight; the rest wait
  in order. After a reconnect, :meth:`~ClientConnection.connect` resends every unacknowledged
  PUBLISH with DUP set and every unanswered PUBREL.
* incoming QoS 1 is acknowledged and delivered at once; incoming QoS 2 is answered with PUBREC
  and delivered once, when its PUBREL arrives (as libmosquitto does), so a re-sent PUBLISH
  before the PUBREL is never delivered twice.

Packet identifiers (libmosquitto calls them message ids, "mids") are allocated for every publish,
QoS 0 included, so debug output numbers messages the way mosquitto_pub does; only QoS 1 and 2
carry theirs on the wire.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from enum import Enum

from m2mhub.auth.enhanced import (
    ClientAuthExchange,
    ClientAuthMethod,
    Continue,
    Fail,
    Success,
)
from m2mhub.mqtt.codec import PacketReader, encode
from m2mhub.mqtt.errors import MQTTError, ProtocolError
from m2mhub.mqtt.packets import (
    MQTT_3_1,
    MQTT_5,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Properties,
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
)

RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
MAXIMUM_PACKET_SIZE = 0x27
RECEIVE_MAXIMUM_EXCEEDED = 0x93
TOPIC_ALIAS_INVALID = 0x94
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
# AUTH reason codes, and the DISCONNECT code the client leaves with when the server fails to
# authenticate itself.
AUTH_SUCCESS = 0x00
CONTINUE_AUTHENTICATION = 0x18
RE_AUTHENTICATE = 0x19
UNSPECIFIED_ERROR = 0x80

PacketTrace = Callable[[str, Packet], None]
"""Called with ``("sending", packet)`` or ``("received", packet)`` for every packet."""


class State(Enum):
    """Where the connection is in its life."""

    IDLE = "idle"  # no CONNECT sent yet, or the previous network connection is gone
    CONNECTING = "connecting"  # CONNECT sent, waiting for CONNACK
    CONNECTED = "connected"
    CLOSED = "closed"  # DISCONNECT sent or received, or refused by the broker


# --------------------------------------------------------------------------------------------
# Events


class ConnackReceived:
    """The broker answered CONNECT. ``reason_code`` 0 means accepted."""

    __slots__ = ("properties", "reason_code", "session_present")

    def __init__(self, reason_code: int, session_present: bool, properties: Properties) -> None:
        self.reason_code = reason_code
        self.session_present = session_present
        self.properties = properties

    def __repr__(self) -> str:
        return (
            f"ConnackReceived(reason_code={self.reason_code}, "
            f"session_present={self.session_present})"
        )


class MessageReceived:
    """An application message arrived (for QoS 2: its PUBREL arrived, so it is ours once)."""

    __slots__ = ("publish",)

    def __init__(self, publish: Publish) -> None:
        self.publish = publish

    def __repr__(self) -> str:
        return f"MessageReceived({self.publish!r})"


class PublishCompleted:
    """An outgoing QoS 1/2 message finished its flow (PUBACK, PUBCOMP, or a failing PUBREC).

    ``properties`` are those of that acknowledgement (MQTT 5: Reason String, User Property).
    """

    __slots__ = ("mid", "properties", "reason_code")

    def __init__(self, mid: int, reason_code: int, properties: Properties | None = None) -> None:
        self.mid = mid
        self.reason_code = reason_code
        self.properties = properties if properties is not None else {}

    def __repr__(self) -> str:
        return f"PublishCompleted(mid={self.mid}, reason_code={self.reason_code})"


class SubscribeCompleted:
    """SUBACK: one granted QoS (or failure/reason code) per requested filter.

    ``properties``: the ack's (MQTT 5).
    """

    __slots__ = ("mid", "properties", "reason_codes")

    def __init__(
        self, mid: int, reason_codes: list[int], properties: Properties | None = None
    ) -> None:
        self.mid = mid
        self.reason_codes = reason_codes
        self.properties = properties if properties is not None else {}

    def __repr__(self) -> str:
        return f"SubscribeCompleted(mid={self.mid}, reason_codes={self.reason_codes})"


class UnsubscribeCompleted:
    """UNSUBACK (reason codes only in MQTT 5; empty before).

    ``properties``: the ack's (MQTT 5).
    """

    __slots__ = ("mid", "properties", "reason_codes")

    def __init__(
        self, mid: int, reason_codes: list[int], properties: Properties | None = None
    ) -> None:
        self.mid = mid
        self.reason_codes = reason_codes
        self.properties = properties if properties is not None else {}

    def __repr__(self) -> str:
        return f"UnsubscribeCompleted(mid={self.mid}, reason_codes={self.reason_codes})"


class PongReceived:
    """PINGRESP arrived."""

    __slots__ = ()


class DisconnectReceived:
    """The broker sent DISCONNECT (MQTT 5 only)."""

    __slots__ = ("properties", "reason_code")

    def __init__(self, reason_code: int, properties: Properties) -> None:
        self.reason_code = reason_code
        self.properties = properties


class KeepaliveTimeout:
    """No PINGRESP within a keepalive period after PINGREQ: the connection is dead."""

    __slots__ = ()


class AuthenticationFailed:
    """MQTT 5 enhanced authentication failed on our side (the method refused the server's
    data, e.g. a SCRAM server signature that does not verify); DISCONNECT was queued if the
    connection was up, and the connection is CLOSED."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"AuthenticationFailed({self.reason!r})"


class ReauthenticationCompleted:
    """The broker accepted a re-authentication (AUTH 0x00) and proved itself to the method."""

    __slots__ = ("properties",)

    def __init__(self, properties: Properties) -> None:
        self.properties = properties


Event = (
    ConnackReceived
    | MessageReceived
    | PublishCompleted
    | SubscribeCompleted
    | UnsubscribeCompleted
    | PongReceived
    | DisconnectReceived
    | KeepaliveTimeout
    | AuthenticationFailed
    | ReauthenticationCompleted
)


class PublishNotAllowed(ValueError):
    """The broker's MQTT 5 CONNACK rules this PUBLISH out: ``reason`` is ``"qos"`` (above its
    Maximum QoS) or ``"size"`` (larger than its Maximum Packet Size). Nothing was queued."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


class _Outgoing:
    """One outgoing QoS 1/2 message in flight; ``released`` once PUBREL has been sent."""

    __slots__ = ("publish", "released", "sent")

    def __init__(self, publish: Publish) -> None:
        self.publish = publish
        self.sent = False
        self.released = False


# --------------------------------------------------------------------------------------------


class ClientConnection:
    """Sans-IO MQTT client state machine; one instance can live over several network connections.

    Between two network connections call :meth:`connection_lost`, then :meth:`connect` again:
    in-flight messages survive and are resent (with DUP) after the next CONNACK.
    """

    __slots__ = (
        "_auth",
        "_auth_exchange",
        "_events",
        "_in_use",
        "_inbound_aliases",
        "_incoming_qos2",
        "_inflight",
        "_last_sent",
        "_max_inflight",
        "_next_mid",
        "_out",
        "_pending_subs",
        "_pending_unsubs",
        "_ping_sent",
        "_reader",
        "_receive_maximum",
        "_server_maximum_packet_size",
        "_server_maximum_qos",
        "_server_retain_available",
        "_topic_alias_maximum",
        "_waiting",
        "clean_start",
        "client_id",
        "keepalive",
        "protocol_level",
        "session_present",
        "state",
        "trace",
    )

    def __init__(
        self,
        protocol_level: int = 4,
        *,
        max_inflight: int = 20,
        trace: PacketTrace | None = None,
    ) -> None:
        if protocol_level not in (3, 4, 5):
            raise ValueError(f"unknown MQTT protocol level {protocol_level}")
        self.protocol_level = protocol_level
        self.trace = trace
        self.state = State.IDLE
        self.client_id = ""
        self.keepalive = 0
        self.clean_start = True
        self.session_present = False
        self._max_inflight = max_inflight if max_inflight > 0 else 65535
        self._reader = PacketReader(protocol_level)
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._next_mid = 0
        self._inflight: dict[int, _Outgoing] = {}
        self._waiting: deque[_Outgoing] = deque()
        self._incoming_qos2: dict[int, Publish] = {}
        # MQTT 5, what our CONNECT offered: the broker may name topics by alias (up to
        # _topic_alias_maximum; the table lives as long as one network connection) and may
        # have at most _receive_maximum QoS 2 messages waiting for our PUBCOMP.
        self._topic_alias_maximum = 0
        self._inbound_aliases: dict[int, str] = {}
        self._receive_maximum = 65535
        # MQTT 5, what the broker's CONNACK allows us.
        self._server_maximum_qos = 2
        self._server_retain_available = True
        self._server_maximum_packet_size = 0  # no limit
        # Message ids of QoS 1/2 messages (waiting or in flight) and of unanswered (UN)SUBSCRIBEs.
        self._in_use: set[int] = set()
        self._pending_subs: set[int] = set()
        self._pending_unsubs: set[int] = set()
        self._last_sent = 0.0
        self._ping_sent: float | None = None
        self._auth: ClientAuthMethod | None = None  # MQTT 5 enhanced authentication method
        self._auth_exchange: ClientAuthExchange | None = None  # its exchange under way

    # ---------------------------------------------------------------- output

    def data_to_send(self) -> bytes:
        """Everything queued for the wire since the last call (possibly empty)."""
        if not self._out:
            return b""
        data = bytes(self._out)
        self._out.clear()
        return data

    def _send(self, packet: Packet, now: float | None = None) -> None:
        if self.trace is not None:
            self.trace("sending", packet)
        self._out += encode(packet, self.protocol_level)
        if now is not None:
            self._last_sent = now

    def _new_mid(self) -> int:
        """The next message id, skipping ids still in use (1..65535, wrapping)."""
        for _ in range(65535):
            mid = self._next_mid % 65535 + 1
            self._next_mid = mid
            if mid not in self._in_use:
                return mid
        raise ProtocolError("all 65535 packet identifiers are in use")

    # ---------------------------------------------------------------- requests

    def connect(self, connect: Connect, now: float, auth: ClientAuthMethod | None = None) -> None:
        """Queue CONNECT for a new network connection (first or reconnect).

        ``auth`` (MQTT 5 only): authenticate with this enhanced authentication method; its
        name and first data go into the CONNECT, and AUTH challenges are answered by it.
        """
        if self.state in (State.CONNECTING, State.CONNECTED):
            raise ProtocolError("already connected: call connection_lost() first")
        self._auth = auth
        self._auth_exchange = None
        if auth is not None:
            if self.protocol_level != MQTT_5:
                raise ValueError("enhanced authentication needs MQTT 5")
            self._auth_exchange = auth.start()
            connect.properties[AUTHENTICATION_METHOD] = auth.name
            data = self._auth_exchange.initial_data()
            if data is not None:
                connect.properties[AUTHENTICATION_DATA] = data
        connect.protocol_level = self.protocol_level
        if self.protocol_level == MQTT_3_1:
            connect.protocol_name = "MQIsdp"
        self.client_id = connect.client_id
        self.keepalive = connect.keepalive
        self.clean_start = connect.clean_start
        self.session_present = False
        if self.protocol_level == MQTT_5:
            self._topic_alias_maximum = connect.properties.get(TOPIC_ALIAS_MAXIMUM, 0)
            self._receive_maximum = connect.properties.get(RECEIVE_MAXIMUM) or 65535
        self._inbound_aliases.clear()
        self._server_maximum_qos = 2
        self._server_retain_available = True
        self._server_maximum_packet_size = 0
        self._reader = PacketReader(self.protocol_level)
        self._out.clear()
        self._events.clear()
        self._ping_sent = None
        self.state = State.CONNECTING
        self._send(connect, now)

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        now: float = 0.0,
        properties: Properties | None = None,
    ) -> int:
        """Queue a PUBLISH; returns its message id (QoS 1/2: the packet id on the wire).

        QoS 1/2 messages published while not connected, or beyond the in-flight window, wait
        and are sent in order as soon as they can be. What the broker's MQTT 5 CONNACK rules
        out is handled as libmosquitto does: RETAIN is cleared if Retain Available is 0, and
        :class:`PublishNotAllowed` is raised (nothing queued) for a QoS above its Maximum QoS
        or a packet larger than its Maximum Packet Size.
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"invalid QoS {qos}")
        if qos > self._server_maximum_qos:
            raise PublishNotAllowed(
                "qos", f"QoS {qos} is above the broker's Maximum QoS {self._server_maximum_qos}"
            )
        retain = retain and self._server_retain_available
        packet = Publish(topic, payload, qos, retain, False, 1 if qos else None, properties or {})
        limit = self._server_maximum_packet_size
        if limit and len(encode(packet, self.protocol_level)) > limit:
            raise PublishNotAllowed(
                "size", f"the PUBLISH is larger than the broker's Maximum Packet Size {limit}"
            )
        mid = self._new_mid()
        packet.packet_id = mid
        if qos == 0:
            if self.state is State.CONNECTED:
                self._send(packet, now)
            return mid
        out = _Outgoing(packet)
        self._in_use.add(mid)
        if self.state is State.CONNECTED and len(self._inflight) < self._max_inflight:
            self._inflight[mid] = out
            out.sent = True
            self._send(packet, now)
        else:
            self._waiting.append(out)
        return mid

    def subscribe(
        self,
        subscriptions: Iterable[tuple[str, int | SubscriptionOptions]],
        now: float,
        properties: Properties | None = None,
    ) -> int:
        """Queue SUBSCRIBE for ``(filter, qos or SubscriptionOptions)`` pairs; returns its mid."""
        self._require_connected()
        subs = [
            (f, o if isinstance(o, SubscriptionOptions) else SubscriptionOptions(qos=o))
            for f, o in subscriptions
        ]
        if not subs:
            raise ValueError("SUBSCRIBE needs at least one topic filter")
        mid = self._new_mid()
        self._pending_subs.add(mid)
        self._in_use.add(mid)
        self._send(Subscribe(mid, subs, properties or {}), now)
        return mid

    def unsubscribe(
        self, topic_filters: Iterable[str], now: float, properties: Properties | None = None
    ) -> int:
        """Queue UNSUBSCRIBE; returns its mid."""
        self._require_connected()
        filters = list(topic_filters)
        if not filters:
            raise ValueError("UNSUBSCRIBE needs at least one topic filter")
        mid = self._new_mid()
        self._pending_unsubs.add(mid)
        self._in_use.add(mid)
        self._send(Unsubscribe(mid, filters, properties or {}), now)
        return mid

    def disconnect(
        self, now: float, reason_code: int = 0, properties: Properties | None = None
    ) -> None:
        """Queue DISCONNECT (if connected); afterwards the connection is CLOSED."""
        if self.state is State.CONNECTED:
            self._send(Disconnect(reason_code, properties or {}), now)
        self.state = State.CLOSED

    def reauthenticate(self, now: float) -> None:
        """Queue AUTH 0x19: authenticate again with the CONNECT's method (MQTT 5). The result
        is a :class:`ReauthenticationCompleted` event, or the broker's DISCONNECT."""
        self._require_connected()
        if self._auth is None:
            raise ProtocolError("re-authentication needs the method used to connect")
        if self._auth_exchange is not None:
            raise ProtocolError("a re-authentication is already in progress")
        exchange = self._auth_exchange = self._auth.start()
        self._send_auth(RE_AUTHENTICATE, exchange.initial_data(), now)

    def _send_auth(self, code: int, data: bytes | None, now: float) -> None:
        assert self._auth is not None
        props: Properties = {AUTHENTICATION_METHOD: self._auth.name}
        if data is not None:
            props[AUTHENTICATION_DATA] = data
        self._send(Auth(code, props), now)

    def connection_lost(self) -> None:
        """The network connection is gone; unacknowledged messages wait for the next one."""
        for mid in list(self._inflight):
            out = self._inflight[mid]
            if not out.released:
                out.publish.dup = out.sent or out.publish.dup
        self._in_use.difference_update(self._pending_subs)
        self._in_use.difference_update(self._pending_unsubs)
        self._pending_subs.clear()
        self._pending_unsubs.clear()
        self._ping_sent = None
        if self.state is not State.CLOSED:
            self.state = State.IDLE

    def _require_connected(self) -> None:
        if self.state is not State.CONNECTED:
            raise ProtocolError(f"not connected (state {self.state.value})")

    # ---------------------------------------------------------------- timers

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or None if never."""
        if self.state is not State.CONNECTED or not self.keepalive:
            return None
        if self._ping_sent is not None:
            return self._ping_sent + self.keepalive
        return self._last_sent + self.keepalive

    def handle_timer(self, now: float) -> None:
        """Send PINGREQ when nothing was sent for a keepalive period; detect a dead broker."""
        if self.state is not State.CONNECTED or not self.keepalive:
            return
        if self._ping_sent is not None:
            if now >= self._ping_sent + self.keepalive:
                self._ping_sent = None
                self._events.append(KeepaliveTimeout())
            return
        if now >= self._last_sent + self.keepalive:
            self._ping_sent = now
            self._send(Pingreq(), now)

    # ---------------------------------------------------------------- input

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes received from the broker; collect the results with :meth:`next_event`."""
        self._reader.feed(data)

    def next_event(self, now: float = 0.0) -> Event | None:
        """Handle received packets until one produces an event; None when all are handled.

        Raises an :class:`~m2mhub.mqtt.errors.MQTTError` for bytes or packets a broker must not
        send; the network connection should then be closed. In MQTT 5 a DISCONNECT carrying
        the error's reason code (0x81 malformed, 0x82 protocol error, 0x93 receive maximum
        exceeded, 0x94 topic alias invalid...) is queued first: send it before closing.
        """
        events = self._events
        if events:
            return events.popleft()
        reader = self._reader
        try:
            while (packet := reader.next_packet()) is not None:
                event = self._handle(packet, now)
                if event is not None:
                    return event
                if events:
                    return events.popleft()
        except MQTTError as exc:
            if self.protocol_level == MQTT_5 and self.state is State.CONNECTED:
                self._send(Disconnect(exc.reason_code), now)
            self.state = State.CLOSED
            raise
        return None

    def receive_data(self, data: bytes, now: float = 0.0) -> list[Event]:
        """Feed ``data`` and return all resulting events (convenience for tests)."""
        self.feed(data)
        result: list[Event] = []
        while (event := self.next_event(now)) is not None:
            result.append(event)
        return result

    def _handle(self, packet: Packet, now: float) -> Event | None:
        if self.trace is not None and not isinstance(packet, Connack):
            self.trace("received", packet)
        if isinstance(packet, Publish):
            return self._on_publish(packet, now)
        if isinstance(packet, Puback):
            return self._on_puback(packet, now)
        if isinstance(packet, Pubrec):
            return self._on_pubrec(packet, now)
        if isinstance(packet, Pubrel):
            return self._on_pubrel(packet, now)
        if isinstance(packet, Pubcomp):
            return self._on_pubcomp(packet, now)
        if isinstance(packet, Connack):
            return self._on_connack(packet, now)
        if isinstance(packet, Suback):
            self._pending_subs.discard(packet.packet_id)
            self._in_use.discard(packet.packet_id)
            return SubscribeCompleted(packet.packet_id, packet.reason_codes, packet.properties)
        if isinstance(packet, Unsuback):
            self._pending_unsubs.discard(packet.packet_id)
            self._in_use.discard(packet.packet_id)
            return UnsubscribeCompleted(packet.packet_id, packet.reason_codes, packet.properties)
        if isinstance(packet, Pingresp):
            self._ping_sent = None
            return PongReceived()
        if isinstance(packet, Disconnect):
            self.state = State.CLOSED
            return DisconnectReceived(packet.reason_code, packet.properties)
        if isinstance(packet, Auth):
            return self._on_auth(packet, now)
        raise ProtocolError(f"a broker must not send {packet.packet_type.name}")

    def _on_connack(self, packet: Connack, now: float) -> Event:
        if self.state is not State.CONNECTING:
            raise ProtocolError("CONNACK while not connecting")
        assigned = packet.properties.get(ASSIGNED_CLIENT_IDENTIFIER)
        if isinstance(assigned, str):
            self.client_id = assigned
        if self.trace is not None:
            self.trace("received", packet)
        if packet.reason_code != 0:
            self.state = State.CLOSED
            return ConnackReceived(packet.reason_code, packet.session_present, packet.properties)
        if self._auth is not None:
            refused = self._auth_finished(packet.properties, now, connected=False)
            if refused is not None:
                return refused
        self.state = State.CONNECTED
        self.session_present = packet.session_present
        server_keepalive = packet.properties.get(SERVER_KEEP_ALIVE)
        if isinstance(server_keepalive, int):
            self.keepalive = server_keepalive
        receive_maximum = packet.properties.get(RECEIVE_MAXIMUM)
        if isinstance(receive_maximum, int) and receive_maximum < self._max_inflight:
            self._max_inflight = receive_maximum
        self._server_maximum_qos = packet.properties.get(MAXIMUM_QOS, 2)
        self._server_retain_available = bool(packet.properties.get(RETAIN_AVAILABLE, 1))
        self._server_maximum_packet_size = packet.properties.get(MAXIMUM_PACKET_SIZE, 0)
        if self.clean_start and not packet.session_present:
            self._incoming_qos2.clear()
        self._resend(now)
        self._pump(now)
        return ConnackReceived(0, packet.session_present, packet.properties)

    def _on_auth(self, packet: Auth, now: float) -> Event | None:
        """AUTH from the broker: a challenge (0x18) or a re-authentication's success (0x00)."""
        exchange = self._auth_exchange
        if self._auth is None or exchange is None:
            raise ProtocolError("AUTH without an authentication in progress")
        if packet.properties.get(AUTHENTICATION_METHOD) != self._auth.name:
            raise ProtocolError("AUTH with another authentication method")
        if packet.reason_code == CONTINUE_AUTHENTICATION:
            step = exchange.step(packet.properties.get(AUTHENTICATION_DATA))
            if isinstance(step, Continue):
                self._send_auth(CONTINUE_AUTHENTICATION, step.data, now)
                return None
            return self._auth_failed(step.reason if isinstance(step, Fail) else "", now)
        if packet.reason_code == AUTH_SUCCESS and self.state is State.CONNECTED:
            return self._auth_finished(packet.properties, now, connected=True)
        raise ProtocolError(f"AUTH with reason code 0x{packet.reason_code:02X} from a broker")

    def _auth_finished(self, properties: Properties, now: float, connected: bool) -> Event | None:
        """The broker said success (CONNACK 0 or AUTH 0x00): the method checks its final data.
        Returns the event to report, or None for an accepted CONNACK (handled by the caller)."""
        assert self._auth is not None
        exchange = self._auth_exchange
        self._auth_exchange = None
        if properties.get(AUTHENTICATION_METHOD) != self._auth.name:
            return self._auth_failed("the broker did not confirm the authentication method", now)
        result = (
            exchange.finish(properties.get(AUTHENTICATION_DATA))
            if exchange is not None
            else Fail("the broker accepted without an authentication in progress")
        )
        if isinstance(result, Success):
            return ReauthenticationCompleted(properties) if connected else None
        return self._auth_failed(result.reason, now)

    def _auth_failed(self, reason: str, now: float) -> AuthenticationFailed:
        self._auth_exchange = None
        if self.state is State.CONNECTED or self.state is State.CONNECTING:
            self._send(Disconnect(UNSPECIFIED_ERROR), now)
        self.state = State.CLOSED
        return AuthenticationFailed(reason or "authentication failed")

    def _resend(self, now: float) -> None:
        for out in self._inflight.values():
            if out.released:
                self._send(Pubrel(out.publish.packet_id or 0), now)
            else:
                out.publish.dup = out.sent or out.publish.dup
                out.sent = True
                self._send(out.publish, now)

    def _pump(self, now: float) -> None:
        """Move waiting messages into the in-flight window."""
        waiting = self._waiting
        inflight = self._inflight
        while waiting and len(inflight) < self._max_inflight:
            out = waiting.popleft()
            mid = out.publish.packet_id or 0
            inflight[mid] = out
            out.sent = True
            self._send(out.publish, now)

    def _on_publish(self, packet: Publish, now: float) -> Event | None:
        if self.protocol_level == MQTT_5 and TOPIC_ALIAS in packet.properties:
            self._resolve_alias(packet)
        qos = packet.qos
        if qos == 0:
            return MessageReceived(packet)
        pid = packet.packet_id or 0
        if qos == 1:
            self._send(Puback(pid), now)
            return MessageReceived(packet)
        if pid not in self._incoming_qos2:
            if len(self._incoming_qos2) >= self._receive_maximum:
                raise ProtocolError(
                    f"more than Receive Maximum ({self._receive_maximum}) QoS 2 messages "
                    "awaiting PUBCOMP",
                    RECEIVE_MAXIMUM_EXCEEDED,
                )
            self._incoming_qos2[pid] = packet
        self._send(Pubrec(pid), now)
        return None

    def _resolve_alias(self, packet: Publish) -> None:
        """Server-to-client topic alias: a topic sets the alias, an empty topic uses it."""
        alias = packet.properties[TOPIC_ALIAS]
        if not 0 < alias <= self._topic_alias_maximum:
            raise ProtocolError(
                f"topic alias {alias} outside 1..{self._topic_alias_maximum}",
                TOPIC_ALIAS_INVALID,
            )
        if packet.topic:
            self._inbound_aliases[alias] = packet.topic
            return
        topic = self._inbound_aliases.get(alias)
        if topic is None:
            raise ProtocolError(f"PUBLISH with unknown topic alias {alias} and no topic")
        packet.topic = topic

    def _on_pubrel(self, packet: Pubrel, now: float) -> Event | None:
        pid = packet.packet_id
        message = self._incoming_qos2.pop(pid, None)
        if message is None and self.protocol_level == MQTT_5:
            self._send(Pubcomp(pid, 0x92), now)  # Packet Identifier not found
        else:
            self._send(Pubcomp(pid), now)
        return MessageReceived(message) if message is not None else None

    def _on_puback(self, packet: Puback, now: float) -> Event | None:
        out = self._inflight.get(packet.packet_id)
        if out is None or out.publish.qos != 1:
            return None  # a late or unknown ack: nothing waits for it
        self._complete(packet.packet_id, now)
        return PublishCompleted(packet.packet_id, packet.reason_code, packet.properties)

    def _on_pubrec(self, packet: Pubrec, now: float) -> Event | None:
        pid = packet.packet_id
        out = self._inflight.get(pid)
        if out is None or out.publish.qos != 2:
            if self.protocol_level == MQTT_5:
                self._send(Pubrel(pid, 0x92), now)
            else:
                self._send(Pubrel(pid), now)
            return None
        if packet.reason_code >= 0x80:
            self._complete(pid, now)
            return PublishCompleted(pid, packet.reason_code, packet.properties)
        out.released = True
        self._send(Pubrel(pid), now)
        return None

    def _on_pubcomp(self, packet: Pubcomp, now: float) -> Event | None:
        out = self._inflight.get(packet.packet_id)
        if out is None or not out.released:
            return None
        self._complete(packet.packet_id, now)
        return PublishCompleted(packet.packet_id, packet.reason_code, packet.properties)

    def _complete(self, mid: int, now: float) -> None:
        del self._inflight[mid]
        self._in_use.discard(mid)
        self._pump(now)

    # ---------------------------------------------------------------- introspection

    @property
    def inflight_count(self) -> int:
        """Outgoing QoS 1/2 messages sent and not yet completed."""
        return len(self._inflight)

    @property
    def waiting_count(self) -> int:
        """Outgoing QoS 1/2 messages waiting for room in the in-flight window."""
        return len(self._waiting)

    @property
    def is_mqtt5(self) -> bool:
        """True when speaking MQTT 5.0 (reason codes and properties on the wire)."""
        return self.protocol_level == MQTT_5
