"""One connection's MQTT 5 enhanced authentication (section 4.12), as the broker runs it.

The broker core dispatches here: a CONNECT with an Authentication Method of a registered
method starts an :class:`AuthFlow`; every AUTH packet from that client goes to
:meth:`AuthFlow.receive`, which checks the packet against the protocol's rules (raising
:class:`ProtocolError` for a violation, so the client gets 0x82) and feeds the client's data to
the method's exchange. The broker turns the returned step into bytes: AUTH 0x18 for
:class:`Continue`; CONNACK 0x00 (or AUTH 0x00 when re-authenticating) for :class:`Success`;
a CONNACK refusal (or DISCONNECT) for :class:`Fail`. No I/O, no clock.
"""

from __future__ import annotations

from m2mhub.auth.enhanced import Continue, ServerAuthExchange, ServerAuthMethod, Step
from m2mhub.mqtt.errors import ProtocolError
from m2mhub.mqtt.packets import Auth, Connect

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
