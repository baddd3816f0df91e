"""mosquitto_sub's ``-F`` output format: ``%`` fields, ``@`` time fields and ``\\`` escapes.

Supported: ``%%`` ``%c`` (client id) ``%l`` (payload length) ``%m`` (message id) ``%p``
(payload) ``%q`` ``%r`` ``%t`` ``%x``/``%X`` (payload as hex) ``%I`` (ISO 8601 time) ``%U``
(Unix time with nanoseconds) ``%j`` (JSON); MQTT 5 properties ``%A`` (topic alias) ``%C``
(content type) ``%D`` (correlation data) ``%E`` (message expiry) ``%F`` (payload format)
``%P`` (user properties as ``name:value ...``) ``%R`` (response topic) ``%S`` (subscription
identifiers), empty when absent; ``@`` followed by a strftime letter (``@@`` is
``@``); escapes ``\\\\`` ``\\0`` ``\\a`` ``\\e`` ``\\n`` ``\\r`` ``\\t`` ``\\v``. Unknown
``%`` fields print as given.
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
        "payload": payload,
    }
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


def format_message(fmt: str, message: Message, client_id: str) -> bytes:
    """The bytes ``-F fmt`` prints for one message (without the end of line)."""
    out = bytearray()
    now = time.time()
    i = 0
    n = len(fmt)
    while i < n:
        ch = fmt[i]
        if ch in "%@\\" and i + 1 < n:
            code = fmt[i + 1]
            i += 2
            if ch == "\\":
                out += _ESCAPES.get(code, ("\\" + code).encode())
            elif ch == "@":
                out += b"@" if code == "@" else time.strftime("%" + code).encode()
            elif code == "%":
                out += b"%"
            elif code == "c":
                out += client_id.encode()
            elif code == "l":
                out += str(len(message.payload)).encode()
            elif code == "m":
                out += str(message.mid).encode()
            elif code == "p":
                out += message.payload
            elif code == "q":
                out += str(message.qos).encode()
            elif code == "r":
                out += b"1" if message.retain else b"0"
            elif code == "t":
                out += message.topic.encode()
            elif code == "x":
                out += message.payload.hex().encode()
            elif code == "X":
                out += message.payload.hex().upper().encode()
            elif code == "I":
                out += _iso_time(now).encode()
            elif code == "U":
                out += f"{now:.9f}".encode()
            elif code == "j":
                out += _json(message, now)
            elif code in _PROPERTY_FIELDS:
                out += _property_field(code, message)
            else:
                out += ("%" + code).encode()
        else:
            out += ch.encode()
            i += 1
    return bytes(out)
