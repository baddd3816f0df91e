"""Exceptions raised for bad MQTT input; each carries the MQTT 5 reason code it maps to.

One place in the broker turns these into a DISCONNECT with that code (5.0), a plain close
(3.1, 3.1.1) or a CONNACK refusal, and logs one line.
"""

from __future__ import annotations


class MQTTError(Exception):
    """Base class: ``reason_code`` is the MQTT 5 reason code, ``reason`` a human sentence."""

    reason_code: int = 0x80  # Unspecified error

    def __init__(self, reason: str, reason_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if reason_code is not None:
            self.reason_code = reason_code


class MalformedPacket(MQTTError):
    """The bytes do not form a valid packet (bad length, flags, UTF-8, property...)."""

    reason_code = 0x81


class ProtocolError(MQTTError):
    """A well-formed packet that is not allowed here (second CONNECT, zero packet id...)."""

    reason_code = 0x82


class UnsupportedProtocolVersion(MQTTError):
    """CONNECT names a protocol or level we do not speak.

    Answered with CONNACK 0x01 (3.1/3.1.1) or 0x84 (5.0) before closing.

    ``protocol_name`` and ``protocol_level`` are what the CONNECT carried; ``connack`` is the
    exact CONNACK to send before closing, or ``None`` to close without one (mosquitto closes
    silently on an unknown protocol name and answers an unknown level with a 3.1.1 CONNACK 0x01).
    """

    reason_code = 0x84

    def __init__(
        self,
        reason: str,
        reason_code: int | None = None,
        *,
        protocol_name: str = "",
        protocol_level: int = 0,
        connack: bytes | None = None,
    ) -> None:
        super().__init__(reason, reason_code)
        self.protocol_name = protocol_name
        self.protocol_level = protocol_level
        self.connack = connack


class PacketTooLarge(MQTTError):
    """A packet over ``message_size_limit`` or the negotiated Maximum Packet Size."""

    reason_code = 0x95


class TopicNameInvalid(MQTTError):
    """A PUBLISH topic name that breaks the topic rules."""

    reason_code = 0x90


class TopicFilterInvalid(MQTTError):
    """A SUBSCRIBE/UNSUBSCRIBE filter that breaks the topic rules."""

    reason_code = 0x8F
