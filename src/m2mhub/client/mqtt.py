"""An asyncio MQTT client (3.1, 3.1.1 and 5.0) on top of the sans-IO :class:`ClientConnection`.

Example::

    import asyncio
    from m2mhub.client import MQTTClient

    async def main() -> None:
        async with MQTTClient() as client:
            await client.connect("localhost", 1883, client_id="Sub1", clean_session=False)
            await client.subscribe([("test/#", 1)])
            await client.publish("test/message", b"MESSAGE 1", qos=1)
            async for message in client.messages():
                print(message.topic, message.payload)
                break

    asyncio.run(main())

Each awaitable completes when its MQTT flow does: :meth:`MQTTClient.publish` when the PUBACK
(QoS 1) or PUBCOMP (QoS 2) arrives, :meth:`MQTTClient.subscribe` with the SUBACK's granted QoS
list. A refused connection raises :class:`ConnectionRefusedByBroker` carrying the CONNACK code.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from m2mhub.auth.enhanced import ClientAuthMethod
from m2mhub.client.connection import (
    AuthenticationFailed,
    ClientConnection,
    ConnackReceived,
    DisconnectReceived,
    Event,
    KeepaliveTimeout,
    MessageReceived,
    PublishCompleted,
    PublishNotAllowed,
    ReauthenticationCompleted,
    State,
    SubscribeCompleted,
    UnsubscribeCompleted,
)
from m2mhub.client.properties import MQTTProperties
from m2mhub.mqtt.errors import MQTTError
from m2mhub.mqtt.packets import (
    MQTT_3_1,
    MQTT_5,
    Connect,
    Packet,
    Properties,
    SubscriptionOptions,
    Will,
)
from m2mhub.mqtt.reason_codes import connack_string, reason_string

__all__ = [
    "AuthenticationError",
    "BrokerDisconnected",
    "ConnectionLostError",
    "ConnectionRefusedByBroker",
    "MQTTClient",
    "MQTTClientError",
    "MQTTProperties",
    "Message",
    "PublishFailed",
    "PublishNotAllowed",
    "PublishResult",
    "SubscribeResult",
    "UnsubscribeResult",
    "Will",
]

PacketLogger = Callable[[str, Packet, str], None]
"""``(direction, packet, client_id)`` for every packet; direction is "sending" or "received"."""


class MQTTClientError(Exception):
    """Base class of the client's own errors."""


class ConnectionRefusedByBroker(MQTTClientError):
    """The broker answered CONNECT with a non-zero code.

    ``code`` is the CONNACK return code (3.1/3.1.1: 1-5) or MQTT 5 reason code (>= 0x80);
    ``str(exc)`` is mosquitto's text for it ("Connection Refused: not authorised.").
    """

    def __init__(self, code: int, protocol_level: int, properties: Properties) -> None:
        self.code = code
        self.protocol_level = protocol_level
        self.properties = MQTTProperties(properties)
        # MQTT 5: the broker's own explanation, if it sent one (not part of str(exc), which is
        # mosquitto's text for the code, as m2mhub pub/sub print it).
        self.reason_string: str | None = self.properties.reason_string
        text = reason_string(code) if protocol_level == MQTT_5 else connack_string(code)
        super().__init__(text)


class ConnectionLostError(MQTTClientError):
    """The network connection closed (or the broker sent DISCONNECT) while in use.

    ``reason_code`` is the MQTT 5 DISCONNECT reason code when the broker sent one (or the one
    we sent when the broker broke the protocol), else None; ``reason_string`` and
    ``properties`` are those of the broker's DISCONNECT.
    """

    def __init__(
        self,
        text: str,
        reason_code: int | None = None,
        properties: Properties | None = None,
    ) -> None:
        super().__init__(text)
        self.reason_code = reason_code
        self.properties = MQTTProperties(properties)
        self.reason_string: str | None = self.properties.reason_string


class BrokerDisconnected(ConnectionLostError):
    """The broker ended the connection with an MQTT 5 DISCONNECT (``reason_code`` is always
    set): the connection did not break, so a client may choose not to reconnect."""


