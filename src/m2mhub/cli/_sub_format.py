"""mosquitto_sub's ``-F`` output format: ``%`` fields, ``@`` time fields and ``\\`` escapes.

Supported: ``%%`` ``%c`` (client id) ``%l`` (payload length) ``%m`` (message id) ``%p``
(payload) ``%q`` ``%r`` ``%t`` ``%x``/``%X`` (payload as hex) ``%I`` (ISO 8601 time) ``%U``
(Unix time with nanoseconds) ``%j`` (JSON); ``@`` followed by a strftime letter (``@@`` is
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
            else:
                out += ("%" + code).encode()
        else:
            out += ch.encode()
            i += 1
    return bytes(out)
