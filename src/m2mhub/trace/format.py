"""The one packet formatter: MQTT packets (3.1, 3.1.1, 5.0) and CoAP messages, as a one-line
summary, a detailed multi-line form with a hex dump, or JSON (sans-IO, no clock reads).

Callers that hold decoded objects (the broker's ``-v``, the clients' ``-d``/``-v``) use the
content functions directly::

    mqtt_summary(packet)                 # "PUBLISH (d0, q1, r0, m3, 'test/message', 9 bytes)"
    mqtt_detail(packet, level, raw)      # list of indented lines, hex dump when raw is given
    mqtt_json(packet, level, raw)        # a dict ready for json.dumps
    coap_summary(msg)                    # "CON GET mid=0x1a2b token=7f /alarm Observe=0"
    coap_detail(msg, raw) / coap_json(msg, raw)

The tracer combines them with time, direction and connection via :class:`PacketFormatter`,
which also renders malformed bytes (``MALFORMED (0x81 Malformed Packet: ...) 12 bytes``) and
the raw chunks that follow them.
"""

from __future__ import annotations

import dataclasses
import json
import time as _time
from collections.abc import Callable
from typing import Any, Final, Literal

from m2mhub.coap import options as co
from m2mhub.coap.message import TYPE_NAMES, Message
from m2mhub.mqtt.errors import MQTTError
from m2mhub.mqtt.packets import (
    MQTT_5,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
)
from m2mhub.mqtt.properties import PropertyId, property_name
from m2mhub.mqtt.reason_codes import connack_string, reason_string

__all__ = [
    "CLIENT_TO_SERVER",
    "SERVER_TO_CLIENT",
    "PacketFormatter",
    "Style",
    "coap_detail",
    "coap_json",
    "coap_summary",
    "hexdump",
    "mqtt_detail",
    "mqtt_json",
    "mqtt_summary",
]

Style = Literal["line", "detail", "json"]

CLIENT_TO_SERVER: Final = "->"
SERVER_TO_CLIENT: Final = "<-"

_VERSION_NAMES: Final = {3: "3.1", 4: "3.1.1", 5: "5.0"}
_INDENT: Final = "    "
_INLINE_HEX_LIMIT: Final = 64


# --------------------------------------------------------------------------------------------
# Small renderers


def hexdump(data: bytes, indent: str = _INDENT) -> list[str]:
    """Lines of ``offset  16 hex bytes  ascii``, as ``hexdump -C`` and Wireshark show them."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk[:8])
        if len(chunk) > 8:
            hexes += "  " + " ".join(f"{b:02x}" for b in chunk[8:])
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{indent}{off:04x}  {hexes:<49} {text}")
    return lines


def _bytes_text(data: bytes, limit: int = 80) -> str:
    """Printable UTF-8 as a quoted string, anything else as hex."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.isprintable():
        shown = repr(text[:limit])
        return shown + ("..." if len(text) > limit else "")
    hexed = data[:limit].hex()
    return f"0x{hexed}" + ("..." if len(data) > limit else "")


def _inline_hex(data: bytes) -> str:
    shown = data[:_INLINE_HEX_LIMIT].hex(" ")
    return shown + (" ..." if len(data) > _INLINE_HEX_LIMIT else "")


def _rc(code: int, level: int | None) -> str:
    if level == MQTT_5:
        return f"0x{code:02X} {reason_string(code)}"
    return str(code)


