"""The CoAP option registry, response/method codes and content formats (RFC 7252 and friends).

Options are numbers on the wire.  In a :class:`~m2mhub.coap.message.Message` they are kept as a
list of ``(number, value)`` pairs in wire order, where ``value`` is already converted to its
format: ``int`` for uint options, ``str`` for string options, ``bytes`` for opaque and empty ones
(``b""``).  Unknown options keep their raw ``bytes``.  The one table below says, for each standard
option, its name, format, length limits and whether it may repeat; critical/unsafe/no-cache-key
come from the number itself (RFC 7252 section 5.4.6).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, NamedTuple

# --- option numbers -----------------------------------------------------------------------------

IF_MATCH: Final = 1
URI_HOST: Final = 3
ETAG: Final = 4
IF_NONE_MATCH: Final = 5
OBSERVE: Final = 6
URI_PORT: Final = 7
LOCATION_PATH: Final = 8
OSCORE: Final = 9
URI_PATH: Final = 11
CONTENT_FORMAT: Final = 12
MAX_AGE: Final = 14
URI_QUERY: Final = 15
HOP_LIMIT: Final = 16
ACCEPT: Final = 17
Q_BLOCK1: Final = 19
LOCATION_QUERY: Final = 20
EDHOC: Final = 21
BLOCK2: Final = 23
BLOCK1: Final = 27
SIZE2: Final = 28
Q_BLOCK2: Final = 31
PROXY_URI: Final = 35
PROXY_SCHEME: Final = 39
SIZE1: Final = 60
ECHO: Final = 252
NO_RESPONSE: Final = 258
REQUEST_TAG: Final = 292

# Formats
EMPTY: Final = "empty"
OPAQUE: Final = "opaque"
UINT: Final = "uint"
STRING: Final = "string"


class OptionDef(NamedTuple):
    """One registered option: its number, name (as in the RFCs), format and limits."""

    number: int
    name: str
    format: str
    min_len: int
    max_len: int
    repeatable: bool

    @property
    def critical(self) -> bool:
        return is_critical(self.number)

    @property
    def unsafe(self) -> bool:
        return is_unsafe(self.number)

    @property
    def no_cache_key(self) -> bool:
        return is_no_cache_key(self.number)


def is_critical(number: int) -> bool:
    """Critical options must be understood by the recipient (odd numbers)."""
    return bool(number & 1)


def is_unsafe(number: int) -> bool:
    """Unsafe-to-forward options (bit 1 set)."""
    return bool(number & 2)


def is_no_cache_key(number: int) -> bool:
    """Safe-to-forward options that are not part of the cache key."""
    return (number & 0x1E) == 0x1C


OPTIONS: Final[dict[int, OptionDef]] = {
    d.number: d
    for d in (
        OptionDef(IF_MATCH, "If-Match", OPAQUE, 0, 8, True),
        OptionDef(URI_HOST, "Uri-Host", STRING, 1, 255, False),
        OptionDef(ETAG, "ETag", OPAQUE, 1, 8, True),
        OptionDef(IF_NONE_MATCH, "If-None-Match", EMPTY, 0, 0, False),
        OptionDef(OBSERVE, "Observe", UINT, 0, 3, False),
        OptionDef(URI_PORT, "Uri-Port", UINT, 0, 2, False),
        OptionDef(LOCATION_PATH, "Location-Path", STRING, 0, 255, True),
        OptionDef(OSCORE, "OSCORE", OPAQUE, 0, 255, False),
        OptionDef(URI_PATH, "Uri-Path", STRING, 0, 255, True),
        OptionDef(CONTENT_FORMAT, "Content-Format", UINT, 0, 2, False),
        OptionDef(MAX_AGE, "Max-Age", UINT, 0, 4, False),
        OptionDef(URI_QUERY, "Uri-Query", STRING, 0, 255, True),
        OptionDef(HOP_LIMIT, "Hop-Limit", UINT, 1, 1, False),
        OptionDef(ACCEPT, "Accept", UINT, 0, 2, False),
        OptionDef(Q_BLOCK1, "Q-Block1", UINT, 0, 3, False),
        OptionDef(LOCATION_QUERY, "Location-Query", STRING, 0, 255, True),
        OptionDef(EDHOC, "EDHOC", EMPTY, 0, 0, False),
        OptionDef(BLOCK2, "Block2", UINT, 0, 3, False),
        OptionDef(BLOCK1, "Block1", UINT, 0, 3, False),
        OptionDef(SIZE2, "Size2", UINT, 0, 4, False),
        OptionDef(Q_BLOCK2, "Q-Block2", UINT, 0, 3, False),
        OptionDef(PROXY_URI, "Proxy-Uri", STRING, 1, 1034, False),
        OptionDef(PROXY_SCHEME, "Proxy-Scheme", STRING, 1, 255, False),
        OptionDef(SIZE1, "Size1", UINT, 0, 4, False),
        OptionDef(ECHO, "Echo", OPAQUE, 1, 40, False),
        OptionDef(NO_RESPONSE, "No-Response", UINT, 0, 1, False),
        OptionDef(REQUEST_TAG, "Request-Tag", OPAQUE, 0, 8, True),
    )
}

# Registered (so they have names) but not implemented by this engine: a critical one in a request
# is answered 4.02 Bad Option, as for any unrecognised critical option.
UNSUPPORTED: Final = frozenset({OSCORE, Q_BLOCK1, Q_BLOCK2, EDHOC})

BY_NAME: Final[dict[str, OptionDef]] = {d.name.lower(): d for d in OPTIONS.values()}


def option_name(number: int) -> str:
    """The option's registered name, or ``Option<number>`` for an unknown one."""
    d = OPTIONS.get(number)
    return d.name if d is not None else f"Option{number}"


