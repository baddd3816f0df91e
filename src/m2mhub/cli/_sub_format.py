"""mosquitto_sub's ``-F`` output format: ``%`` fields, ``@`` time fields and ``\\`` escapes.

The format is checked and compiled once (:class:`OutputFormat`), then rendered per message.
Every field and quirk follows mosquitto_sub 2.0.11 byte for byte (the tests run both side by
side):

* ``%%`` ``%l`` (payload length) ``%m`` (message id) ``%p`` (payload) ``%q`` ``%r`` ``%t``
  ``%x``/``%X`` (payload as hex) ``%I`` (ISO 8601 time) ``%U`` (Unix time with nanoseconds)
  ``%j`` (JSON) ``%J`` (JSON, payload embedded as JSON);
* MQTT 5 properties: ``%A`` (topic alias) ``%C`` (content type) ``%D`` (correlation data)
  ``%E`` (message expiry) ``%F`` (payload format) ``%P`` (user properties, ``name:value``
  separated by spaces) ``%R`` (response topic) ``%S`` (the first subscription identifier);
* flags ``-`` (left align) and ``0`` (zero fill), a field width and a ``.precision``.
  Numbers take width and zero fill; strings (``%C %I %R %t``) take width and precision;
  ``%p`` is cut to the width, and ``%x``/``%X`` show ``width // 2`` bytes at most (halved
  again when the payload is shorter: mosquitto's arithmetic); ``%D %P %q %r`` ignore them;
* an absent property prints nothing, or its padding alone for ``%A %C %E %F %S`` (zeros
  for ``%0..`` and ``%-0..`` of the numbers, blanks for ``%C``);
* ``@`` plus a letter is strftime's ``%`` letter, ``@N`` nanoseconds, ``@@`` an ``@``;
* escapes ``\\\\`` ``\\0`` ``\\a`` ``\\e`` ``\\n`` ``\\r`` ``\\t`` ``\\v``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from m2mhub.cli._cjson import JSONObject, cjson_dump, cjson_parse_payload
from m2mhub.client.mqtt import Message
from m2mhub.mqtt.properties import PropertyId

_ESCAPES = {
    ord("\\"): b"\\",
    ord("0"): b"\0",
    ord("a"): b"\a",
    ord("e"): b"\x1b",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("v"): b"\v",
}
_FIELDS = b"%ACDEFIjJlmPpqRrStUxX"
_DIGITS = b"0123456789"


class FormatError(ValueError):
    """A ``-F`` format mosquitto_sub would refuse; the text is its error message."""


@dataclass(frozen=True, slots=True)
class _Field:
    """One ``%`` field with its printf-like flags."""

    code: str
    left: bool
    zero: bool
    width: int
    precision: int  # -1: none given


@dataclass(frozen=True, slots=True)
class _Time:
    """``@X``: strftime's ``%X`` (``N``: nanoseconds)."""

    letter: str


_Piece = bytes | _Field | _Time


def _compile(fmt: bytes) -> list[_Piece]:
    pieces: list[_Piece] = []
    literal = bytearray()
    i, n = 0, len(fmt)
    incomplete = FormatError("Incomplete format specifier.")
    while i < n:
        ch = fmt[i]
        if ch == ord("%"):
            i += 1
            if i >= n:
                raise incomplete
            left = zero = False
            if fmt[i] == ord("-"):
                left = True
                i += 1
                if i < n and fmt[i] == ord("0"):  # "%-0...": printed values ignore the 0
                    zero = True
                    i += 1
            elif fmt[i] == ord("0"):
                zero = True
                i += 1
            width = precision = 0
            while i < n and fmt[i] in _DIGITS:
                width = width * 10 + fmt[i] - ord("0")
                i += 1
            precision = -1
            if i < n and fmt[i] == ord("."):
                i += 1
                precision = 0
                while i < n and fmt[i] in _DIGITS:
                    precision = precision * 10 + fmt[i] - ord("0")
                    i += 1
            if i >= n:
                raise incomplete
            code = fmt[i]
            if code not in _FIELDS:
                raise FormatError(f"Invalid format specifier '{chr(code)}'.")
            if code == ord("%"):
                literal += b"%"
            else:
                if literal:
                    pieces.append(bytes(literal))
                    literal.clear()
                pieces.append(_Field(chr(code), left, zero, width, precision))
        elif ch == ord("@"):
            i += 1
            if i >= n:
                raise incomplete
            if fmt[i] == ord("@"):
                literal += b"@"
            else:
                if literal:
                    pieces.append(bytes(literal))
                    literal.clear()
                pieces.append(_Time(chr(fmt[i])))
        elif ch == ord("\\"):
            i += 1
            if i >= n:
                raise FormatError("Incomplete escape specifier.")
            escape = _ESCAPES.get(fmt[i])
            if escape is None:
                raise FormatError(f"Invalid escape specifier '{chr(fmt[i])}'.")
            literal += escape
        else:
            literal.append(ch)
        i += 1
    if literal:
        pieces.append(bytes(literal))
    return pieces


