"""An application message as the broker keeps it (retained, queued or in flight)."""

from __future__ import annotations

from typing import Any


class Message:
    """Topic, payload, QoS, retain flag and MQTT 5 properties of one published message.

    One instance is shared by every session it is queued for or in flight to.
    """

    __slots__ = ("expires_at", "payload", "properties", "qos", "retain", "topic", "wire")

    def __init__(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        properties: dict[int, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties: dict[int, Any] = properties if properties is not None else {}
        # MQTT 5 Message Expiry: when the broker must stop delivering it (None: never).
        self.expires_at: float | None = None
        # Encoded PUBLISH parts, filled when sent from a queue: by (5.0?, qos, retain, dup,
        # subscription ids), and for connections with server topic aliases by (qos, retain,
        # dup, subscription ids, alias, topic name included?).
        self.wire: dict[tuple[Any, ...], tuple[bytes, bytes]] | None = None

    def __repr__(self) -> str:
        return f"Message({self.topic!r}, {self.payload!r}, qos={self.qos}, retain={self.retain})"
