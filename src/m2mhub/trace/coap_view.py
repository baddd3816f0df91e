"""A lenient CoAP parser for tracing (sans-IO).

:func:`m2mhub.coap.message.decode` is what an endpoint needs: it drops unknown elective options
and refuses unknown critical ones. A tracer must show everything on the wire instead, so this
parser keeps every option (values converted by the registry's format where they fit, raw bytes
otherwise) and only fails where the bytes cannot be framed at all.
"""

from __future__ import annotations

from m2mhub.coap import options as o
from m2mhub.coap.message import Message, OptionValue

__all__ = ["CoapFormatError", "parse_coap"]


class CoapFormatError(ValueError):
    """The datagram cannot be read as a CoAP message; ``str(exc)`` says why."""


def _convert(number: int, raw: bytes) -> OptionValue:
    spec = o.OPTIONS.get(number)
    if spec is None:
        return raw
    if spec.format == o.UINT and len(raw) <= 4:
        return int.from_bytes(raw, "big")
    if spec.format == o.STRING:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    return raw


def _extended(nibble: int, data: bytes, pos: int, what: str) -> tuple[int, int]:
    if nibble < 13:
        return nibble, pos
    if nibble == 13:
        if pos >= len(data):
            raise CoapFormatError(f"option {what} overruns the datagram")
        return data[pos] + 13, pos + 1
    if nibble == 14:
        if pos + 1 >= len(data):
            raise CoapFormatError(f"option {what} overruns the datagram")
        return ((data[pos] << 8) | data[pos + 1]) + 269, pos + 2
    raise CoapFormatError(f"option {what} nibble 15")


def parse_coap(data: bytes) -> Message:
    """Every field and option of a CoAP datagram; raises :class:`CoapFormatError`."""
    n = len(data)
    if n < 4:
        raise CoapFormatError(f"truncated header ({n} bytes)")
    b0 = data[0]
    if b0 >> 6 != 1:
        raise CoapFormatError(f"unknown version {b0 >> 6}")
    tkl = b0 & 15
    if tkl > 8:
        raise CoapFormatError(f"token length {tkl}")
    pos = 4 + tkl
    if pos > n:
        raise CoapFormatError("truncated token")
    options: list[tuple[int, OptionValue]] = []
    payload = b""
    number = 0
    while pos < n:
        b = data[pos]
        pos += 1
        if b == 0xFF:
            if pos == n:
                raise CoapFormatError("payload marker with no payload")
            payload = bytes(data[pos:])
            break
        delta, pos = _extended(b >> 4, data, pos, "delta")
        length, pos = _extended(b & 15, data, pos, "length")
        end = pos + length
        if end > n:
            raise CoapFormatError("option overruns the datagram")
        number += delta
        options.append((number, _convert(number, bytes(data[pos:end]))))
        pos = end
    return Message(
        (b0 >> 4) & 3, data[1], (data[2] << 8) | data[3], bytes(data[4 : 4 + tkl]), options, payload
    )
