"""Splitting an MQTT byte stream into packets for tracing (sans-IO).

Unlike :class:`m2mhub.mqtt.codec.PacketReader`, which the broker uses, a tracer needs each
packet's own bytes (for the hex dump and the pcap file) and must survive bad input: after the
first error a direction switches to raw chunks for the rest of the connection, as the peers
will usually disconnect anyway and no framing can be trusted after it.
"""

from __future__ import annotations

from typing import Final

from m2mhub.mqtt.codec import decode
from m2mhub.mqtt.errors import MalformedPacket, MQTTError, UnsupportedProtocolVersion
from m2mhub.mqtt.packets import MQTT_3_1_1, Connack, Connect, Packet
from m2mhub.mqtt.properties import PropertyId

__all__ = ["Frame", "MqttConversation", "MqttDirection"]

_ASSIGNED_ID: Final = PropertyId.ASSIGNED_CLIENT_IDENTIFIER


class Frame:
    """One traced unit: a whole packet, a packet that failed to decode, or raw bytes.

    ``packet`` is set when decoding succeeded; ``error`` when it failed (the first failure of
    a direction); both are None for raw bytes that follow an error.
    """

    __slots__ = ("error", "level", "packet", "raw")

    def __init__(
        self,
        raw: bytes,
        packet: Packet | None = None,
        error: MQTTError | None = None,
        level: int | None = None,
    ) -> None:
        self.raw = raw
        self.packet = packet
        self.error = error
        self.level = level


def _frame_length(buf: bytearray) -> int | None:
    """Total length of the first packet in ``buf``, or None when more bytes are needed."""
    if len(buf) < 2:
        return None
    remaining = 0
    shift = 0
    i = 1
    while True:
        if i >= len(buf):
            return None
        b = buf[i]
        remaining |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return i + remaining
        shift += 7
        if i > 4:
            raise MalformedPacket("remaining length longer than 4 bytes")


class MqttDirection:
    """One direction of an MQTT connection: ``feed(bytes) -> list[Frame]``."""

    __slots__ = ("_buf", "_conversation", "_raw", "from_client")

    def __init__(self, conversation: MqttConversation, from_client: bool) -> None:
        self._conversation = conversation
        self.from_client = from_client
        self._buf = bytearray()
        self._raw = False

    @property
    def raw_mode(self) -> bool:
        """True once a decode error switched this direction to raw chunks."""
        return self._raw

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by ``data`` (raw bytes come back as one Frame once in raw mode)."""
        if self._raw:
            return [Frame(bytes(data))]
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        while buf:
            try:
                length = _frame_length(buf)
            except MQTTError as exc:
                frames.append(self._fail(exc))
                break
            if length is None or length > len(buf):
                break
            raw = bytes(buf[:length])
            del buf[:length]
            conv = self._conversation
            level = conv.protocol_level
            try:
                if level is None and not self.from_client:
                    raise MalformedPacket("server sent a packet before any CONNECT")
                packet = decode(raw, level)
            except MQTTError as exc:
                buf[:0] = raw
                if isinstance(exc, UnsupportedProtocolVersion) and conv.protocol_level is None:
                    # The server answers in 3.1.1 (CONNACK 0x01), as mosquitto does.
                    conv.protocol_level = MQTT_3_1_1
                frames.append(self._fail(exc))
                break
            if isinstance(packet, Connect):
                conv.protocol_level = packet.protocol_level
                conv.client_id = packet.client_id or None
            elif isinstance(packet, Connack) and _ASSIGNED_ID in packet.properties:
                conv.client_id = packet.properties[_ASSIGNED_ID]
            frames.append(Frame(raw, packet, level=conv.protocol_level))
        return frames

    def close(self) -> list[Frame]:
        """Bytes left over at the end of the stream (an incomplete packet), as a raw Frame."""
        if not self._buf:
            return []
        leftover = bytes(self._buf)
        self._buf.clear()
        if self._raw:
            return [Frame(leftover)]
        self._raw = True
        return [Frame(leftover, error=MalformedPacket("connection closed inside a packet"))]

    def _fail(self, exc: MQTTError) -> Frame:
        self._raw = True
        raw = bytes(self._buf)
        self._buf.clear()
        return Frame(raw, error=exc, level=self._conversation.protocol_level)


class MqttConversation:
    """Both directions of one MQTT connection; they share the protocol level from CONNECT.

    ``client_id`` is the CONNECT's client identifier, or the one the server assigned in an
    MQTT 5 CONNACK; None while unknown (or empty in 3.1.1, where the broker keeps it to itself).
    """

    __slots__ = ("client_id", "from_client", "from_server", "protocol_level")

    def __init__(self) -> None:
        self.protocol_level: int | None = None
        self.client_id: str | None = None
        self.from_client = MqttDirection(self, True)
        self.from_server = MqttDirection(self, False)