# --- codes --------------------------------------------------------------------------------------


def code_of(cls: int, detail: int) -> int:
    """The one-byte code ``c.dd``."""
    return (cls << 5) | detail


class Code(IntEnum):
    """Method and response codes; ``str(Code.CONTENT)`` is ``"2.05 Content"``."""

    EMPTY = 0
    GET = 1
    POST = 2
    PUT = 3
    DELETE = 4
    FETCH = 5
    PATCH = 6
    IPATCH = 7
    CREATED = 65
    DELETED = 66
    VALID = 67
    CHANGED = 68
    CONTENT = 69
    CONTINUE = 95
    BAD_REQUEST = 128
    UNAUTHORIZED = 129
    BAD_OPTION = 130
    FORBIDDEN = 131
    NOT_FOUND = 132
    METHOD_NOT_ALLOWED = 133
    NOT_ACCEPTABLE = 134
    REQUEST_ENTITY_INCOMPLETE = 136
    CONFLICT = 137
    PRECONDITION_FAILED = 140
    REQUEST_ENTITY_TOO_LARGE = 141
    UNSUPPORTED_CONTENT_FORMAT = 143
    UNPROCESSABLE_ENTITY = 150
    TOO_MANY_REQUESTS = 157
    INTERNAL_SERVER_ERROR = 160
    NOT_IMPLEMENTED = 161
    BAD_GATEWAY = 162
    SERVICE_UNAVAILABLE = 163
    GATEWAY_TIMEOUT = 164
    PROXYING_NOT_SUPPORTED = 165
    HOP_LIMIT_REACHED = 168

    def __str__(self) -> str:
        return code_name(self.value)

    @property
    def dotted(self) -> str:
        return code_dotted(self.value)

    def is_request(self) -> bool:
        return is_request(self.value)

    def is_response(self) -> bool:
        return is_response(self.value)

    def is_successful(self) -> bool:
        return 64 <= self.value < 96


_CODE_TEXT: Final[dict[int, str]] = {
    0: "Empty",
    1: "GET",
    2: "POST",
    3: "PUT",
    4: "DELETE",
    5: "FETCH",
    6: "PATCH",
    7: "iPATCH",
    65: "Created",
    66: "Deleted",
    67: "Valid",
    68: "Changed",
    69: "Content",
    95: "Continue",
    128: "Bad Request",
    129: "Unauthorized",
    130: "Bad Option",
    131: "Forbidden",
    132: "Not Found",
    133: "Method Not Allowed",
    134: "Not Acceptable",
    136: "Request Entity Incomplete",
    137: "Conflict",
    140: "Precondition Failed",
    141: "Request Entity Too Large",
    143: "Unsupported Content-Format",
    150: "Unprocessable Entity",
    157: "Too Many Requests",
    160: "Internal Server Error",
    161: "Not Implemented",
    162: "Bad Gateway",
    163: "Service Unavailable",
    164: "Gateway Timeout",
    165: "Proxying Not Supported",
    168: "Hop Limit Reached",
}


def code_dotted(code: int) -> str:
    """``69 -> "2.05"``."""
    return f"{code >> 5}.{code & 31:02d}"


def code_name(code: int) -> str:
    """``69 -> "2.05 Content"``, ``1 -> "0.01 GET"``; unknown codes get only the number."""
    text = _CODE_TEXT.get(code)
    return f"{code_dotted(code)} {text}" if text else code_dotted(code)


def is_request(code: int) -> bool:
    return 1 <= code < 32


def is_response(code: int) -> bool:
    return 64 <= code < 192


# --- content formats ----------------------------------------------------------------------------


class ContentFormat(IntEnum):
    """Registered Content-Format numbers (the common ones)."""

    TEXT_PLAIN = 0
    LINK_FORMAT = 40
    XML = 41
    OCTET_STREAM = 42
    EXI = 47
    JSON = 50
    JSON_PATCH = 51
    MERGE_PATCH = 52
    CBOR = 60
    CWT = 61
    SENML_JSON = 110
    SENSML_JSON = 111
    SENML_CBOR = 112
    SENSML_CBOR = 113


CONTENT_FORMAT_NAMES: Final[dict[int, str]] = {
    0: "text/plain; charset=utf-8",
    40: "application/link-format",
    41: "application/xml",
    42: "application/octet-stream",
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
CONTENT_FORMAT_BY_NAME: Final[dict[str, int]] = {v: k for k, v in CONTENT_FORMAT_NAMES.items()}
CONTENT_FORMAT_BY_NAME.update(
    {
        "text/plain": 0,
        "text": 0,
        "link": 40,
        "xml": 41,
        "octet": 42,
        "binary": 42,
        "json": 50,
        "cbor": 60,
    }
)


# --- block options (RFC 7959) -------------------------------------------------------------------


def block_value(num: int, more: bool, szx: int) -> int:
    """Encode a Block1/Block2 option value."""
    return (num << 4) | (8 if more else 0) | szx


def block_parts(value: int) -> tuple[int, bool, int]:
    """Decode a Block1/Block2 value into ``(num, more, szx)``; szx 7 is reserved (BERT)."""
    return value >> 4, bool(value & 8), value & 7


def szx_size(szx: int) -> int:
    """Block size in bytes for a SZX exponent (0..6)."""
    return 1 << (szx + 4)


def size_szx(size: int) -> int:
    """Largest SZX whose block size is <= size (clamped to 0..6)."""
    szx = 6
    while szx > 0 and (1 << (szx + 4)) > size:
        szx -= 1
    return szx
