"""One connection's MQTT 5 enhanced authentication (section 4.12), as the broker runs it.

The broker core dispatches here: a CONNECT with an Authentication Method of a registered
method starts an :class:`AuthFlow`; every AUTH packet from that client goes to
:meth:`AuthFlow.receive`, which checks the packet against the protocol's rules (raising
:class:`ProtocolError` for a violation, so the client gets 0x82) and feeds the client's data to
the method's exchange. :func:`start_auth` and :func:`on_auth` (the broker's handlers for
such a CONNECT and for AUTH) turn the returned step into bytes: AUTH 0x18 for
:class:`Continue`; CONNACK 0x00 (or AUTH 0x00 when re-authenticating) for :class:`Success`;
a CONNACK refusal (or DISCONNECT) for :class:`Fail`. No I/O, no clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from m2mhub.auth.enhanced import Continue, Fail, ServerAuthExchange, ServerAuthMethod, Step, Success
from m2mhub.hub.connection import CONNECTED, Connection
from m2mhub.mqtt.codec import encode
from m2mhub.mqtt.errors import ProtocolError
from m2mhub.mqtt.packets import MQTT_5, Auth, Connect, PacketType
from m2mhub.mqtt.reason_codes import VALID_REASON_CODES

if TYPE_CHECKING:
    from m2mhub.hub.broker import Broker

AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16

# AUTH reason codes.
SUCCESS = 0x00
CONTINUE_AUTHENTICATION = 0x18
RE_AUTHENTICATE = 0x19


class AuthFlow:
    """The authentication state of one connection that named a method in its CONNECT.

    It lives as long as the connection: after the CONNACK it remembers the method so the
    client can re-authenticate. ``pending`` holds the CONNECT (and the client id it will get)
    while the first exchange is under way.
    """

    __slots__ = ("assigned", "client_id", "exchange", "method", "pending", "username")

    def __init__(
        self, method: ServerAuthMethod, connect: Connect, client_id: str, assigned: bool
    ) -> None:
        self.method = method
        self.pending: Connect | None = connect
        self.client_id = client_id
        self.assigned = assigned  # the broker made the client id up (Assigned Client Identifier)
        self.username = connect.username
        self.exchange: ServerAuthExchange | None = None

    @property
    def name(self) -> str:
        """The Authentication Method every packet of this connection's exchanges must carry."""
        return self.method.name

    @property
    def in_progress(self) -> bool:
        """True while an exchange waits for the client's next AUTH."""
        return self.exchange is not None

    def begin(self, data: bytes | None) -> Step:
        """Start the CONNECT's exchange with the CONNECT's Authentication Data."""
        self.exchange = self.method.start(self.client_id, self.username, False)
        return self._step(data)

    def receive(self, packet: Auth, connected: bool) -> Step:
        """An AUTH from the client: check it is allowed now, then run the exchange's step.

        ``connected``: the CONNACK was sent (an AUTH 0x19 may start a re-authentication).
        """
        method = packet.properties.get(AUTHENTICATION_METHOD)
        if method != self.method.name:
            raise ProtocolError(
                f"AUTH with authentication method {method!r} instead of {self.method.name!r}"
            )
        code = packet.reason_code
        if code == CONTINUE_AUTHENTICATION:
            if self.exchange is None:
                raise ProtocolError("AUTH 0x18 with no authentication in progress")
        elif code == RE_AUTHENTICATE:
            if not connected:
                raise ProtocolError("AUTH 0x19 before CONNACK")
            if self.exchange is not None:
                raise ProtocolError("AUTH 0x19 during a re-authentication")
            self.exchange = self.method.start(self.client_id, self.username, True)
        else:
            raise ProtocolError(f"AUTH with reason code 0x{code:02X} from a client")
        return self._step(packet.properties.get(AUTHENTICATION_DATA))

    def _step(self, data: bytes | None) -> Step:
        exchange = self.exchange
        assert exchange is not None
        step = exchange.step(data)
        if not isinstance(step, Continue):
            self.exchange = None  # this exchange is over; a later AUTH 0x19 starts another
        return step


def start_auth(
    broker: Broker,
    conn: Connection,
    packet: Connect,
    client_id: str,
    assigned: bool,
    method_name: str,
    now: float,
) -> None:
    """A 5.0 CONNECT named an Authentication Method: run it, or refuse with 0x8C."""
    method = broker.auth_methods.get(method_name)
    if method is None:
        broker._refuse(
            conn,
            packet,
            0x8C,
            client_id,
            now,
            f"authentication method {method_name!r} is not supported",
        )
        if broker.log.notice:
            # mosquitto 2.0.11's words for this refusal (its error text is a misnomer).
            broker.log.write(
                "Client <unknown> disconnected due to QoS too high or retain not supported."
            )
        return
    flow = conn.auth = AuthFlow(method, packet, client_id, assigned)
    _auth_step(broker, conn, flow, flow.begin(packet.properties.get(AUTHENTICATION_DATA)), now)


def on_auth(broker: Broker, conn: Connection, packet: Auth, now: float) -> None:
    """An AUTH from ``conn``: the next step of its exchange, or the start of a new one."""
    flow = conn.auth
    if flow is None:
        raise ProtocolError("AUTH from a client that did not name an authentication method")
    if broker.log.debug:
        broker.log.write(
            f"Received AUTH from {flow.client_id} (rc{packet.reason_code}, {flow.name})"
        )
    _auth_step(broker, conn, flow, flow.receive(packet, conn.state == CONNECTED), now)


def _auth_step(broker: Broker, conn: Connection, flow: AuthFlow, step: Step, now: float) -> None:
    """Turn an authentication method's answer into AUTH, CONNACK or DISCONNECT."""
    log = broker.log
    connected = conn.state == CONNECTED
    if isinstance(step, Continue):
        _send_auth(broker, conn, flow, CONTINUE_AUTHENTICATION, step.data)
    elif isinstance(step, Success):
        if step.username is not None:
            flow.username = step.username
        if connected:
            conn.username = flow.username
            if conn.session is not None:
                broker._identify(conn.session, flow.username)
            _send_auth(broker, conn, flow, 0x00, step.data)
            return
        packet = flow.pending
        assert packet is not None
        flow.pending = None
        props: dict[int, Any] = {AUTHENTICATION_METHOD: flow.name}
        if step.data is not None:
            props[AUTHENTICATION_DATA] = step.data
        broker._accept(conn, packet, flow.client_id, flow.assigned, flow.username, props, now)
    else:
        assert isinstance(step, Fail)
        # A method's code that the packet cannot carry (0x86 in DISCONNECT) becomes 0x87.
        kind = PacketType.DISCONNECT if connected else PacketType.CONNACK
        code = step.reason_code if step.reason_code in VALID_REASON_CODES[kind] else 0x87
        if connected:
            broker._send_disconnect(conn, code, step.reason)
        else:
            packet = flow.pending
            assert packet is not None
            broker._refuse(conn, packet, code, flow.client_id, now, step.reason)
        if log.notice:
            log.write(f"Client {conn.name} disconnected, not authorised.")
        broker._close(conn, now, publish_will=True)


def _send_auth(
    broker: Broker, conn: Connection, flow: AuthFlow, code: int, data: bytes | None
) -> None:
    props: dict[int, Any] = {AUTHENTICATION_METHOD: flow.name}
    if data is not None:
        props[AUTHENTICATION_DATA] = data
    broker._append(conn, encode(Auth(code, props), MQTT_5))
    if broker.log.debug:
        broker.log.write(f"Sending AUTH to {flow.client_id} (rc{code}, {flow.name})")