# ------------------------------------------------------------------------------- rendering


def _int(value: int, field: _Field) -> bytes:
    """printf ``%d`` of a C int (mosquitto passes uint32 values through an int)."""
    value = (value + 2**31) % 2**32 - 2**31
    if field.width == 0:
        return b"%d" % value
    if field.left:  # the 0 flag is ignored
        return b"%-*d" % (field.width, value)
    if field.zero:
        return b"%0*d" % (field.width, value)
    return b"%*d" % (field.width, value)


def _str(value: bytes, field: _Field) -> bytes:
    """printf ``%*.*s`` (the 0 flag does nothing to strings)."""
    if field.precision >= 0:
        value = value[: field.precision]
    return value.ljust(field.width) if field.left else value.rjust(field.width)


def _padding(field: _Field) -> bytes:
    """What mosquitto prints for an absent numeric property: the padding alone (0 even with -)."""
    return (b"0" if field.zero else b" ") * field.width


def _payload(payload: bytes, field: _Field, hex_case: int) -> bytes:
    """mosquitto_sub's write_payload(), quirks included (hex_case 0: raw, 1: %x, 2: %X)."""
    length = len(payload)
    if field.width > 0:
        length = min(length, field.width)
        if hex_case:
            length //= 2
            padlen = field.width - length * 2
        else:
            padlen = field.width - length
    else:
        padlen = -length
    body = payload[:length]
    if hex_case == 1:
        body = body.hex().encode()
    elif hex_case == 2:
        body = body.hex().upper().encode()
    if field.left:
        return body + b" " * max(padlen, 0)
    return (b"0" if field.zero else b" ") * max(padlen, 0) + body


def _first(message: Message, prop: int) -> object:
    value = message.properties.get(prop)
    if isinstance(value, list):
        return value[0] if value else None
    return value


