"""Sans-IO MQTT codec for 3.1 (level 3, "MQIsdp"), 3.1.1 (level 4) and 5.0 (level 5).

``encode(packet, level)`` turns a packet object into bytes; ``encode_publish_parts`` encodes a
PUBLISH once for a fan-out where only the packet identifier differs, ``PublishSplice`` one where
the Subscription Identifiers differ too; ``PacketReader`` turns a
byte stream into packet objects. A decoded 5.0 PUBLISH's properties are a ``PublishProperties``
dict that remembers its wire bytes, so forwarding them copies bytes instead of encoding.

Decoding is strict and raises the :mod:`m2mhub.mqtt.errors` classes. Where the specification
leaves a choice we do what mosquitto 2.0 does:

- Fixed-header flags of non-PUBLISH packets and the CONNECT reserved flag are only checked for
  3.1.1 and 5.0; 3.1 clients sent QoS 1 in the header of SUBSCRIBE/UNSUBSCRIBE/PUBREL.
- Strings must be valid UTF-8 without U+0000, control characters (U+0001-U+001F,
  U+007F-U+009F) and non-characters (U+FDD0-U+FDEF, U+xFFFE, U+xFFFF): mosquitto rejects all of
  them as malformed.
- PUBLISH with QoS 0 and DUP set is accepted (and reported as ``dup=True``).
- Invalid topic filters in SUBSCRIBE/UNSUBSCRIBE raise :class:`TopicFilterInvalid` (mosquitto
  disconnects, for every version, rather than answering 0x8F). In 5.0 ``$share/...`` must be a
  well-formed shared subscription (mosquitto 2.0.11 also accepts ``$share/g`` and
  ``$share//a``); before 5.0 ``$share`` is an ordinary first level.
- An empty SUBSCRIBE/UNSUBSCRIBE is a :class:`ProtocolError` except in 3.1.
- In 3.1 a password flag without a password in the payload is ignored.
- The unknown-protocol cases raise :class:`UnsupportedProtocolVersion` whose ``connack`` holds
  the answer mosquitto gives: ``20 02 00 01`` for a known name with an unknown level, nothing
  (``None``) for an unknown name.
- Bit 7 of the CONNECT protocol level (mosquitto's bridge flag) is accepted and reported as
  ``Connect.bridge``.
- Remaining lengths and property varints need not be minimally encoded.

Where mosquitto 2.0.11 is laxer than the specification we follow the specification: it
accepts PINGREQ with flags or a body, a 3.1.1 PUBACK with a trailing byte, unknown reason codes
below 0x80, out-of-range property values (Payload Format Indicator 2) and duplicate
properties; we raise :class:`MalformedPacket` (wrong flags, lengths, duplicates) or
:class:`ProtocolError` (reason codes and property values the specification forbids). Any
error reason code (0x80 and up) is accepted in every 5.0 packet that carries one, since
mosquitto itself sends PUBACK 0x95 (Packet too large).

After the first decoding error a :class:`PacketReader` is poisoned: every later call re-raises
the same exception, since the connection has to be closed anyway.

Encoding trusts its input more than decoding trusts the wire: it raises ``ValueError`` for
things that cannot be put on the wire (a property not allowed in the packet, a string over
65535 bytes, lone surrogates, AUTH before 5.0) but does not re-check every rule.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import Any, Final

from m2mhub.mqtt.errors import (
    MalformedPacket,
    MQTTError,
    PacketTooLarge,
    ProtocolError,
    TopicNameInvalid,
    UnsupportedProtocolVersion,
)
from m2mhub.mqtt.packets import (
    MQTT_3_1,
    MQTT_5,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
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
    Will,
)
from m2mhub.mqtt.properties import PROPERTIES, PROPERTY_BY_ID, WILL, PropertyId, PropertyType
from m2mhub.mqtt.reason_codes import VALID_REASON_CODES, VALID_SUBACK_CODES_V3
from m2mhub.mqtt.topics import split_shared, validate_topic_filter

__all__ = [
    "MAX_REMAINING_LENGTH",
    "PacketReader",
    "PublishProperties",
    "PublishSplice",
    "decode",
    "encode",
    "encode_publish_parts",
]

MAX_REMAINING_LENGTH: Final = 268_435_455

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_pack_u16 = _U16.pack
_pack_u32 = _U32.pack

# Characters mosquitto's UTF-8 check refuses (besides invalid UTF-8 and surrogates, which
# Python's strict decoder already refuses).
_BAD_CHARS_CLASS = "\x00-\x1f\x7f-\x9f\ufdd0-\ufdef" + "".join(
    chr((plane << 16) | 0xFFFE) + chr((plane << 16) | 0xFFFF) for plane in range(17)
)
_BAD_CHARS = re.compile(f"[{_BAD_CHARS_CLASS}]")
_bad_char_search = _BAD_CHARS.search
# Same plus the wildcards, for PUBLISH topic names in one pass.
_BAD_TOPIC_NAME = re.compile(f"[{_BAD_CHARS_CLASS}+#]")
_bad_topic_search = _BAD_TOPIC_NAME.search

_VARINT_1: Final = [bytes((i,)) for i in range(128)]

# Required fixed-header flags for every type but PUBLISH (3.1.1 and 5.0).
_FIXED_FLAGS: Final = (None, 0, 0, None, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0)


class PublishProperties(dict[int, Any]):
    """The properties of a decoded 5.0 PUBLISH, remembering their bytes on the wire.

    A broker forwards PUBLISH properties unchanged, so encoding the same dict again would only
    reproduce the bytes it was decoded from. The decoder returns this dict (instead of a plain
    one) when re-encoding would give exactly those bytes: no Topic Alias or Subscription
    Identifier (which are not forwarded) and every repeated property (User Property) in one
    run. ``encode_publish_parts`` then copies the bytes instead of encoding the properties.

    It is an ordinary dict otherwise. The bytes are used only while the dict still equals what
    was decoded (User Property list included), so changing it in any way falls back to
    encoding it.
    """

    __slots__ = ("_block", "_decoded")

    _block: bytes
    _decoded: dict[int, Any]

    def wire_block(self) -> bytes | None:
        """Property Length and properties as received, or None if the dict was changed."""
        return self._block if dict.__eq__(self, self._decoded) else None

    def plus(self, prop_id: int, value: Any) -> Properties:
        """``{**self, prop_id: value}`` for a property not in it (Subscription Identifier,
        Topic Alias: what a broker adds per receiver), keeping the wire bytes if they are
        still valid: the new property goes last in the dict and so last on the wire."""
        block = self.wire_block()
        if block is None or prop_id in self:
            return {**self, prop_id: value}
        added = _encode_properties({prop_id: value}, PacketType.PUBLISH)
        added = added[1:] if added[0] < 0x80 else added[_varint_size(added) :]
        inner = block[1:] if block[0] < 0x80 else block[_varint_size(block) :]
        inner += added
        n = len(inner)
        wider = PublishProperties(self)
        wider[prop_id] = value
        wider._block = (_VARINT_1[n] if n < 128 else _varint(n)) + inner
        wider._decoded = {**self._decoded, prop_id: list(value) if type(value) is list else value}
        return wider

    def fresh_copy(self) -> PublishProperties:
        """An equal instance with the same wire bytes that shares no list with this one."""
        copy = PublishProperties(self)
        user = copy.get(_USER_PROPERTY)
        if user is not None:
            copy[_USER_PROPERTY] = list(user)
        copy._block = self._block
        copy._decoded = self._decoded  # never changed, so it may be shared
        return copy


# --------------------------------------------------------------------------------------------
# Encoding helpers


def _varint(n: int) -> bytes:
    if n < 128:
        return _VARINT_1[n]
    if n > MAX_REMAINING_LENGTH:
        raise ValueError(f"value {n} does not fit a variable byte integer")
    out = bytearray()
    while True:
        digit = n & 0x7F
        n >>= 7
        if n:
            out.append(digit | 0x80)
        else:
            out.append(digit)
            return bytes(out)


def _str(s: str) -> bytes:
    b = s.encode("utf-8")
    if len(b) > 0xFFFF:
        raise ValueError("string longer than 65535 bytes")
    return _pack_u16(len(b)) + b


def _bin(b: bytes) -> bytes:
    if len(b) > 0xFFFF:
        raise ValueError("binary data longer than 65535 bytes")
    return _pack_u16(len(b)) + bytes(b)


# Wire types as plain ints, indexed by property identifier, for the property loops: comparing
# ints is cheaper than comparing PropertyType members (0: no such property).
_TYPE_BY_ID: Final[list[int]] = [int(d.type) if d is not None else 0 for d in PROPERTY_BY_ID]
_T_BYTE: Final = int(PropertyType.BYTE)
_T_U16: Final = int(PropertyType.TWO_BYTE_INT)
_T_U32: Final = int(PropertyType.FOUR_BYTE_INT)
_T_VARINT: Final = int(PropertyType.VARINT)
_T_UTF8: Final = int(PropertyType.UTF8)
_T_PAIR: Final = int(PropertyType.UTF8_PAIR)


def _encode_properties(props: Properties, packet_type: int) -> bytes:
    """Property length + properties; checks every property against the table."""
    if not props:
        return b"\x00"
    out = bytearray()
    for prop_id, value in props.items():
        prop = PROPERTIES.get(prop_id)
        if prop is None:
            raise ValueError(f"unknown property 0x{prop_id:02X}")
        if packet_type not in prop.allowed:
            raise ValueError(f"{prop.name} is not allowed in {_packet_name(packet_type)}")
        t = _TYPE_BY_ID[prop_id]
        if prop.repeatable:
            if not isinstance(value, list):
                raise ValueError(f"{prop.name} must be a list")
            if t == _T_PAIR:
                for pair in value:
                    kb = pair[0].encode("utf-8")
                    vb = pair[1].encode("utf-8")
                    if len(kb) > 0xFFFF or len(vb) > 0xFFFF:
                        raise ValueError("string longer than 65535 bytes")
                    out.append(prop_id)
                    out += _pack_u16(len(kb))
                    out += kb
                    out += _pack_u16(len(vb))
                    out += vb
            else:  # Subscription Identifier
                for v in value:
                    out.append(prop_id)
                    out += _varint(v)
            continue
        out.append(prop_id)
        if t == _T_UTF8:
            b = value.encode("utf-8")
            if len(b) > 0xFFFF:
                raise ValueError("string longer than 65535 bytes")
            out += _pack_u16(len(b))
            out += b
        elif t == _T_U32:
            out += _pack_u32(value)
        elif t == _T_BYTE:
            out.append(value)
        elif t == _T_U16:
            out += _pack_u16(value)
        elif t == _T_VARINT:
            out += _varint(value)
        else:
            out += _bin(value)
    n = len(out)
    if n < 128:
        out[0:0] = _VARINT_1[n]
        return bytes(out)
    return _varint(n) + out


def _varint_size(data: bytes) -> int:
    """How many bytes the variable byte integer at the start of ``data`` takes."""
    size = 1
    while data[size - 1] & 0x80:
        size += 1
    return size


def _packet_name(packet_type: int) -> str:
    return "will properties" if packet_type == WILL else PacketType(packet_type).name


def _fixed(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _varint(len(body)) + body


# --------------------------------------------------------------------------------------------
# Encoding


def encode_publish_parts(
    topic: str,
    payload: bytes,
    qos: int,
    retain: bool,
    dup: bool,
    properties: Properties | None,
    protocol_level: int,
) -> tuple[bytes, bytes]:
    """Encode a PUBLISH once for many receivers: ``(head, tail)``.

    For QoS 1/2 the packet is ``head + packet_id.to_bytes(2, "big") + tail``, for QoS 0
    ``head + tail``; the remaining length inside ``head`` already counts the two identifier
    bytes when ``qos > 0``.
    """
    tb = topic.encode("utf-8")
    tlen = len(tb)
    if tlen > 0xFFFF:
        raise ValueError("topic longer than 65535 bytes")
    if protocol_level == MQTT_5:
        if not properties:
            tail = b"\x00" + payload
        elif type(properties) is PublishProperties and (block := properties.wire_block()):
            tail = block + payload  # forwarded unchanged: the bytes it was decoded from
        else:
            tail = _encode_properties(properties, PacketType.PUBLISH) + payload
    else:
        tail = payload
    remaining = 2 + tlen + len(tail) + (2 if qos else 0)
    first = 0x30 | (qos << 1) | (8 if dup else 0) | (1 if retain else 0)
    if remaining < 128:
        head = bytes((first, remaining, tlen >> 8, tlen & 0xFF)) + tb
    else:
        head = bytes((first,)) + _varint(remaining) + _pack_u16(tlen) + tb
    return head, tail


# One Subscription Identifier below 128, the common case, as property bytes.
_SUBSCRIPTION_ID_1: Final = [bytes((PropertyId.SUBSCRIPTION_IDENTIFIER, i)) for i in range(128)]


def _subscription_id_bytes(sub_ids: tuple[int, ...]) -> bytes:
    """The Subscription Identifier properties for ``sub_ids``, as a fresh encoding writes them."""
    out = bytearray()
    for sub_id in sub_ids:
        out.append(_SUBSCRIPTION_ID)
        out += _varint(sub_id)
    return bytes(out)


class PublishSplice:
    """A 5.0 PUBLISH encoded once for receivers that differ in their Subscription Identifiers.

    The identifiers go last in the property list (as ``{**properties, SUBSCRIPTION_ID: ids}``
    encodes), so only the Remaining Length, the Property Length and the identifier bytes
    themselves differ between receivers. ``parts(ids)`` gives ``(head, middle)``: the packet is
    ``head + middle + payload`` for QoS 0 and ``head + packet_id + middle + payload`` for QoS
    1/2, byte for byte what ``encode`` gives with the identifiers added to the properties.
    The pieces before the identifiers are kept per length of the identifier bytes: nearly every
    receiver of a fan-out has identifiers of the same length.
    """

    __slots__ = ("_by_size", "_first", "_fixed_size", "_properties", "_topic", "payload")

    def __init__(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        dup: bool,
        properties: Properties | None,
    ) -> None:
        tb = topic.encode("utf-8")
        if len(tb) > 0xFFFF:
            raise ValueError("topic longer than 65535 bytes")
        if not properties:
            block = b"\x00"
        elif type(properties) is PublishProperties and (found := properties.wire_block()):
            block = found
        else:
            if _SUBSCRIPTION_ID in properties:
                raise ValueError("the properties already have a Subscription Identifier")
            block = _encode_properties(properties, PacketType.PUBLISH)
        self._first = 0x30 | (qos << 1) | (8 if dup else 0) | (1 if retain else 0)
        self._topic = _pack_u16(len(tb)) + tb
        self._properties = block[_varint_size(block) :]  # without its Property Length
        # Everything but the Property Length and the properties.
        self._fixed_size = len(self._topic) + len(payload) + (2 if qos else 0)
        self._by_size: dict[int, tuple[bytes, bytes]] = {}
        self.payload = payload

    def parts(self, sub_ids: tuple[int, ...]) -> tuple[bytes, bytes]:
        """``(head, middle)`` of the packet for a receiver with Subscription Identifiers
        ``sub_ids`` (at least one)."""
        if len(sub_ids) == 1 and (only := sub_ids[0]) < 128:
            ids = _SUBSCRIPTION_ID_1[only]  # one call per receiver: the common case inline
        else:
            ids = _subscription_id_bytes(sub_ids)
        n = len(ids)
        fixed = self._by_size.get(n)
        if fixed is None:
            plen = len(self._properties) + n
            plen_bytes = _varint(plen)
            remaining = self._fixed_size + len(plen_bytes) + plen
            head = bytes((self._first,)) + _varint(remaining) + self._topic
            fixed = self._by_size[n] = (head, plen_bytes + self._properties)
        return fixed[0], fixed[1] + ids


def _encode_publish(p: Publish, level: int) -> bytes:
    if p.qos not in (0, 1, 2):
        raise ValueError(f"invalid QoS {p.qos}")
    head, tail = encode_publish_parts(
        p.topic, p.payload, p.qos, p.retain, p.dup, p.properties, level
    )
    if p.qos:
        if not p.packet_id:
            raise ValueError("QoS 1/2 PUBLISH needs a non-zero packet_id")
        return head + _pack_u16(p.packet_id) + tail
    return head + tail


def _encode_connect(c: Connect, level: int) -> bytes:
    level = c.protocol_level
    if c.protocol_name in ("MQTT", "MQIsdp"):
        name = "MQIsdp" if level == MQTT_3_1 else "MQTT"
    else:
        name = c.protocol_name
    flags = 0
    if c.clean_start:
        flags |= 0x02
    will = c.will
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if c.password is not None:
        if c.username is None and level != MQTT_5:
            raise ValueError("a password needs a username before MQTT 5")
        flags |= 0x40
    if c.username is not None:
        flags |= 0x80
    parts = [
        _str(name),
        bytes((level | (0x80 if c.bridge else 0), flags)),
        _pack_u16(c.keepalive),
    ]
    if level == MQTT_5:
        parts.append(_encode_properties(c.properties, PacketType.CONNECT))
    parts.append(_str(c.client_id))
    if will is not None:
        if level == MQTT_5:
            parts.append(_encode_properties(will.properties, WILL))
        parts.append(_str(will.topic))
        parts.append(_bin(will.payload))
    if c.username is not None:
        parts.append(_str(c.username))
    if c.password is not None:
        parts.append(_bin(c.password))
    return _fixed(0x10, b"".join(parts))


def _encode_connack(c: Connack, level: int) -> bytes:
    flags = 1 if (c.session_present and level != MQTT_3_1) else 0
    if level == MQTT_5:
        return _fixed(
            0x20,
            bytes((flags, c.reason_code)) + _encode_properties(c.properties, PacketType.CONNACK),
        )
    return bytes((0x20, 2, flags, c.reason_code))


_ACK_FIRST_BYTE: Final[dict[type, int]] = {Puback: 0x40, Pubrec: 0x50, Pubrel: 0x62, Pubcomp: 0x70}


def _encode_ack(p: Puback | Pubrec | Pubrel | Pubcomp, level: int) -> bytes:
    first = _ACK_FIRST_BYTE[type(p)]
    if level != 5 or (not p.reason_code and not p.properties):
        packet_id = p.packet_id
        return bytes((first, 2, packet_id >> 8, packet_id & 0xFF))
    ptype = p.packet_type
    pid = _pack_u16(p.packet_id)
    if not p.properties:
        return bytes((first, 3)) + pid + bytes((p.reason_code,))
    return _fixed(first, pid + bytes((p.reason_code,)) + _encode_properties(p.properties, ptype))


def _encode_subscribe(s: Subscribe, level: int) -> bytes:
    parts = [_pack_u16(s.packet_id)]
    if level == MQTT_5:
        parts.append(_encode_properties(s.properties, PacketType.SUBSCRIBE))
        for topic_filter, o in s.subscriptions:
            parts.append(_str(topic_filter))
            parts.append(
                bytes(
                    (
                        o.qos
                        | (4 if o.no_local else 0)
                        | (8 if o.retain_as_published else 0)
                        | (o.retain_handling << 4),
                    )
                )
            )
    else:
        for topic_filter, o in s.subscriptions:
            parts.append(_str(topic_filter))
            parts.append(bytes((o.qos,)))
    return _fixed(0x82, b"".join(parts))


def _encode_suback(s: Suback, level: int) -> bytes:
    props = _encode_properties(s.properties, PacketType.SUBACK) if level == MQTT_5 else b""
    return _fixed(0x90, _pack_u16(s.packet_id) + props + bytes(s.reason_codes))


def _encode_unsubscribe(u: Unsubscribe, level: int) -> bytes:
    parts = [_pack_u16(u.packet_id)]
    if level == MQTT_5:
        parts.append(_encode_properties(u.properties, PacketType.UNSUBSCRIBE))
    parts.extend(_str(f) for f in u.topic_filters)
    return _fixed(0xA2, b"".join(parts))


def _encode_unsuback(u: Unsuback, level: int) -> bytes:
    if level != MQTT_5:
        return b"\xb0\x02" + _pack_u16(u.packet_id)
    return _fixed(
        0xB0,
        _pack_u16(u.packet_id)
        + _encode_properties(u.properties, PacketType.UNSUBACK)
        + bytes(u.reason_codes),
    )


def _encode_pingreq(p: Pingreq, level: int) -> bytes:
    return b"\xc0\x00"


def _encode_pingresp(p: Pingresp, level: int) -> bytes:
    return b"\xd0\x00"


def _encode_disconnect(d: Disconnect, level: int) -> bytes:
    if level != MQTT_5 or (d.reason_code == 0 and not d.properties):
        return b"\xe0\x00"
    if not d.properties:
        return bytes((0xE0, 1, d.reason_code))
    return _fixed(
        0xE0, bytes((d.reason_code,)) + _encode_properties(d.properties, PacketType.DISCONNECT)
    )


def _encode_auth(a: Auth, level: int) -> bytes:
    if level != MQTT_5:
        raise ValueError("AUTH exists only in MQTT 5")
    if a.reason_code == 0 and not a.properties:
        return b"\xf0\x00"
    return _fixed(0xF0, bytes((a.reason_code,)) + _encode_properties(a.properties, PacketType.AUTH))


_ENCODERS: Final[dict[type, Callable[[Any, int], bytes]]] = {
    Connect: _encode_connect,
    Connack: _encode_connack,
    Publish: _encode_publish,
    Puback: _encode_ack,
    Pubrec: _encode_ack,
    Pubrel: _encode_ack,
    Pubcomp: _encode_ack,
    Subscribe: _encode_subscribe,
    Suback: _encode_suback,
    Unsubscribe: _encode_unsubscribe,
    Unsuback: _encode_unsuback,
    Pingreq: _encode_pingreq,
    Pingresp: _encode_pingresp,
    Disconnect: _encode_disconnect,
    Auth: _encode_auth,
}


def encode(packet: Packet, protocol_level: int) -> bytes:
    """The wire bytes of ``packet`` for protocol level 3 (3.1), 4 (3.1.1) or 5 (5.0).

    A :class:`Connect` is encoded for its own ``protocol_level``. Fields a version lacks
    (reason codes, properties) are left out before 5.0.
    """
    if protocol_level not in (3, 4, 5):
        raise ValueError(f"unknown protocol level {protocol_level}")
    return _ENCODERS[type(packet)](packet, protocol_level)


# --------------------------------------------------------------------------------------------
# Decoding helpers. All take the buffer, a position and the end of the packet body and return
# (value, new position); they raise MalformedPacket when the field runs past the end.

_Buf = bytearray | bytes


def _truncated(what: str) -> MalformedPacket:
    return MalformedPacket(f"truncated {what}")


def _read_u16(buf: _Buf, p: int, end: int, what: str) -> int:
    if p + 2 > end:
        raise _truncated(what)
    return (buf[p] << 8) | buf[p + 1]


def _check_text(s: str, what: str) -> None:
    if s.isascii() and s.isprintable():  # the common case, without the regular expression
        return
    m = _bad_char_search(s)
    if m is not None:
        raise MalformedPacket(f"{what} contains forbidden character U+{ord(m.group()):04X}")


def _read_str(buf: _Buf, p: int, end: int, what: str) -> tuple[str, int]:
    if p + 2 > end:
        raise _truncated(what)
    q = p + 2 + ((buf[p] << 8) | buf[p + 1])
    if q > end:
        raise _truncated(what)
    try:
        s = buf[p + 2 : q].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket(f"{what} is not valid UTF-8") from None
    _check_text(s, what)
    return s, q


def _read_bin(buf: _Buf, p: int, end: int, what: str) -> tuple[bytes, int]:
    if p + 2 > end:
        raise _truncated(what)
    q = p + 2 + ((buf[p] << 8) | buf[p + 1])
    if q > end:
        raise _truncated(what)
    return bytes(buf[p + 2 : q]), q


def _read_varint(buf: _Buf, p: int, end: int, what: str) -> tuple[int, int]:
    value = 0
    shift = 0
    for i in range(4):
        if p + i >= end:
            raise _truncated(what)
        b = buf[p + i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, p + i + 1
        shift += 7
    raise MalformedPacket(f"{what}: variable byte integer longer than 4 bytes")


def _read_properties(buf: _Buf, p: int, end: int, packet_type: int) -> tuple[Properties, int]:
    props, p, _ = _read_properties_at(buf, p, end, packet_type)
    return props, p


def _read_properties_at(
    buf: _Buf, p: int, end: int, packet_type: int
) -> tuple[Properties, int, int]:
    """Properties, the position after them, and where the first one starts (after Property
    Length); -1 instead of that start when a repeated property was not in one run, that is
    when encoding the dict would not reproduce the bytes."""
    if p < end and buf[p] < 0x80:  # a one-byte property length, nearly always
        pend = p + 1 + buf[p]
        p += 1
    else:
        length, p = _read_varint(buf, p, end, "property length")
        pend = p + length
    if pend > end:
        raise _truncated("properties")
    props: Properties = {}
    type_by_id = _TYPE_BY_ID
    start = p
    last_id = -1
    while p < pend:
        prop_id = buf[p]
        prop = PROPERTY_BY_ID[prop_id] if prop_id < 0x80 else None
        if prop is None:
            raise MalformedPacket(f"unknown property 0x{prop_id:02X}")
        if packet_type not in prop.allowed:
            raise MalformedPacket(f"{prop.name} is not allowed in {_packet_name(packet_type)}")
        p += 1
        t = type_by_id[prop_id]
        value: Any
        if t in (_T_PAIR, _T_UTF8):
            # Strings inline (User Property, Content Type, Response Topic are the common ones).
            if p + 2 > pend:
                raise _truncated(prop.name)
            q = p + 2 + ((buf[p] << 8) | buf[p + 1])
            if q > pend:
                raise _truncated(prop.name)
            try:
                value = buf[p + 2 : q].decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedPacket(f"{prop.name} is not valid UTF-8") from None
            if not (value.isascii() and value.isprintable()):
                _check_text(value, prop.name)
            p = q
            if t == _T_PAIR:
                if p + 2 > pend:
                    raise _truncated(prop.name)
                q = p + 2 + ((buf[p] << 8) | buf[p + 1])
                if q > pend:
                    raise _truncated(prop.name)
                try:
                    second = buf[p + 2 : q].decode("utf-8")
                except UnicodeDecodeError:
                    raise MalformedPacket(f"{prop.name} is not valid UTF-8") from None
                if not (second.isascii() and second.isprintable()):
                    _check_text(second, prop.name)
                p = q
                value = (value, second)
        elif t == _T_U32:
            if p + 4 > pend:
                raise _truncated(prop.name)
            value = int.from_bytes(buf[p : p + 4], "big")
            p += 4
        elif t == _T_BYTE:
            if p >= pend:
                raise _truncated(prop.name)
            value = buf[p]
            p += 1
        elif t == _T_U16:
            value = _read_u16(buf, p, pend, prop.name)
            p += 2
        elif t == _T_VARINT:
            value, p = _read_varint(buf, p, pend, prop.name)
        else:
            value, p = _read_bin(buf, p, pend, prop.name)
        if prop.valid is not None and value not in prop.valid:
            raise ProtocolError(f"invalid {prop.name} value {value}")
        if prop.nonzero and value == 0:
            # MQTT 5 3.3.2.3.4: a Topic Alias of 0 is answered with 0x94 (Topic Alias invalid).
            code = 0x94 if prop_id == PropertyId.TOPIC_ALIAS else None
            raise ProtocolError(f"{prop.name} must not be 0", code)
        if prop.repeatable:
            existing = props.get(prop_id)
            if existing is None:
                props[prop_id] = [value]
            else:
                existing.append(value)
                if last_id != prop_id:
                    start = -1  # interleaved: the dict keeps one run per property
        elif prop_id in props:
            raise MalformedPacket(f"{prop.name} included more than once")
        else:
            props[prop_id] = value
        last_id = prop_id
    return props, pend, start


def _no_trailing(p: int, end: int, what: str) -> None:
    if p != end:
        raise MalformedPacket(f"{end - p} unexpected bytes at the end of {what}")


def _nonzero_id(pid: int, what: str) -> int:
    if pid == 0:
        raise ProtocolError(f"{what} with packet identifier 0")
    return pid


# Reason codes accepted when decoding 5.0 packets: the ones the specification lists for the
# packet, plus any error code (>= 0x80). mosquitto 2.0.11 answers an oversize PUBLISH with
# PUBACK 0x95 (Packet too large), which the specification does not list for PUBACK; refusing
# it would drop the connection over an error report.
_ACCEPTED_CODES: Final[dict[PacketType, frozenset[int]]] = {
    ptype: codes | frozenset(range(0x80, 0x100)) for ptype, codes in VALID_REASON_CODES.items()
}


# --------------------------------------------------------------------------------------------
# Decoders, one per packet type: (buffer, fixed-header flags, body start, body end, level)


def _check_topic_name_slow(topic: str) -> None:
    m = _bad_topic_search(topic)
    if m is not None:
        if m.group() in "+#":
            raise TopicNameInvalid(f"wildcard in PUBLISH topic {topic!r}")
        raise MalformedPacket(f"topic name contains forbidden character U+{ord(m.group()):04X}")


# Topic names already decoded and checked, keyed by their wire bytes: brokers see the same
# few topics again and again. Cleared when full rather than evicted one by one.
_TOPIC_CACHE_SIZE: Final = 4096
_TOPIC_CACHE_MAX_BYTES: Final = 256  # bounds the cache's memory to about 4096 * 2 * 256 bytes
_topic_cache: dict[bytes, str] = {}
_topic_cache_get = _topic_cache.get


def _decode_topic_name(raw: _Buf) -> str:
    try:
        topic = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("topic name is not valid UTF-8") from None
    # Fast path: printable ASCII without wildcards (isprintable() is False for C0 and DEL).
    if not (topic.isascii() and topic.isprintable()) or "+" in topic or "#" in topic:
        _check_topic_name_slow(topic)
    if len(raw) <= _TOPIC_CACHE_MAX_BYTES:
        if len(_topic_cache) >= _TOPIC_CACHE_SIZE:
            _topic_cache.clear()
        _topic_cache[bytes(raw)] = topic
    return topic


_TOPIC_ALIAS: Final = int(PropertyId.TOPIC_ALIAS)
_SUBSCRIPTION_ID: Final = int(PropertyId.SUBSCRIPTION_IDENTIFIER)
_USER_PROPERTY: Final = int(PropertyId.USER_PROPERTY)
_CORRELATION_DATA: Final = int(PropertyId.CORRELATION_DATA)


# Property sections of PUBLISH already decoded, keyed by their bytes (after the one-byte
# Property Length): publishers tend to send the same Content Type and User Properties with
# every message. Only sections that yield PublishProperties are kept, and none with Correlation
# Data (unique per request); a hit hands out a copy.
# Cleared when full, like the topic cache.
_PROPS_CACHE_SIZE: Final = 1024  # entries of at most 127 bytes (one-byte Property Length)
_props_cache: dict[bytes, PublishProperties] = {}
_props_cache_get = _props_cache.get


def _forwarded_whole(props: Properties) -> bool:
    """No property a broker leaves out when forwarding (Topic Alias, Subscription Identifier)."""
    return _TOPIC_ALIAS not in props and _SUBSCRIPTION_ID not in props


def _with_wire(props: Properties, raw: _Buf) -> PublishProperties:
    wired = PublishProperties(props)
    n = len(raw)
    wired._block = (_VARINT_1[n] if n < 128 else _varint(n)) + raw
    user = props.get(_USER_PROPERTY)
    if user is not None:
        props[_USER_PROPERTY] = list(user)  # its own copy: a change to the list shows
    wired._decoded = props
    return wired


def _decode_publish(buf: _Buf, flags: int, p: int, end: int, level: int) -> Publish:
    qos = (flags >> 1) & 3
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    if p + 2 > end:
        raise _truncated("topic name")
    q = p + 2 + ((buf[p] << 8) | buf[p + 1])
    if q > end:
        raise _truncated("topic name")
    raw_topic = buf[p + 2 : q]
    if type(raw_topic) is not bytes:  # a packet that spanned reads: bytearray is unhashable
        raw_topic = bytes(raw_topic)
    topic = _topic_cache_get(raw_topic)
    if topic is None:
        topic = _decode_topic_name(raw_topic)
    p = q
    packet_id = None
    if qos:
        if p + 2 > end:
            raise _truncated("packet identifier")
        packet_id = (buf[p] << 8) | buf[p + 1]
        if not packet_id:
            raise ProtocolError("PUBLISH with packet identifier 0")
        p += 2
    if level == 5:  # a literal is faster than the global MQTT_5
        if p < end and buf[p] == 0:
            props: Properties = {}
            p += 1
        else:
            n = buf[p] if p < end else 0x80
            known = None
            if n < 0x80 and p + 1 + n <= end:
                raw_props = buf[p + 1 : p + 1 + n]
                if type(raw_props) is not bytes:
                    raw_props = bytes(raw_props)
                known = _props_cache_get(raw_props)
            if known is not None:
                props = known.fresh_copy()
                p += 1 + n
            else:
                props, q, start = _read_properties_at(buf, p, end, PacketType.PUBLISH)
                if start >= 0 and props and _forwarded_whole(props):
                    raw_props = buf[start:q]
                    props = _with_wire(props, raw_props)
                    # Correlation Data differs from request to request: not worth keeping.
                    # The lookup needs a one-byte Property Length.
                    if start == p + 1 and _CORRELATION_DATA not in props:
                        if len(_props_cache) >= _PROPS_CACHE_SIZE:
                            _props_cache.clear()
                        _props_cache[bytes(raw_props)] = props.fresh_copy()
                p = q
        if not topic and PropertyId.TOPIC_ALIAS not in props:
            raise TopicNameInvalid("empty PUBLISH topic without a topic alias")
    else:
        if not topic:
            raise TopicNameInvalid("empty PUBLISH topic")
        props = {}
    if type(buf) is bytes:
        payload = buf[p:end]
    elif end - p < 256:  # small: two quick copies beat a memoryview
        payload = bytes(buf[p:end])
    else:  # large, and it spanned reads: copy it once
        with memoryview(buf) as view:
            payload = view[p:end].tobytes()
    # DUP with QoS 0 is tolerated, as mosquitto does.
    return Publish(
        topic,
        payload,
        qos,
        flags & 1 == 1,
        flags & 8 == 8,
        packet_id,
        props,
    )


def _decode_connect_after_level(
    buf: _Buf, flags: int, p: int, end: int, level: int, name: str, bridge: bool
) -> Connect:
    if level != MQTT_3_1 and flags:
        raise MalformedPacket("CONNECT with reserved fixed-header flags set")
    if p + 3 > end:
        raise _truncated("CONNECT variable header")
    cflags = buf[p]
    keepalive = (buf[p + 1] << 8) | buf[p + 2]
    p += 3
    if cflags & 0x01 and level != MQTT_3_1:
        raise MalformedPacket("CONNECT reserved flag set")
    will_flag = cflags & 0x04
    will_qos = (cflags >> 3) & 3
    will_retain = bool(cflags & 0x20)
    if will_qos == 3:
        raise MalformedPacket("CONNECT with will QoS 3")
    if not will_flag and (will_qos or will_retain):
        raise MalformedPacket("CONNECT with will QoS or retain but no will")
    password_flag = cflags & 0x40
    username_flag = cflags & 0x80
    if password_flag and not username_flag and level != MQTT_5:
        raise MalformedPacket("CONNECT with a password but no username")
    props: Properties = {}
    if level == MQTT_5:
        props, p = _read_properties(buf, p, end, PacketType.CONNECT)
        if PropertyId.AUTHENTICATION_DATA in props and (
            PropertyId.AUTHENTICATION_METHOD not in props
        ):
            raise ProtocolError("CONNECT with Authentication Data but no Authentication Method")
    client_id, p = _read_str(buf, p, end, "client identifier")
    will = None
    if will_flag:
        will_props: Properties = {}
        if level == MQTT_5:
            will_props, p = _read_properties(buf, p, end, WILL)
        will_topic, p = _read_str(buf, p, end, "will topic")
        if not will_topic or "+" in will_topic or "#" in will_topic:
            raise TopicNameInvalid(f"invalid will topic {will_topic!r}")
        will_payload, p = _read_bin(buf, p, end, "will payload")
        will = Will(will_topic, will_payload, will_qos, will_retain, will_props)
    username = None
    if username_flag:
        username, p = _read_str(buf, p, end, "username")
    password = None
    if password_flag and not (level == MQTT_3_1 and p == end):
        password, p = _read_bin(buf, p, end, "password")
    _no_trailing(p, end, "CONNECT")
    return Connect(
        level, client_id, bool(cflags & 0x02), keepalive, will, username, password, props,
        name, bridge,
    )  # fmt: skip


def _decode_connack(buf: _Buf, flags: int, p: int, end: int, level: int) -> Connack:
    if p + 2 > end:
        raise _truncated("CONNACK")
    ack_flags = buf[p]
    code = buf[p + 1]
    p += 2
    if level == MQTT_3_1:
        ack_flags = 0  # the whole byte is reserved in 3.1
    elif ack_flags & 0xFE:
        raise MalformedPacket("CONNACK reserved flags set")
    props: Properties = {}
    if level == MQTT_5:
        if code not in _ACCEPTED_CODES[PacketType.CONNACK]:
            raise ProtocolError(f"invalid CONNACK reason code 0x{code:02X}")
        props, p = _read_properties(buf, p, end, PacketType.CONNACK)
    _no_trailing(p, end, "CONNACK")
    return Connack(bool(ack_flags), code, props)


_ACK_CLASSES: Final[
    dict[PacketType, type[Puback] | type[Pubrec] | type[Pubrel] | type[Pubcomp]]
] = {
    PacketType.PUBACK: Puback,
    PacketType.PUBREC: Pubrec,
    PacketType.PUBREL: Pubrel,
    PacketType.PUBCOMP: Pubcomp,
}


def _make_ack_decoder(
    ptype: PacketType,
) -> Callable[[_Buf, int, int, int, int], Puback | Pubrec | Pubrel | Pubcomp]:
    cls = _ACK_CLASSES[ptype]
    valid = _ACCEPTED_CODES[ptype]
    name = ptype.name

    def decode_ack(
        buf: _Buf, flags: int, p: int, end: int, level: int
    ) -> Puback | Pubrec | Pubrel | Pubcomp:
        if end - p == 2:
            pid = (buf[p] << 8) | buf[p + 1]
            if not pid:
                raise ProtocolError(f"{name} with packet identifier 0")
            return cls(pid)
        if level != MQTT_5:
            raise MalformedPacket(f"{name} remaining length must be 2")
        pid = _nonzero_id(_read_u16(buf, p, end, name), name)
        p += 2
        code = buf[p]
        if code not in valid:
            raise ProtocolError(f"invalid {name} reason code 0x{code:02X}")
        p += 1
        props: Properties = {}
        if p < end:
            props, p = _read_properties(buf, p, end, ptype)
        _no_trailing(p, end, name)
        return cls(pid, code, props)

    return decode_ack


def _decode_subscribe(buf: _Buf, flags: int, p: int, end: int, level: int) -> Subscribe:
    pid = _nonzero_id(_read_u16(buf, p, end, "SUBSCRIBE"), "SUBSCRIBE")
    p += 2
    props: Properties = {}
    if level == MQTT_5:
        props, p = _read_properties(buf, p, end, PacketType.SUBSCRIBE)
        if len(props.get(PropertyId.SUBSCRIPTION_IDENTIFIER, ())) > 1:
            raise ProtocolError("SUBSCRIBE with more than one Subscription Identifier")
    subs: list[tuple[str, SubscriptionOptions]] = []
    while p < end:
        topic_filter, p = _read_str(buf, p, end, "topic filter")
        if p >= end:
            raise _truncated("subscription options")
        o = buf[p]
        p += 1
        # 5.0: a malformed shared subscription costs that filter a SUBACK 0x8F, not the
        # connection, so its structure is the broker's to check (_read_str has already
        # refused NUL and other forbidden characters, and 2 length bytes bound its size).
        if level != MQTT_5 or not topic_filter.startswith("$share/"):
            validate_topic_filter(topic_filter, shared=level == MQTT_5)
        if level == MQTT_5:
            if o & 0xC0:
                raise MalformedPacket("SUBSCRIBE options reserved bits set")
            if (o & 0x30) == 0x30:
                raise ProtocolError("SUBSCRIBE with retain handling 3")
            if (o & 3) == 3:
                raise MalformedPacket("SUBSCRIBE with QoS 3")
            no_local = bool(o & 4)
            if no_local and split_shared(topic_filter)[0] is not None:
                raise ProtocolError("No Local set on a shared subscription")
            opts = SubscriptionOptions(o & 3, no_local, bool(o & 8), (o >> 4) & 3)
        else:
            if o > 2:
                raise MalformedPacket(f"SUBSCRIBE with invalid QoS byte 0x{o:02X}")
            opts = SubscriptionOptions(o)
        subs.append((topic_filter, opts))
    if not subs and level != MQTT_3_1:
        raise ProtocolError("SUBSCRIBE without topic filters")
    return Subscribe(pid, subs, props)


def _decode_suback(buf: _Buf, flags: int, p: int, end: int, level: int) -> Suback:
    pid = _nonzero_id(_read_u16(buf, p, end, "SUBACK"), "SUBACK")
    p += 2
    props: Properties = {}
    valid = VALID_SUBACK_CODES_V3
    if level == MQTT_5:
        props, p = _read_properties(buf, p, end, PacketType.SUBACK)
        valid = _ACCEPTED_CODES[PacketType.SUBACK]
    codes = list(buf[p:end])
    if not codes:
        raise ProtocolError("SUBACK without return codes")
    for c in codes:
        if c not in valid:
            raise ProtocolError(f"invalid SUBACK return code 0x{c:02X}")
    return Suback(pid, codes, props)


def _decode_unsubscribe(buf: _Buf, flags: int, p: int, end: int, level: int) -> Unsubscribe:
    pid = _nonzero_id(_read_u16(buf, p, end, "UNSUBSCRIBE"), "UNSUBSCRIBE")
    p += 2
    props: Properties = {}
    if level == MQTT_5:
        props, p = _read_properties(buf, p, end, PacketType.UNSUBSCRIBE)
    filters: list[str] = []
    while p < end:
        topic_filter, p = _read_str(buf, p, end, "topic filter")
        validate_topic_filter(topic_filter, shared=level == MQTT_5)
        filters.append(topic_filter)
    if not filters and level != MQTT_3_1:
        raise ProtocolError("UNSUBSCRIBE without topic filters")
    return Unsubscribe(pid, filters, props)


def _decode_unsuback(buf: _Buf, flags: int, p: int, end: int, level: int) -> Unsuback:
    pid = _nonzero_id(_read_u16(buf, p, end, "UNSUBACK"), "UNSUBACK")
    p += 2
    if level != MQTT_5:
        _no_trailing(p, end, "UNSUBACK")
        return Unsuback(pid)
    props, p = _read_properties(buf, p, end, PacketType.UNSUBACK)
    codes = list(buf[p:end])
    valid = _ACCEPTED_CODES[PacketType.UNSUBACK]
    for c in codes:
        if c not in valid:
            raise ProtocolError(f"invalid UNSUBACK reason code 0x{c:02X}")
    return Unsuback(pid, codes, props)


def _decode_pingreq(buf: _Buf, flags: int, p: int, end: int, level: int) -> Pingreq:
    _no_trailing(p, end, "PINGREQ")
    return Pingreq()


def _decode_pingresp(buf: _Buf, flags: int, p: int, end: int, level: int) -> Pingresp:
    _no_trailing(p, end, "PINGRESP")
    return Pingresp()


def _decode_reason_and_props(
    buf: _Buf, p: int, end: int, ptype: PacketType
) -> tuple[int, Properties]:
    if p == end:
        return 0, {}
    code = buf[p]
    if code not in _ACCEPTED_CODES[ptype]:
        raise ProtocolError(f"invalid {ptype.name} reason code 0x{code:02X}")
    p += 1
    props: Properties = {}
    if p < end:
        props, p = _read_properties(buf, p, end, ptype)
    _no_trailing(p, end, ptype.name)
    return code, props


def _decode_disconnect(buf: _Buf, flags: int, p: int, end: int, level: int) -> Disconnect:
    if level != MQTT_5:
        _no_trailing(p, end, "DISCONNECT")
        return Disconnect()
    code, props = _decode_reason_and_props(buf, p, end, PacketType.DISCONNECT)
    return Disconnect(code, props)


def _decode_auth(buf: _Buf, flags: int, p: int, end: int, level: int) -> Auth:
    if level != MQTT_5:
        raise MalformedPacket("AUTH (packet type 15) is reserved before MQTT 5")
    code, props = _decode_reason_and_props(buf, p, end, PacketType.AUTH)
    return Auth(code, props)


_DECODERS: Final[list[Callable[[_Buf, int, int, int, int], Packet] | None]] = [
    None,  # 0 reserved
    None,  # CONNECT: handled by the reader, which learns the level from it
    _decode_connack,
    _decode_publish,
    _make_ack_decoder(PacketType.PUBACK),
    _make_ack_decoder(PacketType.PUBREC),
    _make_ack_decoder(PacketType.PUBREL),
    _make_ack_decoder(PacketType.PUBCOMP),
    _decode_subscribe,
    _decode_suback,
    _decode_unsubscribe,
    _decode_unsuback,
    _decode_pingreq,
    _decode_pingresp,
    _decode_disconnect,
    _decode_auth,
]

# Leftover bytes below this size are joined with the next read into one bytes object; above
# it (a big packet arriving in pieces) the reader grows a bytearray instead.
_JOIN_LIMIT: Final = 65536

# Fixed-header byte -> class, for acks whose remaining length is 2.
_SHORT_ACKS: Final[dict[int, type[Puback] | type[Pubrec] | type[Pubrel] | type[Pubcomp]]] = {
    0x40: Puback,
    0x50: Pubrec,
    0x62: Pubrel,
    0x70: Pubcomp,
}

_CONNACK_UNACCEPTABLE_VERSION: Final = b"\x20\x02\x00\x01"


def _is_success_ack(buf: _Buf, start: int, end: int) -> bool:
    """A 5.0 ack body spelling Success out: packet id, reason code 0, maybe Property Length 0."""
    return 3 <= end - start <= 4 and not buf[start + 2] | buf[end - 1]


class PacketReader:
    """Turns a byte stream into packets: ``feed(bytes)``, then ``next_packet()`` until None.

    ``protocol_level`` is the level to decode with; on the server side pass None: the first
    packet must then be a CONNECT (anything else raises :class:`ProtocolError`) and decoding it
    sets ``protocol_level`` -- as soon as its protocol level byte has been read, so even when
    the rest of that CONNECT is malformed the caller knows which version to answer in.

    ``max_packet_size`` (whole packet, fixed header included; 0 = the protocol maximum) is
    checked as soon as the fixed header is complete: :class:`PacketTooLarge` is raised before
    the rest of the packet is waited for.

    After the first error the reader is poisoned: every later call re-raises that error, as
    the connection must be closed anyway.
    """

    __slots__ = ("_buf", "_error", "_pos", "max_packet_size", "protocol_level")

    def __init__(self, protocol_level: int | None = None, max_packet_size: int = 0) -> None:
        if protocol_level not in (None, 3, 4, 5):
            raise ValueError(f"unknown protocol level {protocol_level}")
        self.protocol_level = protocol_level
        self.max_packet_size = max_packet_size
        # Usually the bytes object just received (no copy); a bytearray only while a packet
        # spans several reads, so that appending stays linear.
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._error: MQTTError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as packets."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        pos = self._pos
        leftover = len(buf) - pos
        if not leftover:
            self._buf = data if type(data) is bytes else bytes(data)
        elif leftover < _JOIN_LIMIT:
            # Under a flood nearly every read ends inside a packet: joining the small leftover
            # with the new read keeps decoding on the bytes fast path.
            self._buf = b"".join((memoryview(buf)[pos:], data))
        elif type(buf) is bytes:
            self._buf = bytearray(memoryview(buf)[pos:])
            self._buf += data
        else:
            # A big packet arriving over many reads: grow in place so the total stays linear.
            assert isinstance(buf, bytearray)
            if pos:
                del buf[:pos]  # cheap: CPython moves the bytearray's start
            buf += data
        self._pos = 0

    def feed_all(self, data: bytes | bytearray | memoryview) -> list[Packet]:
        """Feed ``data`` and return every packet now complete; raises at the first error."""
        self.feed(data)
        packets: list[Packet] = []
        next_packet = self.next_packet
        while (packet := next_packet()) is not None:
            packets.append(packet)
        return packets

    def next_packet(self) -> Packet | None:
        """The next complete packet, or None if more bytes are needed."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        pos = self._pos
        size = len(buf)
        if size - pos < 2:
            return None
        try:
            first = buf[pos]
            b = buf[pos + 1]
            if b < 0x80:
                start = pos + 2
                end = start + b
            else:
                remaining = b & 0x7F
                shift = 7
                i = pos + 2
                while True:
                    if i - pos > 4:
                        raise MalformedPacket("remaining length longer than 4 bytes")
                    if i >= size:
                        return None
                    b = buf[i]
                    remaining |= (b & 0x7F) << shift
                    i += 1
                    if not b & 0x80:
                        break
                    shift += 7
                start = i
                end = start + remaining
            if self.max_packet_size and end - pos > self.max_packet_size:
                raise PacketTooLarge(
                    f"packet of {end - pos} bytes exceeds the maximum of {self.max_packet_size}"
                )
            ptype = first >> 4
            level = self.protocol_level
            if level is None and ptype != PacketType.CONNECT:
                raise ProtocolError("first packet is not CONNECT")
            if end > size:
                return None
            if ptype == 3 and level is not None:  # PUBLISH
                packet: Packet = _decode_publish(buf, first & 0x0F, start, end, level)
            elif (
                first in _SHORT_ACKS
                and level is not None
                and (end - start == 2 or (level == 5 and _is_success_ack(buf, start, end)))
            ):
                # PUBACK/PUBREC/PUBREL/PUBCOMP saying success: the other hot packets
                packet_id = (buf[start] << 8) | buf[start + 1]
                if not packet_id:
                    raise ProtocolError(f"{PacketType(ptype).name} with packet identifier 0")
                packet = _SHORT_ACKS[first](packet_id)
            else:
                packet = self._decode_other(buf, first, start, end, level)
        except MQTTError as exc:
            self._error = exc
            raise
        if end == size:
            # Drop the consumed read at once: idle connections should not pin their last read.
            self._buf = b""
            self._pos = 0
        else:
            self._pos = end
        return packet

    def _decode_other(
        self, buf: _Buf, first: int, start: int, end: int, level: int | None
    ) -> Packet:
        ptype = first >> 4
        flags = first & 0x0F
        if level is None or ptype == PacketType.CONNECT:
            return self._decode_connect(buf, flags, start, end)
        if ptype == 0:
            raise MalformedPacket("packet type 0 is reserved")
        if level != MQTT_3_1 and flags != _FIXED_FLAGS[ptype]:
            raise MalformedPacket(
                f"{PacketType(ptype).name} with invalid fixed-header flags 0x{flags:X}"
            )
        decoder = _DECODERS[ptype]
        assert decoder is not None
        return decoder(buf, flags, start, end, level)

    def _decode_connect(self, buf: _Buf, flags: int, p: int, end: int) -> Connect:
        name, p = _read_str(buf, p, end, "protocol name")
        if p >= end:
            raise _truncated("protocol level")
        level_byte = buf[p]
        level = level_byte & 0x7F
        bridge = bool(level_byte & 0x80)
        if name == "MQIsdp":
            known = level == MQTT_3_1
        elif name == "MQTT":
            known = level in (4, 5)
        else:
            raise UnsupportedProtocolVersion(
                f"unknown protocol name {name!r}",
                protocol_name=name,
                protocol_level=level,
                connack=None,
            )
        if not known:
            raise UnsupportedProtocolVersion(
                f"unsupported protocol level {level} for {name}",
                protocol_name=name,
                protocol_level=level,
                connack=_CONNACK_UNACCEPTABLE_VERSION,
            )
        if self.protocol_level is None:
            self.protocol_level = level
        return _decode_connect_after_level(buf, flags, p + 1, end, level, name, bridge)


def decode(data: bytes | bytearray, protocol_level: int | None = None) -> Packet:
    """Decode exactly one complete packet (a convenience for tests and tools)."""
    reader = PacketReader(protocol_level)
    reader.feed(data)
    packet = reader.next_packet()
    if packet is None:
        raise MalformedPacket("incomplete packet")
    if reader.buffered:
        raise MalformedPacket(f"{reader.buffered} bytes after the packet")
    return packet