def _prop_value(prop_id: int, value: Any) -> str:
    if prop_id == PropertyId.USER_PROPERTY:
        return ", ".join(f"({k!r}, {v!r})" for k, v in value)
    if prop_id == PropertyId.SUBSCRIPTION_IDENTIFIER:
        return ", ".join(str(v) for v in value)
    if isinstance(value, bytes):
        return _bytes_text(value)
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _prop_json(prop_id: int, value: Any) -> Any:
    if prop_id == PropertyId.USER_PROPERTY:
        return [[k, v] for k, v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


# --------------------------------------------------------------------------------------------
# MQTT: summary


def _flag(b: bool) -> int:
    return 1 if b else 0


def _props_suffix(props: dict[int, Any]) -> str:
    if not props:
        return ""
    return ", " + ", ".join(f"{property_name(k)}={_prop_value(k, v)}" for k, v in props.items())


def mqtt_summary(packet: Packet, level: int | None = None) -> str:
    """One line in mosquitto's ``-d`` style, e.g. ``PUBLISH (d0, q2, r0, m3, 'a/b', 9 bytes)``.

    ``level`` (3, 4 or 5) decides how reason codes read; MQTT 5 properties are appended by
    name. When it is None, a CONNECT's own level is used and 3.1.1 is assumed otherwise.
    """
    name = packet.packet_type.name
    if isinstance(packet, Connect):
        level = packet.protocol_level
        parts = [
            f"p{packet.protocol_level}",
            f"c{_flag(packet.clean_start)}",
            f"k{packet.keepalive}",
            f"id {packet.client_id!r}",
        ]
        if packet.username is not None:
            parts.append(f"u{packet.username!r}")
        if packet.password is not None:
            parts.append(f"pw {len(packet.password)} bytes")
        if packet.will is not None:
            w = packet.will
            parts.append(f"will q{w.qos} r{_flag(w.retain)} {w.topic!r} {len(w.payload)} bytes")
        return f"{name} ({', '.join(parts)}{_props_suffix(packet.properties)})"
    if isinstance(packet, Connack):
        rc = (
            _rc(packet.reason_code, level)
            if level == MQTT_5
            else f"{packet.reason_code} {connack_string(packet.reason_code)}"
        )
        return (
            f"{name} (sp{_flag(packet.session_present)}, rc={rc}{_props_suffix(packet.properties)})"
        )
    if isinstance(packet, Publish):
        mid = packet.packet_id if packet.packet_id is not None else 0
        return (
            f"{name} (d{_flag(packet.dup)}, q{packet.qos}, r{_flag(packet.retain)}, m{mid}, "
            f"{packet.topic!r}, {len(packet.payload)} bytes{_props_suffix(packet.properties)})"
        )
    if isinstance(packet, (Puback, Pubrec, Pubrel, Pubcomp)):
        rc = f", rc={_rc(packet.reason_code, MQTT_5)}" if packet.reason_code else ""
        return f"{name} (m{packet.packet_id}{rc}{_props_suffix(packet.properties)})"
    if isinstance(packet, Subscribe):
        subs = []
        for topic, opts in packet.subscriptions:
            text = f"{topic!r} q{opts.qos}"
            if level == MQTT_5:
                text += (
                    f" nl{_flag(opts.no_local)} rap{_flag(opts.retain_as_published)}"
                    f" rh{opts.retain_handling}"
                )
            subs.append(text)
        return f"{name} (m{packet.packet_id}, {', '.join(subs)}{_props_suffix(packet.properties)})"
    if isinstance(packet, Suback):
        codes = ", ".join(
            f"0x{c:02X}" if c >= 0x80 or level == MQTT_5 else str(c) for c in packet.reason_codes
        )
        return f"{name} (m{packet.packet_id}, [{codes}]{_props_suffix(packet.properties)})"
    if isinstance(packet, Unsubscribe):
        topics = ", ".join(repr(t) for t in packet.topic_filters)
        return f"{name} (m{packet.packet_id}, {topics}{_props_suffix(packet.properties)})"
    if isinstance(packet, Unsuback):
        codes = ""
        if packet.reason_codes:
            codes = ", [" + ", ".join(f"0x{c:02X}" for c in packet.reason_codes) + "]"
        return f"{name} (m{packet.packet_id}{codes}{_props_suffix(packet.properties)})"
    if isinstance(packet, (Disconnect, Auth)):
        if level != MQTT_5:
            return name
        return f"{name} (rc={_rc(packet.reason_code, MQTT_5)}{_props_suffix(packet.properties)})"
    return name  # PINGREQ, PINGRESP


# --------------------------------------------------------------------------------------------
# MQTT: detail and JSON share one walk over the packet's fields


def _fields(packet: Packet, level: int | None) -> list[tuple[str, Any]]:
    """(name, value) for every field that exists in this protocol version."""
    out = []
    v5 = level == MQTT_5 or (isinstance(packet, Connect) and packet.protocol_level == MQTT_5)
    for f in dataclasses.fields(packet):
        value = getattr(packet, f.name)
        if not v5 and f.name == "properties":
            continue
        if not v5 and f.name == "reason_code" and not isinstance(packet, Connack):
            continue
        if not v5 and isinstance(packet, Unsuback) and f.name == "reason_codes":
            continue
        out.append((f.name, value))
    return out


def _detail_value(name: str, value: Any, indent: str) -> list[str]:
    label = name.replace("_", " ")
    if name == "properties":
        if not value:
            return [f"{indent}properties: none"]
        lines = [f"{indent}properties:"]
        for k, v in value.items():
            lines.append(f"{indent}  {property_name(k)} (0x{k:02X}): {_prop_value(k, v)}")
        return lines
    if name == "will":
        if value is None:
            return [f"{indent}will: none"]
        lines = [f"{indent}will:"]
        for f in dataclasses.fields(value):
            lines += _detail_value(f.name, getattr(value, f.name), indent + "  ")
        return lines
    if name == "subscriptions":
        lines = [f"{indent}subscriptions:"]
        for topic, opts in value:
            lines.append(
                f"{indent}  {topic!r}: qos {opts.qos}, no local {_flag(opts.no_local)}, "
                f"retain as published {_flag(opts.retain_as_published)}, "
                f"retain handling {opts.retain_handling}"
            )
        return lines
    if isinstance(value, bytes):
        return [f"{indent}{label} ({len(value)} bytes): {_bytes_text(value)}"]
    if isinstance(value, bool):
        return [f"{indent}{label}: {_flag(value)}"]
    if isinstance(value, str):
        return [f"{indent}{label}: {value!r}"]
    if isinstance(value, list):
        return [f"{indent}{label}: [{', '.join(repr(x) for x in value)}]"]
    return [f"{indent}{label}: {value}"]


def _fixed_header_line(raw: bytes) -> str:
    i = 1
    remaining = 0
    shift = 0
    while i < len(raw) and i <= 4:
        b = raw[i]
        remaining |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            break
        shift += 7
    return (
        f"fixed header: type {raw[0] >> 4}, flags 0x{raw[0] & 15:X}, "
        f"remaining length {remaining}, {len(raw)} bytes in all"
    )


def mqtt_detail(packet: Packet, level: int | None = None, raw: bytes | None = None) -> list[str]:
    """Every field of the packet (each MQTT 5 property by name), then a hex dump of ``raw``."""
    if isinstance(packet, Connect):
        level = packet.protocol_level
    lines = [f"{_INDENT}protocol: MQTT {_VERSION_NAMES.get(level or 4, str(level))}"]
    if raw:
        lines.append(_INDENT + _fixed_header_line(raw))
    for name, value in _fields(packet, level):
        if name == "reason_code":
            text = _rc(value, MQTT_5) if level == MQTT_5 else f"{value} {connack_string(value)}"
            lines.append(f"{_INDENT}reason code: {text}")
            continue
        lines += _detail_value(name, value, _INDENT)
    if raw:
        lines += hexdump(raw)
    return lines


def _json_value(name: str, value: Any) -> Any:
    if name == "properties":
        return {property_name(k): _prop_json(k, v) for k, v in value.items()}
    if name == "will":
        if value is None:
            return None
        return {
            f.name: _json_value(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if name == "subscriptions":
        return [
            {
                "topic": topic,
                "qos": opts.qos,
                "no_local": opts.no_local,
                "retain_as_published": opts.retain_as_published,
                "retain_handling": opts.retain_handling,
            }
            for topic, opts in value
        ]
    if isinstance(value, bytes):
        return value.hex()
    return value


def mqtt_json(packet: Packet, level: int | None = None, raw: bytes | None = None) -> dict[str, Any]:
    """The packet as a JSON-ready dict: ``type``, every field (bytes as hex), ``raw`` hex."""
    if isinstance(packet, Connect):
        level = packet.protocol_level
    out: dict[str, Any] = {"protocol": "mqtt", "type": packet.packet_type.name}
    if level is not None:
        out["level"] = level
    for name, value in _fields(packet, level):
        out[name] = _json_value(name, value)
    if isinstance(packet, Publish):
        out["payload_length"] = len(packet.payload)
    if raw is not None:
        out["raw"] = raw.hex()
    return out


# --------------------------------------------------------------------------------------------
# CoAP


def _coap_code(code: int) -> str:
    if co.is_request(code) or code == 0:
        return co.code_name(code).split(" ", 1)[-1] if code else "Empty"
    return co.code_name(code)


def _option_text(number: int, value: Any) -> str:
    if number in (co.BLOCK1, co.BLOCK2) and isinstance(value, int):
        num, more, szx = co.block_parts(value)
        return f"{num}/{'M' if more else '_'}/{co.szx_size(szx)}"
    if number in (co.CONTENT_FORMAT, co.ACCEPT) and isinstance(value, int):
        return co.CONTENT_FORMAT_NAMES.get(value, str(value))
    if isinstance(value, bytes):
        return f"0x{value.hex()}" if value else ""
    return str(value)


def coap_summary(msg: Message) -> str:
    """One line: ``CON GET mid=0x1a2b token=7f /alarm Observe=0`` (path and query as a URI
    part, other options as Name=value, then the payload)."""
    t = TYPE_NAMES[msg.mtype] if msg.mtype is not None else "?"
    mid = f"0x{msg.mid:04x}" if msg.mid is not None else "?"
    parts = [t, _coap_code(msg.code), f"mid={mid}"]
    if msg.token:
        parts.append(f"token={msg.token.hex()}")
    path = [v for n, v in msg.options if n == co.URI_PATH]
    query = [v for n, v in msg.options if n == co.URI_QUERY]
    if path or query:
        uri = "/" + "/".join(str(p) for p in path)
        if query:
            uri += "?" + "&".join(str(q) for q in query)
        parts.append(uri)
    for number, value in msg.options:
        if number in (co.URI_PATH, co.URI_QUERY):
            continue
        text = _option_text(number, value)
        parts.append(f"{co.option_name(number)}={text}" if text else co.option_name(number))
    if msg.payload:
        parts.append(f"{_bytes_text(msg.payload, 40)} ({len(msg.payload)} bytes)")
    return " ".join(parts)


def coap_detail(msg: Message, raw: bytes | None = None) -> list[str]:
    """Header fields, each option by name and number, the payload, then a hex dump."""
    t = TYPE_NAMES[msg.mtype] if msg.mtype is not None else "?"
    lines = [
        f"{_INDENT}type: {t}",
        f"{_INDENT}code: {co.code_name(msg.code)}",
        f"{_INDENT}message id: {msg.mid}" + (f" (0x{msg.mid:04x})" if msg.mid is not None else ""),
        f"{_INDENT}token ({len(msg.token)} bytes): {msg.token.hex() or '(empty)'}",
    ]
    if msg.options:
        lines.append(f"{_INDENT}options:")
        for number, value in msg.options:
            text = _option_text(number, value)
            if isinstance(value, str):
                text = repr(value)
            lines.append(f"{_INDENT}  {co.option_name(number)} ({number}): {text}")
    else:
        lines.append(f"{_INDENT}options: none")
    if msg.payload:
        lines.append(f"{_INDENT}payload ({len(msg.payload)} bytes): {_bytes_text(msg.payload)}")
    if raw:
        lines += hexdump(raw)
    return lines


def coap_json(msg: Message, raw: bytes | None = None) -> dict[str, Any]:
    """The message as a JSON-ready dict."""
    out: dict[str, Any] = {
        "protocol": "coap",
        "type": TYPE_NAMES[msg.mtype] if msg.mtype is not None else None,
        "code": co.code_dotted(msg.code),
        "code_name": co.code_name(msg.code),
        "mid": msg.mid,
        "token": msg.token.hex(),
        "options": [
            {
                "number": n,
                "name": co.option_name(n),
                "value": v.hex() if isinstance(v, bytes) else v,
            }
            for n, v in msg.options
        ],
        "payload": msg.payload.hex(),
    }
    if raw is not None:
        out["raw"] = raw.hex()
    return out


# --------------------------------------------------------------------------------------------
# Putting it together: time, direction, connection


def _clock_text(when: float) -> str:
    t = _time.gmtime(when)
    return f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{int(when % 1 * 1e6):06d}"


class PacketFormatter:
    """Renders traced units as text in one style (``line``, ``detail`` or ``json``).

    Each method returns the full text for one unit (one line, several lines, or one JSON
    object on one line); ``when`` is a Unix time (UTC), ``direction`` is
    :data:`CLIENT_TO_SERVER` or :data:`SERVER_TO_CLIENT`, ``conn`` names the connection (the
    tracer uses ``c1``, ``c2``, ... plus the client id once CONNECT has shown it).
    """

    __slots__ = ("_clock", "style")

    def __init__(self, style: Style = "line", clock: Callable[[float], str] = _clock_text) -> None:
        self.style = style
        self._clock = clock

    def _head(self, when: float, direction: str, conn: str) -> str:
        return f"{self._clock(when)} {conn} {direction}"

    def _json(self, body: dict[str, Any], when: float, direction: str, conn: str) -> str:
        record = {"time": when, "direction": direction, "conn": conn, **body}
        return json.dumps(record, ensure_ascii=False)

    def mqtt(
        self,
        packet: Packet,
        *,
        when: float,
        direction: str,
        conn: str,
        level: int | None = None,
        raw: bytes | None = None,
    ) -> str:
        """A decoded MQTT packet."""
        if self.style == "json":
            return self._json(mqtt_json(packet, level, raw), when, direction, conn)
        line = f"{self._head(when, direction, conn)} {mqtt_summary(packet, level)}"
        if self.style == "detail":
            return "\n".join([line, *mqtt_detail(packet, level, raw)])
        return line

    def coap(
        self, msg: Message, *, when: float, direction: str, conn: str, raw: bytes | None = None
    ) -> str:
        """A decoded CoAP message."""
        if self.style == "json":
            return self._json(coap_json(msg, raw), when, direction, conn)
        line = f"{self._head(when, direction, conn)} {coap_summary(msg)}"
        if self.style == "detail":
            return "\n".join([line, *coap_detail(msg, raw)])
        return line

    def malformed(
        self,
        raw: bytes,
        error: MQTTError | Exception,
        *,
        when: float,
        direction: str,
        conn: str,
        protocol: str,
    ) -> str:
        """Bytes that failed to decode: ``MALFORMED (0x81 Malformed Packet: why) 12 bytes``."""
        if isinstance(error, MQTTError):
            reason = f"0x{error.reason_code:02X} {reason_string(error.reason_code)}: {error.reason}"
        else:
            reason = str(error)
        if self.style == "json":
            body = {"protocol": protocol, "type": "MALFORMED", "error": reason, "raw": raw.hex()}
            return self._json(body, when, direction, conn)
        line = f"{self._head(when, direction, conn)} MALFORMED ({reason}) {len(raw)} bytes"
        if self.style == "detail":
            return "\n".join([line, *hexdump(raw)])
        return f"{line} {_inline_hex(raw)}" if raw else line

    def raw(self, data: bytes, *, when: float, direction: str, conn: str, protocol: str) -> str:
        """Bytes after a decode error, shown undecoded: ``RAW 12 bytes 30 0a ...``."""
        if self.style == "json":
            body = {"protocol": protocol, "type": "RAW", "raw": data.hex()}
            return self._json(body, when, direction, conn)
        line = f"{self._head(when, direction, conn)} RAW {len(data)} bytes"
        if self.style == "detail":
            return "\n".join([line, *hexdump(data)])
        return f"{line} {_inline_hex(data)}"

    def event(self, text: str, *, when: float, conn: str, protocol: str) -> str:
        """A connection event (opened, closed), not a packet."""
        if self.style == "json":
            return json.dumps({"time": when, "conn": conn, "protocol": protocol, "event": text})
        return f"{self._clock(when)} {conn} -- {text}"