class AuthenticationError(MQTTClientError):
    """MQTT 5 enhanced authentication failed on the client's side: the method refused the
    broker's data (for SCRAM-SHA-256: the broker could not prove it knows the password).
    The client has sent DISCONNECT and closed."""


class PublishFailed(MQTTClientError):
    """An MQTT 5 broker acknowledged a publish with a failure reason code (>= 0x80)."""

    def __init__(self, mid: int, reason_code: int, properties: Properties | None = None) -> None:
        self.properties = MQTTProperties(properties)
        self.reason_string: str | None = self.properties.reason_string
        detail = f" ({self.reason_string})" if self.reason_string else ""
        super().__init__(f"publish {mid} failed: {reason_string(reason_code)}{detail}")
        self.mid = mid
        self.reason_code = reason_code


class PublishResult(int):
    """What :meth:`MQTTClient.publish` returns: the reason code (an ``int``, 0 for QoS 0 and
    before MQTT 5) with the acknowledgement's ``reason_string`` and ``properties``."""

    mid: int
    properties: MQTTProperties

    def __new__(cls, reason_code: int, mid: int = 0, properties: Properties | None = None) -> Self:
        result = super().__new__(cls, reason_code)
        result.mid = mid
        result.properties = MQTTProperties(properties)
        return result

    @property
    def reason_code(self) -> int:
        return int(self)

    @property
    def reason_string(self) -> str | None:
        return self.properties.reason_string


class SubscribeResult(list[int]):
    """What :meth:`MQTTClient.subscribe` returns: the SUBACK's list of granted QoS / reason
    codes (0x80 and up: refused), with its ``mid``, ``reason_string`` and ``properties``."""

    def __init__(self, codes: list[int], mid: int = 0, properties: Properties | None = None):
        super().__init__(codes)
        self.mid = mid
        self.properties = MQTTProperties(properties)

    @property
    def reason_codes(self) -> list[int]:
        return list(self)

    @property
    def reason_string(self) -> str | None:
        return self.properties.reason_string


class UnsubscribeResult(SubscribeResult):
    """What :meth:`MQTTClient.unsubscribe` returns: the UNSUBACK's reason codes (MQTT 5; an
    empty list before), with ``mid``, ``reason_string`` and ``properties``."""


@dataclass(slots=True)
class Message:
    """A received application message."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    # MQTT 5 properties, by name (``message.properties.content_type``) or identifier.
    properties: MQTTProperties = field(default_factory=MQTTProperties)
    mid: int = 0  # the packet identifier it arrived with (0 for QoS 0)


def random_client_id(prefix: str = "mosq-") -> str:
    """A random client id shaped like libmosquitto's (``mosq-`` and 18 letters/digits)."""
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(18))


_END = None  # put into the message queue when the connection ends
TOPIC_ALIAS_MAXIMUM = 0x22
RECEIVE_MAXIMUM = 0x21
REASON_STRING = 0x1F
_REAUTH = 0  # the waiter key of a re-authentication (message ids start at 1)


class _Protocol(asyncio.Protocol):
    __slots__ = ("client",)

    def __init__(self, client: MQTTClient) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client._data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._connection_lost(exc)


