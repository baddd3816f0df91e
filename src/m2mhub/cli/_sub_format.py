"""mosquitto_sub's ``-F`` output format: ``%`` fields, ``@`` time fields and ``\\`` escapes.

Fields: ``%%`` ``%l`` (payload length) ``%m`` (message id) ``%p`` (payload) ``%q`` ``%r``
``%t`` ``%x``/``%X`` (payload as hex) ``%I`` (ISO 8601 time) ``%U`` (Unix time with
nanoseconds) ``%j`` (JSON) ``%J`` (JSON, payload embedded as JSON); MQTT 5 properties ``%A``
(topic alias) ``%C`` (content type) ``%D`` (correlation data) ``%E`` (message expiry) ``%F``
(payload format) ``%P`` (user properties as ``name:value ...``) ``%R`` (response topic) ``%S``
(subscription identifiers), empty when absent. printf's ``-``, ``0`` and a width apply
(``%-10t``, ``%08p``), except to ``%q`` and ``%r``, as in mosquitto. ``@`` followed by a
strftime letter is the time (``@@`` is ``@``); escapes ``\\\\`` ``\\0`` ``\\a``
``\\e`` ``\\n`` ``\\r`` ``\\t`` ``\\v``. Unknown fields are refused up front
(:func:`check_format`), with mosquitto's messages.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

from m2mhub.client.mqtt import Message

_ESCAPES = {
    "\\": b"\\",
    "0": b"\0",
    "a": b"\a",
    "e": b"\x1b",
    "n": b"\n",
    "r": b"\r",
    "t": b"\t",
    "v": b"\v",
}


def _iso_time(now: float) -> str:
    return datetime.fromtimestamp(now).astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")


def _json(message: Message, now: float) -> bytes:
    stamp = datetime.fromtimestamp(now).astimezone()
    tst = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond:06d}Z" + stamp.strftime("%z")
    try:
        payload: object = message.payload.decode("utf-8")
    except UnicodeDecodeError:
        payload = None
    record = {
        "tst": tst,
        "topic": message.topic,
        "qos": message.qos,
        "retain": int(message.retain),
        "payloadlen": len(message.payload),
    }
    if message.qos:
        record["mid"] = message.mid
    record["payload"] = payload
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# MQTT 5 property fields: empty when the message does not carry the property.
_PROPERTY_FIELDS = {
    "A": 0x23,  # Topic Alias
    "C": 0x03,  # Content Type
    "D": 0x09,  # Correlation Data
    "E": 0x02,  # Message Expiry Interval
    "F": 0x01,  # Payload Format Indicator
    "P": 0x26,  # User Property, as "name:value name2:value2"
    "R": 0x08,  # Response Topic
    "S": 0x0B,  # Subscription Identifier(s)
}


def _property_field(code: str, message: Message) -> bytes:
    value = message.properties.get(_PROPERTY_FIELDS[code])
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if code == "P":
        return " ".join(f"{k}:{v}" for k, v in value).encode()
    if isinstance(value, list):
        return " ".join(str(v) for v in value).encode()
    return str(value).encode()


VALID_FIELDS = frozenset("%ACDEFIjJlmPpqRrStUxX")
_UNPADDED = frozenset("qr%")


class FormatError(ValueError):
    """A ``-F`` format mosquitto_sub would refuse; the text is its error message."""


def check_format(fmt: str) -> None:
    """Refuse what mosquitto_sub refuses at start-up (unknown or incomplete ``%`` fields)."""
    i, n = 0, len(fmt)
    while i < n:
        if fmt[i] == "%":
            i += 1
            while i < n and fmt[i] in "-0123456789.":
                i += 1
            if i >= n:
                raise FormatError("Incomplete format specifier.")
            if fmt[i] not in VALID_FIELDS:
                raise FormatError(f"Invalid format specifier '{fmt[i]}'.")
        elif fmt[i] in "@\\":
            i += 1
        i += 1


def _pad(field: bytes, spec: str) -> bytes:
    """Apply ``-`` (left align), ``0`` (zero fill) and a width, as printf does."""
    left = "-" in spec
    zero = spec.startswith("0") or spec.startswith("-0")
    width_text = spec.lstrip("-0").split(".", 1)[0]
    width = int(width_text) if width_text.isdigit() else 0
    if len(field) >= width:
        return field
    fill = b" " * (width - len(field))
    if left:
        return field + fill
    return (b"0" * (width - len(field)) if zero else fill) + field


def _json_payload(message: Message, now: float) -> bytes | None:
    """``%J``: like ``%j`` with the payload embedded as JSON (None if it is not JSON)."""
    try:
        payload = json.loads(message.payload)
    except ValueError:
        return None
    record = json.loads(_json(message, now))
    record["payload"] = payload
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def format_message(fmt: str, message: Message) -> bytes | None:
    """The bytes ``-F fmt`` prints for one message (without the end of line).

    None when the message cannot be shown that way (``%J`` with a payload that is not JSON).
    """
    out = bytearray()
    now = time.time()
    i = 0
    n = len(fmt)
    while i < n:
        ch = fmt[i]
        if ch == "%" and i + 1 < n:
            j = i + 1
            while j < n - 1 and fmt[j] in "-0123456789.":
                j += 1
            spec, code = fmt[i + 1 : j], fmt[j]
            i = j + 1
            field = _field(code, message, now)
            if field is None:
                return None
            out += field if code in _UNPADDED or not spec else _pad(field, spec)
        elif ch in "@\\" and i + 1 < n:
            code = fmt[i + 1]
            i += 2
            if ch == "\\":
                out += _ESCAPES.get(code, ("\\" + code).encode())
            else:
                out += b"@" if code == "@" else time.strftime("%" + code).encode()
        else:
            out += ch.encode()
            i += 1
    return bytes(out)


def _field(code: str, message: Message, now: float) -> bytes | None:
    if code == "p":
        return message.payload
    if code == "t":
        return message.topic.encode()
    if code == "q":
        return str(message.qos).encode()
    if code == "r":
        return b"1" if message.retain else b"0"
    if code == "l":
        return str(len(message.payload)).encode()
    if code == "m":
        return str(message.mid).encode()
    if code == "x":
        return message.payload.hex().encode()
    if code == "X":
        return message.payload.hex().upper().encode()
    if code == "I":
        return _iso_time(now).encode()
    if code == "U":
        return f"{now:.9f}".encode()
    if code == "j":
        return _json(message, now)
    if code == "J":
        return _json_payload(message, now)
    if code in _PROPERTY_FIELDS:
        return _property_field(code, message)
    if code == "%":
        return b"%"
    return ("%" + code).encode()
