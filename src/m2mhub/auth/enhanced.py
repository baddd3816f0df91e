"""MQTT 5 enhanced authentication methods (MQTT 5.0 section 4.12): the pluggable interface.

An authentication method (SCRAM-SHA-256, Kerberos, a token scheme...) is named by the
Authentication Method property of CONNECT and runs as a challenge/response exchange of
Authentication Data: CONNECT (data) -> AUTH 0x18 (data) -> AUTH 0x18 (data) ... -> CONNACK.
A connected client may later re-authenticate with AUTH 0x19, on the same method.

Both roles have the same shape and no I/O: an *exchange* is fed the peer's Authentication Data
and answers with one :data:`Step`:

- :class:`Continue` ``(data)``: send this data and wait for the peer's next message;
- :class:`Success` ``(data)``: authentication succeeded (the server sends ``data`` in CONNACK,
  or in AUTH 0x00 when re-authenticating; the client has checked the server's final data);
- :class:`Fail` ``(reason)``: authentication failed; the server refuses the CONNECT with
  ``reason_code`` (or disconnects a re-authenticating client with it).

The broker side is :class:`ServerAuthMethod` (registered with ``Broker(auth_methods=...)``
or ``Broker.add_auth_method``, see docs/hub-api.md); the client side is
:class:`ClientAuthMethod` (``MQTTClient.connect(auth=...)``, see docs/client.md). The built-in
method is SCRAM-SHA-256 (``m2mhub.auth.scram``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeAlias

# MQTT 5 reason codes an authentication failure is reported with.
BAD_USER_NAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87


@dataclass(frozen=True, slots=True)
class Continue:
    """The exchange goes on: send ``data`` to the peer (AUTH 0x18) and wait for its answer."""

    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Success:
    """Authenticated. ``data``: the server's final Authentication Data for the client (None:
    none). ``username``: the identity the method established (the broker records it as the
    connection's user name; None keeps the CONNECT's User Name)."""

    data: bytes | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class Fail:
    """Not authenticated. ``reason`` is logged and, unless the client asked for no problem
    information, sent as the Reason String; ``reason_code`` is the CONNACK/DISCONNECT code."""

    reason: str
    reason_code: int = NOT_AUTHORIZED


Step: TypeAlias = Continue | Success | Fail


class ServerAuthExchange(Protocol):
    """One authentication (or re-authentication) of one client, on the broker's side."""

    def step(self, data: bytes | None) -> Step:
        """The client's Authentication Data (None if the packet had none) -> what to do next."""
        ...


class ServerAuthMethod(Protocol):
    """A method the broker offers; ``name`` is matched against the Authentication Method."""

    @property
    def name(self) -> str: ...

    def start(
        self, client_id: str, username: str | None, reauthenticating: bool
    ) -> ServerAuthExchange:
        """A new exchange for a CONNECT (``reauthenticating`` False) or an AUTH 0x19.

        ``username`` is the CONNECT's User Name (None if it had none).
        """
        ...


class ClientAuthExchange(Protocol):
    """One authentication (or re-authentication) on the client's side."""

    def initial_data(self) -> bytes | None:
        """The Authentication Data for CONNECT (or AUTH 0x19); None: send none."""
        ...

    def step(self, data: bytes | None) -> Step:
        """The server's challenge (AUTH 0x18) -> :class:`Continue` with the answer, or Fail."""
        ...

    def finish(self, data: bytes | None) -> Success | Fail:
        """The server's final data (CONNACK 0x00 or AUTH 0x00) -> whether the server proved
        itself (a method that authenticates only the client returns Success)."""
        ...


class ClientAuthMethod(Protocol):
    """A method the client authenticates with; ``name`` goes into Authentication Method."""

    @property
    def name(self) -> str: ...

    def start(self) -> ClientAuthExchange:
        """A new exchange for a CONNECT or a re-authentication."""
        ...