class MQTTClient:
    """An asyncio MQTT client. Create, :meth:`connect`, use, :meth:`disconnect`.

    ``on_message``, if given, is called for each received message as soon as it is handled
    (in packet order, between the debug lines of the packets around it); otherwise messages
    are queued for :meth:`messages`. ``on_packet`` sees every packet sent and received
    (``m2mhub.client.debug_log.packet_log_lines`` turns it into mosquitto's ``-d`` lines).
    ``on_subscribe(mid, granted)`` is likewise called as each SUBACK is handled.
    ``max_inflight`` bounds outgoing QoS 1/2 messages awaiting acknowledgement.
    """

    def __init__(
        self,
        *,
        on_message: Callable[[Message], None] | None = None,
        on_packet: PacketLogger | None = None,
        on_subscribe: Callable[[int, list[int]], None] | None = None,
        max_inflight: int = 20,
    ) -> None:
        self.on_message = on_message
        self.on_subscribe = on_subscribe
        self.on_packet = on_packet
        self._max_inflight = max_inflight
        self._conn: ClientConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.Transport | None = None
        self._connack: asyncio.Future[ConnackReceived] | None = None
        self._waiters: dict[int, asyncio.Future[object]] = {}
        self._messages: asyncio.Queue[Message | None] = asyncio.Queue()
        self._closed: asyncio.Event = asyncio.Event()
        self._closed.set()
        self._timer: asyncio.TimerHandle | None = None
        self._error: MQTTClientError | None = None
        self._stopping = False
        # The broker's CONNACK properties (MQTT 5): assigned_client_identifier,
        # server_keep_alive, receive_maximum, topic_alias_maximum, maximum_packet_size...
        self.connack_properties = MQTTProperties()
        self.session_present = False

    # ---------------------------------------------------------------- properties

    @property
    def client_id(self) -> str:
        """The client id in use: the one given, or the one an MQTT 5 broker assigned."""
        return self._conn.client_id if self._conn is not None else ""

    @property
    def connected(self) -> bool:
        """True between a successful CONNACK and the end of the connection."""
        return self._conn is not None and self._conn.state is State.CONNECTED

    @property
    def protocol_level(self) -> int:
        """3, 4 or 5: the MQTT version of the last connect() (4 before any)."""
        return self._conn.protocol_level if self._conn is not None else 4

    # ---------------------------------------------------------------- life

    async def __aenter__(self) -> MQTTClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    async def connect(
        self,
        host: str = "localhost",
        port: int = 1883,
        client_id: str = "",
        *,
        clean_session: bool = True,
        keepalive: int = 60,
        will: Will | None = None,
        username: str | None = None,
        password: str | bytes | None = None,
        protocol: int = 4,
        properties: Properties | None = None,
        timeout: float | None = None,
        bind_address: str | None = None,
        unix_path: str | None = None,
        auth: ClientAuthMethod | None = None,
        topic_alias_maximum: int = 0,
        receive_maximum: int | None = None,
    ) -> bool:
        """Open the TCP connection, send CONNECT and wait for CONNACK; returns session present.

        ``protocol`` is the protocol level: 3 (MQTT 3.1), 4 (3.1.1) or 5 (5.0). With
        ``unix_path`` the broker is reached through that unix domain socket instead of TCP.
        Calling it again after the connection was lost resumes: unacknowledged QoS 1/2 messages are
        resent with DUP set once the broker accepts. Raises :class:`ConnectionRefusedByBroker`
        for a refusal, :class:`OSError` when the broker cannot be reached (for example
        ``ConnectionRefusedError``), :class:`ConnectionLostError` if it hangs up first.

        ``auth`` (MQTT 5): an enhanced authentication method, e.g.
        ``m2mhub.auth.scram.ScramSha256Client(user, password)``; a broker that does not know
        it refuses with 0x8C, a wrong password gives 0x86 (SCRAM), and a broker that fails to
        prove itself raises :class:`AuthenticationError`.
        """
        if self._transport is not None:
            raise MQTTClientError("already connected")
        loop = asyncio.get_running_loop()
        self._loop = loop
        conn = self._conn
        if conn is None or conn.protocol_level != protocol:
            conn = ClientConnection(protocol, max_inflight=self._max_inflight)
            self._conn = conn
        on_packet = self.on_packet
        if on_packet is not None:
            conn.trace = lambda direction, packet: on_packet(direction, packet, conn.client_id)
        self._error = None
        self._stopping = False
        self._drop_end_markers()
        if isinstance(password, str):
            password = password.encode("utf-8")
        if protocol == MQTT_3_1 and not client_id:
            client_id = random_client_id()  # 3.1 brokers refuse an empty id; libmosquitto too
        if unix_path is not None:
            transport, _ = await loop.create_unix_connection(lambda: _Protocol(self), unix_path)
        else:
            transport, _ = await loop.create_connection(
                lambda: _Protocol(self),
                host,
                port,
                local_addr=(bind_address, 0) if bind_address else None,
            )
        self._transport = transport
        self._closed.clear()
        self._connack = loop.create_future()
        conn.connect(
            Connect(
                protocol_level=protocol,
                client_id=client_id,
                clean_start=clean_session,
                keepalive=keepalive,
                will=will,
                username=username,
                password=password,
                properties=self._connect_properties(
                    protocol, properties, topic_alias_maximum, receive_maximum
                ),
            ),
            loop.time(),
            auth,
        )
        self._flush()
        try:
            connack = await asyncio.wait_for(asyncio.shield(self._connack), timeout)
        except BaseException:
            self._abort()
            raise
        if connack.reason_code != 0:
            self._abort()
            raise ConnectionRefusedByBroker(connack.reason_code, protocol, connack.properties)
        self.connack_properties = MQTTProperties(connack.properties)
        self.session_present = connack.session_present
        self._schedule_timer()
        return connack.session_present

    @staticmethod
    def _connect_properties(
        protocol: int,
        properties: Properties | None,
        topic_alias_maximum: int,
        receive_maximum: int | None,
    ) -> Properties:
        props = MQTTProperties(properties)
        if protocol != MQTT_5:
            return props
        if topic_alias_maximum:
            props.setdefault(TOPIC_ALIAS_MAXIMUM, topic_alias_maximum)
        if receive_maximum is not None:
            props.setdefault(RECEIVE_MAXIMUM, receive_maximum)
        return props

    async def reauthenticate(self, timeout: float | None = None) -> Properties:
        """MQTT 5 re-authentication (AUTH 0x19) with the method given to :meth:`connect`;
        returns the properties of the broker's AUTH 0x00. A refusal ends the connection
        (:class:`ConnectionLostError` with the DISCONNECT reason code, e.g. 0x87)."""
        conn = self._require()
        waiter: asyncio.Future[object] = self._loop_().create_future()
        conn.reauthenticate(self._now())
        self._waiters[_REAUTH] = waiter
        self._flush()
        result = await asyncio.wait_for(waiter, timeout)
        assert isinstance(result, dict)
        return result

    async def disconnect(self, reason_code: int = 0, properties: Properties | None = None) -> None:
        """Send DISCONNECT (the broker then drops the will) and close; safe to call twice."""
        conn, transport = self._conn, self._transport
        if conn is not None and transport is not None:
            self._stopping = True
            if conn.state is State.CONNECTED:
                conn.disconnect(self._now(), reason_code, properties)
                self._flush()
            transport.close()
        await self._closed.wait()

    def disconnect_nowait(self, reason_code: int = 0, properties: Properties | None = None) -> None:
        """Like :meth:`disconnect` without waiting for the socket to close (for callbacks)."""
        conn, transport = self._conn, self._transport
        if conn is not None and transport is not None:
            self._stopping = True
            if conn.state is State.CONNECTED:
                conn.disconnect(self._now(), reason_code, properties)
                self._flush()
            transport.close()

    def abort(self) -> None:
        """Close the socket without DISCONNECT, as a crashed client would (the will is sent)."""
        self._stopping = True
        self._abort()

    async def wait_closed(self) -> None:
        """Wait until the network connection has closed, for whatever reason."""
        await self._closed.wait()

    @property
    def error(self) -> MQTTClientError | None:
        """Why the last connection ended, if it was not our own disconnect."""
        return self._error

    # ---------------------------------------------------------------- operations

    def publish_nowait(
        self,
        topic: str,
        payload: bytes | str = b"",
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> asyncio.Future[PublishResult]:
        """Queue a message; the future gives the :class:`PublishResult` (0 at once for QoS 0).

        Lets a caller pipeline many QoS 1/2 messages, as ``mosquitto_pub -l`` does.
        """
        conn = self._require()
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        mid = conn.publish(topic, payload, qos, retain, self._now(), properties)
        self._flush()
        future: asyncio.Future[PublishResult] = self._loop_().create_future()
        if qos == 0:
            future.set_result(PublishResult(0, mid))
        else:
            self._waiters[mid] = future  # type: ignore[assignment]
        return future

    async def publish(
        self,
        topic: str,
        payload: bytes | str = b"",
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> PublishResult:
        """Publish and wait for the QoS flow to finish; returns the (MQTT 5) reason code.

        The result is an ``int`` (0x00 success, 0x10 no matching subscribers...) that also
        carries the acknowledgement's ``reason_string`` and ``properties``. ``properties`` to
        send: an :class:`MQTTProperties` (``MQTTProperties(content_type="text/plain")``) or a
        ``{identifier: value}`` dict. Raises :class:`PublishFailed` (with the reason code and
        string) if an MQTT 5 broker answers with a failure code.
        """
        return await self.publish_nowait(topic, payload, qos, retain, properties)

    def subscribe_nowait(
        self,
        subscriptions: Iterable[tuple[str, int | SubscriptionOptions]],
        properties: Properties | None = None,
    ) -> tuple[int, asyncio.Future[SubscribeResult]]:
        """Send SUBSCRIBE now; returns its mid and a future of the :class:`SubscribeResult`."""
        conn = self._require()
        mid = conn.subscribe(subscriptions, self._now(), properties)
        future: asyncio.Future[SubscribeResult] = self._loop_().create_future()
        self._waiters[mid] = future  # type: ignore[assignment]
        self._flush()
        return mid, future

    async def subscribe(
        self,
        subscriptions: Iterable[tuple[str, int | SubscriptionOptions]],
        properties: Properties | None = None,
    ) -> SubscribeResult:
        """Subscribe to ``(filter, qos or SubscriptionOptions)`` pairs; returns the granted QoS
        per filter (0x80 and up: refused), a list carrying the SUBACK's ``reason_string`` and
        ``properties``. ``properties``: e.g. ``MQTTProperties(subscription_identifiers=[7])``."""
        return await self.subscribe_nowait(subscriptions, properties)[1]

    def unsubscribe_nowait(
        self, topic_filters: Iterable[str], properties: Properties | None = None
    ) -> tuple[int, asyncio.Future[UnsubscribeResult]]:
        """Send UNSUBSCRIBE now; returns its mid and a future of the :class:`UnsubscribeResult`."""
        conn = self._require()
        mid = conn.unsubscribe(topic_filters, self._now(), properties)
        future: asyncio.Future[UnsubscribeResult] = self._loop_().create_future()
        self._waiters[mid] = future  # type: ignore[assignment]
        self._flush()
        return mid, future

    async def unsubscribe(
        self, topic_filters: Iterable[str], properties: Properties | None = None
    ) -> UnsubscribeResult:
        """Unsubscribe; returns the MQTT 5 reason codes (an empty list before MQTT 5), with the
        UNSUBACK's ``reason_string`` and ``properties``."""
        return await self.unsubscribe_nowait(topic_filters, properties)[1]

    async def messages(self) -> AsyncIterator[Message]:
        """Received messages, in order, until the connection ends.

        Ends quietly after :meth:`disconnect`; raises :class:`ConnectionLostError` if the
        connection was lost.
        """
        while True:
            message = await self._messages.get()
            if message is None:
                if self._error is not None:
                    raise self._error
                return
            yield message

    async def next_message(self, timeout: float | None = None) -> Message:
        """The next received message; ``TimeoutError`` after ``timeout`` seconds."""
        message = await asyncio.wait_for(self._messages.get(), timeout)
        if message is None:
            self._messages.put_nowait(None)  # later readers see the end too
            raise self._error or ConnectionLostError("connection closed")
        return message

    # ---------------------------------------------------------------- internals

    def _loop_(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _require(self) -> ClientConnection:
        conn = self._conn
        if conn is None or self._transport is None or conn.state is not State.CONNECTED:
            raise self._error or MQTTClientError("not connected")
        return conn

    def _drop_end_markers(self) -> None:
        """Forget the previous connection's end; keep its unread messages."""
        queue = self._messages
        kept = [m for m in (queue.get_nowait() for _ in range(queue.qsize())) if m is not None]
        for message in kept:
            queue.put_nowait(message)

    def _flush(self) -> None:
        conn, transport = self._conn, self._transport
        if conn is None or transport is None:
            return
        data = conn.data_to_send()
        if data:
            transport.write(data)

    def _abort(self) -> None:
        transport = self._transport
        if transport is not None:
            transport.abort()

    def _data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is None or self._stopping:
            return
        now = self._now()
        try:
            conn.feed(data)
            while not self._stopping and (event := conn.next_event(now)) is not None:
                self._dispatch(event)
        except MQTTError as exc:
            self._flush()  # MQTT 5: the DISCONNECT with the reason code, before closing
            code = exc.reason_code if conn.protocol_level == MQTT_5 else None
            text = f"protocol error from broker: {exc.reason}"
            if code is not None:
                text += f" (sent DISCONNECT 0x{code:02X} {reason_string(code)})"
            self._fail(ConnectionLostError(text, code))
        self._flush()

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, MessageReceived):
            p = event.publish
            props = MQTTProperties(p.properties)
            message = Message(p.topic, p.payload, p.qos, p.retain, p.dup, props, p.packet_id or 0)
            if self.on_message is not None:
                self.on_message(message)
            else:
                self._messages.put_nowait(message)
        elif isinstance(event, PublishCompleted):
            waiter = self._waiters.pop(event.mid, None)
            if waiter is not None and not waiter.done():
                if event.reason_code >= 0x80:
                    failed = PublishFailed(event.mid, event.reason_code, event.properties)
                    waiter.set_exception(failed)
                else:
                    waiter.set_result(PublishResult(event.reason_code, event.mid, event.properties))
        elif isinstance(event, (SubscribeCompleted, UnsubscribeCompleted)):
            if isinstance(event, SubscribeCompleted) and self.on_subscribe is not None:
                self.on_subscribe(event.mid, event.reason_codes)
            waiter = self._waiters.pop(event.mid, None)
            if waiter is not None and not waiter.done():
                kind = (
                    SubscribeResult if isinstance(event, SubscribeCompleted) else UnsubscribeResult
                )
                waiter.set_result(kind(event.reason_codes, event.mid, event.properties))
        elif isinstance(event, ConnackReceived):
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(event)
        elif isinstance(event, ReauthenticationCompleted):
            waiter = self._waiters.pop(_REAUTH, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(event.properties)
        elif isinstance(event, AuthenticationFailed):
            self._fail(AuthenticationError(event.reason))
        elif isinstance(event, DisconnectReceived):
            code = event.reason_code
            text = f"broker sent DISCONNECT: {reason_string(code)} (0x{code:02X})"
            explanation = event.properties.get(REASON_STRING)
            if explanation:
                text += f": {explanation}"
            self._fail(BrokerDisconnected(text, code, event.properties))
        elif isinstance(event, KeepaliveTimeout):
            self._fail(ConnectionLostError("no PINGRESP from the broker within keepalive"))

    def _fail(self, error: MQTTClientError) -> None:
        if self._error is None:
            self._error = error
        self._stopping = True
        self._abort()

    def _schedule_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        conn = self._conn
        if conn is None or self._loop is None:
            return
        deadline = conn.next_deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        conn = self._conn
        if conn is None or self._transport is None or self._stopping:
            return
        conn.handle_timer(self._now())
        self._flush()
        while (event := conn.next_event(self._now())) is not None:
            self._dispatch(event)
        self._schedule_timer()

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        conn = self._conn
        clean = self._stopping and self._error is None
        if not clean and self._error is None:
            detail = f": {exc}" if exc is not None else ""
            self._error = ConnectionLostError(f"connection closed by the broker{detail}")
        if conn is not None:
            conn.connection_lost()
        self._transport = None
        error = self._error or ConnectionLostError("connection closed")
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(
                ConnectionLostError("connection closed before CONNACK")
                if self._error is None or clean
                else self._error
            )
            with contextlib.suppress(BaseException):
                self._connack.exception()  # consumed by connect(); avoid "never retrieved"
        for mid, waiter in list(self._waiters.items()):
            if not waiter.done():
                waiter.set_exception(error)
                with contextlib.suppress(BaseException):
                    waiter.exception()
            del self._waiters[mid]
        self._messages.put_nowait(_END)
        self._closed.set()
