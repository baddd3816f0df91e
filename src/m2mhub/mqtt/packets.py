"""MQTT control packets as plain slotted objects, shared by all three protocol versions.

Fields that exist only in MQTT 5.0 (reason codes, properties) are ignored when encoding for
3.1/3.1.1 and get their neutral value when decoding them.

Properties are a ``dict[int, object]`` keyed by property identifier (see
``m2mhub.mqtt.properties``). Repeatable properties hold lists: User Property (0x26) is a
``list[tuple[str, str]]`` in wire order, Subscription Identifier (0x0B) a ``list[int]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeAlias

Properties: TypeAlias = dict[int, Any]

# Protocol levels as carried in CONNECT.
MQTT_3_1 = 3
MQTT_3_1_1 = 4
MQTT_5 = 5


class PacketType(IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


@dataclass(slots=True)
class Will:
    """The will message carried in CONNECT."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Connect:
    protocol_level: int = MQTT_3_1_1
    client_id: str = ""
    clean_start: bool = True
    keepalive: int = 60
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None
    properties: Properties = field(default_factory=dict)
    # "MQIsdp" for 3.1, "MQTT" for 3.1.1 and 5.0; kept so the decoder can report what it saw.
    protocol_name: str = "MQTT"
    # Bit 7 of the protocol level byte: mosquitto bridges set it ("try_private").
    bridge: bool = False
    packet_type = PacketType.CONNECT


@dataclass(slots=True)
class Connack:
    session_present: bool = False
    # 3.1/3.1.1 return code (0-5) or MQTT 5 reason code.
    reason_code: int = 0
    properties: Properties = field(default_factory=dict)
    packet_type = PacketType.CONNACK


@dataclass(slots=True)
class Publish:
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None  # None for QoS 0
    properties: Properties = field(default_factory=dict)
    packet_type = PacketType.PUBLISH


@dataclass(slots=True)
class Puback:
    packet_id: int
    reason_code: int = 0
    properties: Properties = field(default_factory=dict)
    packet_type = PacketType.PUBACK


@dataclass(slots=True)
class Pubrec:
    packet_id: int
    reason_code: int = 0
    properties: Properties = field(default_factory=dict)
    packet_type = PacketType.PUBREC


@dataclass(slots=True)
class Pubrel:
    packet_id: int
    reason_code: int = 0
    properties: Properties = field(default_factory=dict)
    packet_type = PacketType.PUBREL


@dataclass(slots=True)
class Pubcomp:
    packet_id: int
    reason_code: int = 0
    properties: Properties = field(default_factory=dict)
    packet_type = PacketType.PUBCOMP


@dataclass(slots=True)
class SubscriptionOptions:
    """One SUBSCRIBE entry's options; only ``qos`` exists before MQTT 5."""

    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass(slots=True)
class Subscribe:
    packet_id: int
    subscriptions: list[tuple[str, SubscriptionOptions]]
    properties: Properties = field(default_factory=dict)
    packet_type = PacketType.SUBSCRIBE


@dataclass(slots=True)
class Suback:
    packet_id: int
    # Granted QoS (0-2) or 0x80 failure for 3.x; reason codes for 5.0.
    reason_codes: list[int]
    properties: Properties = field(default_factory=dict)
    packet_type = PacketType.SUBACK


@dataclass(slots=True)
class Unsubscribe:
    packet_id: int
    topic_filters: list[str]
    properties: Properties = field(default_factory=dict)
    packet_type = PacketType.UNSUBSCRIBE


@dataclass(slots=True)
class Unsuback:
    packet_id: int
    reason_codes: list[int] = field(default_factory=list)  # 5.0 only
    properties: Properties = field(default_factory=dict)
    packet_type = PacketType.UNSUBACK


@dataclass(slots=True)
class Pingreq:
    packet_type = PacketType.PINGREQ


@dataclass(slots=True)
class Pingresp:
    packet_type = PacketType.PINGRESP


@dataclass(slots=True)
class Disconnect:
    reason_code: int = 0
    properties: Properties = field(default_factory=dict)
    packet_type = PacketType.DISCONNECT


@dataclass(slots=True)
class Auth:
    reason_code: int = 0
    properties: Properties = field(default_factory=dict)
    packet_type = PacketType.AUTH


Packet: TypeAlias = (
    Connect
    | Connack
    | Publish
    | Puback
    | Pubrec
    | Pubrel
    | Pubcomp
    | Subscribe
    | Suback
    | Unsubscribe
    | Unsuback
    | Pingreq
    | Pingresp
    | Disconnect
    | Auth
)
