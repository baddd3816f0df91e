"""One decoded CoAP message per line, exactly in the shape libcoap's ``coap_show_pdu`` prints.

``v:1 t:CON c:GET i:925a {01} [ Uri-Port:56830, Uri-Path:time ]`` followed, for a text payload,
by `` :: 'Nov 25 17:09:31'``; binary payloads print their length and a hex dump on extra lines.
Users of ``coap-client -v 6`` can diff our output against libcoap's.
"""

from __future__ import annotations

from typing import Final

from m2mhub.coap import options as o
from m2mhub.coap.message import TYPE_NAMES, Message, OptionValue, sorted_options

# libcoap's short media type names (coap_debug.c).
_MEDIA: Final[dict[int, str]] = {
    0: "text/plain",
    40: "application/link-format",
    41: "application/xml",
    42: "application/octet-stream",
    43: "application/rdf+xml",
    47: "application/exi",
    50: "application/json",
    51: "application/json-patch+json",
    52: "application/merge-patch+json",
    60: "application/cbor",
    61: "application/cwt",
    110: "application/senml+json",
    111: "application/sensml+json",
    112: "application/senml+cbor",
    113: "application/sensml+cbor",
}
_TEXT_FORMATS: Final = frozenset({0, 40, 41, 43, 50, 51, 52, 110, 111})
_NAMED_OPAQUE: Final = frozenset({o.IF_MATCH, o.ETAG, o.REQUEST_TAG, o.ECHO, o.OSCORE})


def _readable(data: bytes) -> str:
    """Printable ASCII as is, everything else as ``\\xHH`` (libcoap's print_readable)."""
    return "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02X}" for b in data)


def _code(code: int, request: bool) -> str:
    if request:
        return o.code_name(code).split(" ", 1)[1]
    return o.code_dotted(code)


def show_option(number: int, value: OptionValue) -> str:
    """``Uri-Path:time``, ``Block2:1/M/64``, ``Accept:text/plain``, ``2048:\\x01\\x02``."""
    d = o.OPTIONS.get(number)
    if d is None:
        raw = value if isinstance(value, bytes) else str(value).encode()
        return f"{number}:{_readable(raw)}"
    if number in (o.BLOCK1, o.BLOCK2) and isinstance(value, int):
        num, more, szx = o.block_parts(value)
        return f"{d.name}:{num}/{'M' if more else '_'}/{o.szx_size(szx)}"
    if number in (o.CONTENT_FORMAT, o.ACCEPT) and isinstance(value, int):
        return f"{d.name}:{_MEDIA.get(value, str(value))}"
    if isinstance(value, bytes):
        if number in _NAMED_OPAQUE:
            return f"{d.name}:0x{value.hex()}"
        return f"{d.name}:{_readable(value)}"
    return f"{d.name}:{value}"


def show(msg: Message) -> str:
    """The message as libcoap prints it (one line, or more for a binary payload)."""
    t = TYPE_NAMES[msg.mtype] if msg.mtype is not None else "?"
    mid = f"{msg.mid:04x}" if msg.mid is not None else "????"
    opts = ", ".join(show_option(n, v) for n, v in sorted_options(msg.options))
    line = f"v:1 t:{t} c:{_code(msg.code, msg.is_request())} i:{mid} {{{msg.token.hex()}}} "
    line += f"[ {opts} ]" if opts else "[ ]"
    if msg.payload:
        cf = msg.content_format
        if cf is None or cf in _TEXT_FORMATS:
            line += f" :: '{_readable(msg.payload)}'"
        else:
            hexed = msg.payload.hex()
            dots = " ".join(chr(b) if 32 <= b < 127 else "." for b in msg.payload)
            line += f" :: binary data length {len(msg.payload)}\n<<{hexed}>>\n<<{dots} >>"
    return line
