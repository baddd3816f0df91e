"""The MQTT 5 property table: one row per property, used by both the encoder and the decoder.

Each row gives the identifier, the wire type, the name used in the specification, the packets
that may carry the property (``WILL`` stands for the will properties inside CONNECT) and whether
it may appear more than once. Decoded properties are a ``dict[int, Any]`` keyed by identifier;
the repeatable ones hold lists: User Property (0x26) a ``list[tuple[str, str]]`` in wire order,
Subscription Identifier (0x0B) a ``list[int]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from m2mhub.mqtt.packets import PacketType

WILL: Final = 0
"""Pseudo packet type for the will properties carried in CONNECT (0 is no real packet type)."""


class PropertyType(IntEnum):
    """Wire encoding of a property value."""

    BYTE = 1
    TWO_BYTE_INT = 2
    FOUR_BYTE_INT = 3
    VARINT = 4
    UTF8 = 5
    UTF8_PAIR = 6
    BINARY = 7


class PropertyId(IntEnum):
    """Property identifiers, named as in the MQTT 5.0 specification (section 2.2.2.2)."""

    PAYLOAD_FORMAT_INDICATOR = 0x01
    MESSAGE_EXPIRY_INTERVAL = 0x02
    CONTENT_TYPE = 0x03
    RESPONSE_TOPIC = 0x08
    CORRELATION_DATA = 0x09
    SUBSCRIPTION_IDENTIFIER = 0x0B
    SESSION_EXPIRY_INTERVAL = 0x11
    ASSIGNED_CLIENT_IDENTIFIER = 0x12
    SERVER_KEEP_ALIVE = 0x13
    AUTHENTICATION_METHOD = 0x15
    AUTHENTICATION_DATA = 0x16
    REQUEST_PROBLEM_INFORMATION = 0x17
    WILL_DELAY_INTERVAL = 0x18
    REQUEST_RESPONSE_INFORMATION = 0x19
    RESPONSE_INFORMATION = 0x1A
    SERVER_REFERENCE = 0x1C
    REASON_STRING = 0x1F
    RECEIVE_MAXIMUM = 0x21
    TOPIC_ALIAS_MAXIMUM = 0x22
    TOPIC_ALIAS = 0x23
    MAXIMUM_QOS = 0x24
    RETAIN_AVAILABLE = 0x25
    USER_PROPERTY = 0x26
    MAXIMUM_PACKET_SIZE = 0x27
    WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
    SHARED_SUBSCRIPTION_AVAILABLE = 0x2A


@dataclass(frozen=True, slots=True)
class PropertyDef:
    """One row of the property table."""

    id: int
    name: str
    type: PropertyType
    allowed: frozenset[int]  # PacketType values, plus WILL
    repeatable: bool = False
    # Values a receiver must refuse (a Protocol Error): None means any value of the type.
    valid: frozenset[int] | None = None
    nonzero: bool = False


_P = PacketType
_T = PropertyType
_ALL_WITH_PROPERTIES = frozenset(
    {
        _P.CONNECT,
        _P.CONNACK,
        _P.PUBLISH,
        _P.PUBACK,
        _P.PUBREC,
        _P.PUBREL,
        _P.PUBCOMP,
        _P.SUBSCRIBE,
        _P.SUBACK,
        _P.UNSUBSCRIBE,
        _P.UNSUBACK,
        _P.DISCONNECT,
        _P.AUTH,
        WILL,
    }
)
_BOOL = frozenset({0, 1})
_PUB_WILL = frozenset({_P.PUBLISH, WILL})
_REASON_STRING_PACKETS = frozenset(
    {
        _P.CONNACK,
        _P.PUBACK,
        _P.PUBREC,
        _P.PUBREL,
        _P.PUBCOMP,
        _P.SUBACK,
        _P.UNSUBACK,
        _P.DISCONNECT,
        _P.AUTH,
    }
)
_I = PropertyId

PROPERTY_TABLE: Final[tuple[PropertyDef, ...]] = (
    PropertyDef(_I.PAYLOAD_FORMAT_INDICATOR, "Payload Format Indicator", _T.BYTE, _PUB_WILL,
                valid=_BOOL),
    PropertyDef(_I.MESSAGE_EXPIRY_INTERVAL, "Message Expiry Interval", _T.FOUR_BYTE_INT, _PUB_WILL),
    PropertyDef(_I.CONTENT_TYPE, "Content Type", _T.UTF8, _PUB_WILL),
    PropertyDef(_I.RESPONSE_TOPIC, "Response Topic", _T.UTF8, _PUB_WILL),
    PropertyDef(_I.CORRELATION_DATA, "Correlation Data", _T.BINARY, _PUB_WILL),
    PropertyDef(_I.SUBSCRIPTION_IDENTIFIER, "Subscription Identifier", _T.VARINT,
                frozenset({_P.PUBLISH, _P.SUBSCRIBE}), repeatable=True, nonzero=True),
    PropertyDef(_I.SESSION_EXPIRY_INTERVAL, "Session Expiry Interval", _T.FOUR_BYTE_INT,
                frozenset({_P.CONNECT, _P.CONNACK, _P.DISCONNECT})),
    PropertyDef(_I.ASSIGNED_CLIENT_IDENTIFIER, "Assigned Client Identifier", _T.UTF8,
                frozenset({_P.CONNACK})),
    PropertyDef(_I.SERVER_KEEP_ALIVE, "Server Keep Alive", _T.TWO_BYTE_INT,
                frozenset({_P.CONNACK})),
    PropertyDef(_I.AUTHENTICATION_METHOD, "Authentication Method", _T.UTF8,
                frozenset({_P.CONNECT, _P.CONNACK, _P.AUTH})),
    PropertyDef(_I.AUTHENTICATION_DATA, "Authentication Data", _T.BINARY,
                frozenset({_P.CONNECT, _P.CONNACK, _P.AUTH})),
    PropertyDef(_I.REQUEST_PROBLEM_INFORMATION, "Request Problem Information", _T.BYTE,
                frozenset({_P.CONNECT}), valid=_BOOL),
    PropertyDef(_I.WILL_DELAY_INTERVAL, "Will Delay Interval", _T.FOUR_BYTE_INT,
                frozenset({WILL})),
    PropertyDef(_I.REQUEST_RESPONSE_INFORMATION, "Request Response Information", _T.BYTE,
                frozenset({_P.CONNECT}), valid=_BOOL),
    PropertyDef(_I.RESPONSE_INFORMATION, "Response Information", _T.UTF8,
                frozenset({_P.CONNACK})),
    PropertyDef(_I.SERVER_REFERENCE, "Server Reference", _T.UTF8,
                frozenset({_P.CONNACK, _P.DISCONNECT})),
    PropertyDef(_I.REASON_STRING, "Reason String", _T.UTF8, _REASON_STRING_PACKETS),
    PropertyDef(_I.RECEIVE_MAXIMUM, "Receive Maximum", _T.TWO_BYTE_INT,
                frozenset({_P.CONNECT, _P.CONNACK}), nonzero=True),
    PropertyDef(_I.TOPIC_ALIAS_MAXIMUM, "Topic Alias Maximum", _T.TWO_BYTE_INT,
                frozenset({_P.CONNECT, _P.CONNACK})),
    PropertyDef(_I.TOPIC_ALIAS, "Topic Alias", _T.TWO_BYTE_INT, frozenset({_P.PUBLISH}),
                nonzero=True),
    PropertyDef(_I.MAXIMUM_QOS, "Maximum QoS", _T.BYTE, frozenset({_P.CONNACK}), valid=_BOOL),
    PropertyDef(_I.RETAIN_AVAILABLE, "Retain Available", _T.BYTE, frozenset({_P.CONNACK}),
                valid=_BOOL),
    PropertyDef(_I.USER_PROPERTY, "User Property", _T.UTF8_PAIR, _ALL_WITH_PROPERTIES,
                repeatable=True),
    PropertyDef(_I.MAXIMUM_PACKET_SIZE, "Maximum Packet Size", _T.FOUR_BYTE_INT,
                frozenset({_P.CONNECT, _P.CONNACK}), nonzero=True),
    PropertyDef(_I.WILDCARD_SUBSCRIPTION_AVAILABLE, "Wildcard Subscription Available", _T.BYTE,
                frozenset({_P.CONNACK}), valid=_BOOL),
    PropertyDef(_I.SUBSCRIPTION_IDENTIFIER_AVAILABLE, "Subscription Identifier Available",
                _T.BYTE, frozenset({_P.CONNACK}), valid=_BOOL),
    PropertyDef(_I.SHARED_SUBSCRIPTION_AVAILABLE, "Shared Subscription Available", _T.BYTE,
                frozenset({_P.CONNACK}), valid=_BOOL),
)  # fmt: skip

PROPERTIES: Final[dict[int, PropertyDef]] = {p.id: p for p in PROPERTY_TABLE}
"""Property definitions by identifier."""

# Indexed by identifier for the decoder's hot loop (ids are all below 0x2B).
PROPERTY_BY_ID: Final[list[PropertyDef | None]] = [PROPERTIES.get(i) for i in range(0x80)]


def property_name(prop_id: int) -> str:
    """The specification's name of a property, or ``"Unknown property 0x.."``."""
    prop = PROPERTIES.get(prop_id)
    return prop.name if prop is not None else f"Unknown property 0x{prop_id:02X}"
