"""JSON printed the way cJSON (the library mosquitto_sub uses for ``%j``/``%J``) prints it.

Python's :mod:`json` differs from cJSON in ways a user piping ``m2mhub sub -F %J`` into a
script would see: cJSON keeps duplicate keys, prints ``1.0`` as ``1``, copies string bytes that
are not UTF-8 as they are, and indents with tabs (``--pretty``). Values here are
:class:`JSONObject` (ordered pairs, duplicates allowed), ``list`` (array), ``bytes``/``str``
(string), ``int``/``float``, ``bool`` and ``None``.
"""

from __future__ import annotations

import json
import math
from typing import Any

_INT_MAX = 2**31 - 1
_INT_MIN = -(2**31)


class JSONObject(list[tuple[bytes, Any]]):
    """A JSON object as cJSON holds it: ordered ``(key, value)`` pairs, keys may repeat."""


def cjson_string(value: bytes) -> bytes:
    """A quoted JSON string: ``"`` ``\\`` and control characters escaped, other bytes as is."""
    out = bytearray(b'"')
    for byte in value:
        if byte == 0x22:
            out += b'\\"'
        elif byte == 0x5C:
            out += b"\\\\"
        elif byte >= 0x20:
            out.append(byte)
        elif byte == 0x08:
            out += b"\\b"
        elif byte == 0x0C:
            out += b"\\f"
        elif byte == 0x0A:
            out += b"\\n"
        elif byte == 0x0D:
            out += b"\\r"
        elif byte == 0x09:
            out += b"\\t"
        else:
            out += b"\\u%04x" % byte
    out += b'"'
    return bytes(out)


def _number(value: float) -> bytes:
    """cJSON's print_number: whole numbers within a C int as ints, else %.15g or %.17g."""
    d = float(value)
    if math.isnan(d) or math.isinf(d):
        return b"null"
    as_int = _INT_MAX if d >= _INT_MAX else _INT_MIN if d <= _INT_MIN else int(d)
    if d == as_int:
        return b"%d" % as_int
    text = b"%1.15g" % d
    if float(text) != d:
        text = b"%1.17g" % d
    return text


def _dump(value: object, pretty: bool, depth: int, out: bytearray) -> None:
    if value is None:
        out += b"null"
    elif value is True:
        out += b"true"
    elif value is False:
        out += b"false"
    elif isinstance(value, JSONObject):
        _dump_object(value, pretty, depth, out)
    elif isinstance(value, list):
        out += b"["
        for n, item in enumerate(value):
            if n:
                out += b", " if pretty else b","
            _dump(item, pretty, depth + 1, out)
        out += b"]"
    elif isinstance(value, bytes):
        out += cjson_string(value)
    elif isinstance(value, str):
        out += cjson_string(value.encode("utf-8"))
    elif isinstance(value, (int, float)):
        out += _number(value)
    else:
        raise TypeError(f"not a JSON value: {value!r}")


def _dump_object(pairs: JSONObject, pretty: bool, depth: int, out: bytearray) -> None:
    depth += 1
    out += b"{\n" if pretty else b"{"
    for n, (key, item) in enumerate(pairs):
        if pretty:
            out += b"\t" * depth
        out += cjson_string(key)
        out += b":\t" if pretty else b":"
        _dump(item, pretty, depth, out)
        if n < len(pairs) - 1:
            out += b","
        if pretty:
            out += b"\n"
    if pretty:
        out += b"\t" * (depth - 1)
    out += b"}"


def cjson_dump(value: object, pretty: bool = False) -> bytes:
    """cJSON_PrintUnformatted (or cJSON_Print with ``pretty``) of ``value``."""
    out = bytearray()
    _dump(value, pretty, 0, out)
    return bytes(out)


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def cjson_parse_payload(payload: bytes) -> object | None:
    """The payload parsed as one JSON value (as cJSON would accept it), or None."""
    if b"\0" in payload:
        return None  # cJSON reads a C string: it would stop short of the payload's end
    try:
        text = payload.decode("utf-8")
        if text.startswith("\ufeff"):
            text = text[1:]  # cJSON skips a UTF-8 byte order mark
        value: object = json.loads(
            text,
            object_pairs_hook=lambda pairs: JSONObject((k.encode(), v) for k, v in pairs),
            parse_constant=_no_constants,
            strict=False,
        )
        cjson_dump(value)  # lone surrogates cannot be printed: cJSON refuses them too
    except (ValueError, UnicodeError):
        return None
    return value