class _Clock:
    """The time of one message, read once so every time field of a line agrees."""

    __slots__ = ("_ns", "_tm")

    def __init__(self) -> None:
        self._ns: int | None = None
        self._tm: time.struct_time | None = None

    def read(self) -> tuple[time.struct_time, int]:
        if self._tm is None or self._ns is None:
            now = time.time_ns()
            self._tm = time.localtime(now // 1_000_000_000)
            self._ns = now % 1_000_000_000
        return self._tm, self._ns


_TOPIC_ALIAS = PropertyId.TOPIC_ALIAS
_CONTENT_TYPE = PropertyId.CONTENT_TYPE
_CORRELATION_DATA = PropertyId.CORRELATION_DATA
_MESSAGE_EXPIRY = PropertyId.MESSAGE_EXPIRY_INTERVAL
_PAYLOAD_FORMAT = PropertyId.PAYLOAD_FORMAT_INDICATOR
_USER_PROPERTY = PropertyId.USER_PROPERTY
_RESPONSE_TOPIC = PropertyId.RESPONSE_TOPIC
_SUBSCRIPTION_ID = PropertyId.SUBSCRIPTION_IDENTIFIER
_INT_PROPERTIES = {
    "A": _TOPIC_ALIAS,
    "E": _MESSAGE_EXPIRY,
    "F": _PAYLOAD_FORMAT,
    "S": _SUBSCRIPTION_ID,
}


class OutputFormat:
    """A compiled ``-F`` format; :meth:`render` gives one message's bytes (no end of line).

    ``pretty`` is ``--pretty``: ``%j``/``%J`` print indented JSON, as cJSON_Print does.
    Raises :class:`FormatError` (mosquitto's message) for a format mosquitto_sub refuses.
    """

    def __init__(self, fmt: str, pretty: bool = False) -> None:
        self.pieces = _compile(os.fsencode(fmt))
        self.pretty = pretty

    def render(self, message: Message) -> tuple[bytes, list[str]]:
        """The bytes for ``message`` and the error lines to print (``%J`` of a non-JSON payload).

        As mosquitto_sub, a field that fails prints nothing and the rest of the line is kept.
        """
        out = bytearray()
        errors: list[str] = []
        clock = _Clock()
        for piece in self.pieces:
            if isinstance(piece, bytes):
                out += piece
            elif isinstance(piece, _Field):
                field = self._field(piece, message, clock)
                if field is None:
                    errors.append(
                        f"Error: Message payload is not valid JSON on topic {message.topic}."
                    )
                else:
                    out += field
            else:
                tm, ns = clock.read()
                if piece.letter == "N":
                    out += b"%09d" % ns
                else:
                    out += time.strftime("%" + piece.letter, tm).encode("utf-8", "surrogateescape")
        return bytes(out), errors

    def _field(self, field: _Field, message: Message, clock: _Clock) -> bytes | None:
        code = field.code
        if code == "t":
            return _str(message.topic.encode(), field)
        if code == "p":
            return _payload(message.payload, field, 0)
        if code == "q":
            return b"%d" % message.qos
        if code == "r":
            return b"1" if message.retain else b"0"
        if code == "l":
            return _int(len(message.payload), field)
        if code == "m":
            return _int(message.mid, field)
        if code == "x":
            return _payload(message.payload, field, 1)
        if code == "X":
            return _payload(message.payload, field, 2)
        if code in _INT_PROPERTIES:
            value = _first(message, _INT_PROPERTIES[code])
            return _int(value, field) if isinstance(value, int) else _padding(field)
        if code == "C":
            value = message.properties.get(_CONTENT_TYPE)
            return _str(value.encode() if isinstance(value, str) else b"", field)
        if code == "R":
            value = message.properties.get(_RESPONSE_TOPIC)
            return _str(value.encode(), field) if isinstance(value, str) else b""
        if code == "D":
            value = message.properties.get(_CORRELATION_DATA)
            return bytes(value) if isinstance(value, (bytes, bytearray)) else b""
        if code == "P":
            pairs = message.properties.get(_USER_PROPERTY) or []
            return b" ".join(f"{k}:{v}".encode() for k, v in pairs)
        if code == "I":
            tm, _ = clock.read()
            return _str(time.strftime("%Y-%m-%dT%H:%M:%S%z", tm).encode(), field)
        if code == "U":
            tm, ns = clock.read()
            return time.strftime("%s", tm).encode() + b".%09d" % ns
        if code in "jJ":
            return self._json(message, clock, escaped=code == "j")
        raise AssertionError(f"unchecked field {code}")  # _compile accepts no other

    def _json(self, message: Message, clock: _Clock, escaped: bool) -> bytes | None:
        """``%j``/``%J``: mosquitto_sub's json_print() through cJSON."""
        tm, ns = clock.read()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.", tm) + f"{ns // 1000:06d}Z"
        stamp += time.strftime("%z", tm)
        record = JSONObject(
            [
                (b"tst", stamp.encode()),
                (b"topic", message.topic.encode()),
                (b"qos", message.qos),
                (b"retain", int(message.retain)),
                (b"payloadlen", len(message.payload)),
            ]
        )
        if message.qos:
            record.append((b"mid", message.mid))
        if message.properties:
            record.append((b"properties", _json_properties(message)))
        payload: object
        if escaped:
            payload = message.payload.split(b"\0", 1)[0] if message.payload else None
        elif message.payload:
            payload = cjson_parse_payload(message.payload)
            if payload is None:
                return None
        else:
            payload = None
        record.append((b"payload", payload))
        return cjson_dump(record, self.pretty)


_JSON_NAMES: dict[int, bytes] = {
    _PAYLOAD_FORMAT: b"payload-format-indicator",
    _MESSAGE_EXPIRY: b"message-expiry-interval",
    _CONTENT_TYPE: b"content-type",
    _RESPONSE_TOPIC: b"response-topic",
    _CORRELATION_DATA: b"correlation-data",
    _SUBSCRIPTION_ID: b"subscription-identifier",
    _TOPIC_ALIAS: b"topic-alias",
}


def _json_properties(message: Message) -> JSONObject:
    """The ``properties`` object, in wire order; user properties grouped in one object."""
    out = JSONObject()
    for prop, value in message.properties.items():
        if prop == _USER_PROPERTY:
            out.append((b"user-properties", JSONObject((k.encode(), v.encode()) for k, v in value)))
            continue
        name = _JSON_NAMES.get(prop)
        if name is None:
            continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str):
                item = item.encode()
            elif isinstance(item, (bytes, bytearray)):
                item = bytes(item).split(b"\0", 1)[0]  # read by cJSON as a C string
            out.append((name, item))
    return out


def message_output(
    message: Message, fmt: OutputFormat | None, verbose: bool, eol: bool
) -> tuple[bytes, list[str]]:
    """What mosquitto_sub and mosquitto_rr print for one message, and the error lines.

    ``-F fmt`` wins over ``-v`` ("topic payload"); without either the payload alone. An empty
    payload prints nothing (b""), or ``topic (null)`` with ``-v``.
    """
    end = b"\n" if eol else b""
    if fmt is not None:
        text, errors = fmt.render(message)
        return text + end, errors
    if verbose:
        if message.payload:
            return message.topic.encode() + b" " + message.payload + end, []
        return (message.topic.encode() + b" (null)\n" if eol else b""), []
    return (message.payload + end if message.payload else b""), []
