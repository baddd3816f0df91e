"""The CoAP message and its codec (RFC 7252 section 3).

``encode(msg) -> bytes`` and ``decode(data) -> Message``.  Options live in ``msg.options`` as a
list of ``(number, value)`` pairs in wire order (see :mod:`m2mhub.coap.options` for the value
types); ``msg.opt`` gives aiocoap-style named access (``msg.opt.uri_path``,
``msg.opt.content_format = 0``).  Decoding never raises anything but :class:`CoapDecodeError`,
whose ``action`` says what RFC 7252 wants the receiver to do.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any, Final

from m2mhub.coap import options as o
from m2mhub.coap.options import Code, code_name, option_name

CON: Final = 0
NON: Final = 1
ACK: Final = 2
RST: Final = 3


class Type(IntEnum):
    """Message types (aiocoap-compatible names)."""

    CON = 0
    NON = 1
    ACK = 2
    RST = 3


TYPE_NAMES: Final = ("CON", "NON", "ACK", "RST")

# What the receiver of an undecodable datagram does (RFC 7252 sections 3, 4.2, 4.3, 5.4.1).
DROP: Final = "drop"  # silently ignore (truncated header, unknown version, bad ACK/RST/NON)
RESET: Final = "reset"  # message format error: RST if it was a CON, else silently ignore
BAD_OPTION: Final = "bad_option"  # unrecognised critical option: 4.02 for a request, else RESET


class CoapDecodeError(Exception):
    """A datagram that is not a valid CoAP message.

    ``action`` is :data:`DROP`, :data:`RESET` or :data:`BAD_OPTION`; the header fields are set
    when the header could be read (``mid`` is ``None`` otherwise) so that the receiver can answer.
    """

    def __init__(
        self,
        action: str,
        reason: str,
        mtype: int = -1,
        code: int = 0,
        mid: int | None = None,
        token: bytes = b"",
    ) -> None:
        super().__init__(reason)
        self.action = action
        self.reason = reason
        self.mtype = mtype
        self.code = code
        self.mid = mid
        self.token = token


OptionValue = int | str | bytes


class Message:
    """One CoAP message.

    ``mtype`` and ``mid`` may stay ``None`` in messages built by resources and clients: the
    endpoint fills them in.  ``code`` 0 in a resource's response means "the usual success code
    for the request's method" (2.05 for GET/FETCH, 2.04 for PUT/POST/PATCH, 2.02 for DELETE).
    ``remote`` is the peer the message came from or goes to; ``remaining_path`` is set on
    requests handed to a prefix resource (the Uri-Path segments below its own path).
    """

    __slots__ = ("code", "mid", "mtype", "options", "payload", "remaining_path", "remote", "token")

    version: Final = 1

    def __init__(
        self,
        mtype: int | None = None,
        code: int = 0,
        mid: int | None = None,
        token: bytes = b"",
        options: list[tuple[int, OptionValue]] | None = None,
        payload: bytes = b"",
        *,
        remote: Any = None,
        content_format: int | None = None,
        max_age: int | None = None,
        etag: bytes | None = None,
        uri_path: Iterable[str] | None = None,
        uri_query: Iterable[str] | None = None,
        observe: int | None = None,
        accept: int | None = None,
        location_path: Iterable[str] | None = None,
    ) -> None:
        self.mtype = mtype
        self.code = code
        self.mid = mid
        self.token = token
        self.options: list[tuple[int, OptionValue]] = [] if options is None else options
        self.payload = payload
        self.remote = remote
        self.remaining_path: tuple[str, ...] = ()
        if content_format is not None:
            self.options.append((o.CONTENT_FORMAT, content_format))
        if max_age is not None:
            self.options.append((o.MAX_AGE, max_age))
        if etag is not None:
            self.options.append((o.ETAG, etag))
        if uri_path is not None:
            self.options.extend((o.URI_PATH, s) for s in uri_path)
        if uri_query is not None:
            self.options.extend((o.URI_QUERY, s) for s in uri_query)
        if observe is not None:
            self.options.append((o.OBSERVE, observe))
        if accept is not None:
            self.options.append((o.ACCEPT, accept))
        if location_path is not None:
            self.options.extend((o.LOCATION_PATH, s) for s in location_path)

    def copy(self) -> Message:
        """A shallow copy with its own options list (payload bytes are shared)."""
        c: Message = object.__new__(Message)
        c.mtype = self.mtype
        c.code = self.code
        c.mid = self.mid
        c.token = self.token
        c.options = list(self.options)
        c.payload = self.payload
        c.remote = self.remote
        c.remaining_path = self.remaining_path
        return c

    # --- generic option access ------------------------------------------------------------------

    def get(self, number: int, default: Any = None) -> Any:
        """The first value of option ``number`` or ``default``."""
        for n, v in self.options:
            if n == number:
                return v
        return default

    def get_all(self, number: int) -> list[Any]:
        """Every value of option ``number``, in order."""
        return [v for n, v in self.options if n == number]

    def has(self, number: int) -> bool:
        return any(n == number for n, _ in self.options)

    def set(self, number: int, value: OptionValue | None) -> None:
        """Replace every occurrence of option ``number`` by ``value`` (remove it if ``None``)."""
        opts = [p for p in self.options if p[0] != number]
        if value is not None:
            opts.append((number, value))
        self.options = opts

    def set_all(self, number: int, values: Iterable[OptionValue]) -> None:
        opts = [p for p in self.options if p[0] != number]
        opts.extend((number, v) for v in values)
        self.options = opts

    def add(self, number: int, value: OptionValue) -> None:
        self.options.append((number, value))

    def remove(self, number: int) -> None:
        self.options = [p for p in self.options if p[0] != number]

    # --- common options -------------------------------------------------------------------------

    def uri_path(self) -> tuple[str, ...]:
        return tuple(v for n, v in self.options if n == o.URI_PATH)  # type: ignore[misc]

    def uri_query(self) -> tuple[str, ...]:
        return tuple(v for n, v in self.options if n == o.URI_QUERY)  # type: ignore[misc]

    def query(self) -> dict[str, str]:
        """Uri-Query as a dict (``k=v``; a bare ``k`` maps to ``""``; the last one wins)."""
        out: dict[str, str] = {}
        for q in self.uri_query():
            k, _, v = q.partition("=")
            out[k] = v
        return out

    @property
    def observe(self) -> int | None:
        return self.get(o.OBSERVE)  # type: ignore[no-any-return]

    @property
    def content_format(self) -> int | None:
        return self.get(o.CONTENT_FORMAT)  # type: ignore[no-any-return]

    @property
    def accept(self) -> int | None:
        return self.get(o.ACCEPT)  # type: ignore[no-any-return]

    @property
    def block1(self) -> tuple[int, bool, int] | None:
        v = self.get(o.BLOCK1)
        return None if v is None else o.block_parts(v)

    @property
    def block2(self) -> tuple[int, bool, int] | None:
        v = self.get(o.BLOCK2)
        return None if v is None else o.block_parts(v)

    @property
    def opt(self) -> OptionView:
        """aiocoap-style named access: ``msg.opt.uri_path``, ``msg.opt.content_format = 0``."""
        return OptionView(self)

    # --- predicates -----------------------------------------------------------------------------

    def is_request(self) -> bool:
        return 1 <= self.code < 32

    def is_response(self) -> bool:
        return 64 <= self.code < 192

    def is_empty(self) -> bool:
        return self.code == 0

    def __repr__(self) -> str:
        return f"<Message {describe(self)}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (
            self.mtype == other.mtype
            and self.code == other.code
            and self.mid == other.mid
            and self.token == other.token
            and sorted_options(self.options) == sorted_options(other.options)
            and self.payload == other.payload
        )

    __hash__ = None  # type: ignore[assignment]


def sorted_options(opts: list[tuple[int, OptionValue]]) -> list[tuple[int, OptionValue]]:
    """Options in wire order (stable: repeated options keep their relative order)."""
    prev = -1
    for n, _ in opts:
        if n < prev:
            return sorted(opts, key=_first)
        prev = n
    return opts


def _first(pair: tuple[int, OptionValue]) -> int:
    return pair[0]


class OptionView:
    """Named view over a message's options, as aiocoap's ``message.opt``.

    Repeatable options read and write tuples; others a single value or ``None``.
    """

    __slots__ = ("_msg",)

    def __init__(self, msg: Message) -> None:
        object.__setattr__(self, "_msg", msg)

    def __getattr__(self, name: str) -> Any:
        d = _ATTR_OPTIONS.get(name)
        if d is None:
            raise AttributeError(name)
        msg: Message = object.__getattribute__(self, "_msg")
        if d.repeatable:
            return tuple(msg.get_all(d.number))
        if d.format == o.EMPTY:
            return msg.has(d.number)
        return msg.get(d.number)

    def __setattr__(self, name: str, value: Any) -> None:
        d = _ATTR_OPTIONS.get(name)
        if d is None:
            raise AttributeError(name)
        msg: Message = object.__getattribute__(self, "_msg")
        if d.repeatable:
            msg.set_all(d.number, () if value is None else value)
        elif d.format == o.EMPTY:
            msg.set(d.number, b"" if value else None)
        else:
            msg.set(d.number, value)


_ATTR_OPTIONS: Final[dict[str, o.OptionDef]] = {
    d.name.lower().replace("-", "_"): d for d in o.OPTIONS.values()
}

# --- codec --------------------------------------------------------------------------------------

_F_EMPTY, _F_OPAQUE, _F_UINT, _F_STRING = 0, 1, 2, 3
_FMT = {o.EMPTY: _F_EMPTY, o.OPAQUE: _F_OPAQUE, o.UINT: _F_UINT, o.STRING: _F_STRING}
# number -> (format, min length, max length, repeatable), a flat tuple for the hot path.
# Only options this engine implements count as recognised (the others get 4.02 when critical).
_SPEC: Final[dict[int, tuple[int, int, int, bool]]] = {
    d.number: (_FMT[d.format], d.min_len, d.max_len, d.repeatable)
    for d in o.OPTIONS.values()
    if d.number not in o.UNSUPPORTED
}


_new_message = object.__new__
_CODES: Final[dict[int, Code]] = {c.value: c for c in Code}


def decode(data: bytes, remote: Any = None) -> Message:
    """Parse one datagram.  Raises :class:`CoapDecodeError` (only) on invalid input.

    Unrecognised or invalid *elective* options are dropped silently (RFC 7252 5.4.1); an
    unrecognised or invalid *critical* option raises with action :data:`BAD_OPTION` once the rest
    of the message has been checked for format errors.
    """
    n = len(data)
    if n < 4:
        raise CoapDecodeError(DROP, "truncated header")
    b0 = data[0]
    if b0 >> 6 != 1:
        raise CoapDecodeError(DROP, f"unknown version {b0 >> 6}")
    mtype = (b0 >> 4) & 3
    tkl = b0 & 15
    code = data[1]
    mid = (data[2] << 8) | data[3]
    if tkl > 8:
        raise CoapDecodeError(RESET, f"token length {tkl}", mtype, code, mid)
    pos = 4 + tkl
    if pos > n:
        raise CoapDecodeError(RESET, "truncated token", mtype, code, mid)
    token = bytes(data[4:pos])
    if code == 0:
        if tkl or n > 4:
            raise CoapDecodeError(RESET, "empty message with content", mtype, code, mid, token)
        if mtype == NON:
            raise CoapDecodeError(DROP, "empty NON message", mtype, code, mid)
        msg = Message(mtype, 0, mid, b"", [], b"")
        msg.remote = remote
        return msg
    cls = code >> 5
    if cls == 1 or cls >= 6:
        raise CoapDecodeError(RESET, f"reserved code {code_name(code)}", mtype, code, mid, token)
    opts: list[tuple[int, OptionValue]] = []
    payload = b""
    number = 0
    bad: str | None = None
    seen = False
    spec = _SPEC
    while pos < n:
        b = data[pos]
        pos += 1
        if b == 0xFF:
            if pos == n:
                raise CoapDecodeError(
                    RESET, "payload marker with no payload", mtype, code, mid, token
                )
            payload = bytes(data[pos:])
            break
        delta = b >> 4
        length = b & 15
        if delta >= 13 or length >= 13:  # extended forms (rare)
            if delta >= 13:
                if delta == 13:
                    if pos >= n:
                        raise CoapDecodeError(RESET, "option overruns", mtype, code, mid, token)
                    delta = data[pos] + 13
                    pos += 1
                elif delta == 14:
                    if pos + 1 >= n:
                        raise CoapDecodeError(RESET, "option overruns", mtype, code, mid, token)
                    delta = ((data[pos] << 8) | data[pos + 1]) + 269
                    pos += 2
                else:
                    raise CoapDecodeError(RESET, "option delta 15", mtype, code, mid, token)
            if length >= 13:
                if length == 13:
                    if pos >= n:
                        raise CoapDecodeError(RESET, "option overruns", mtype, code, mid, token)
                    length = data[pos] + 13
                    pos += 1
                elif length == 14:
                    if pos + 1 >= n:
                        raise CoapDecodeError(RESET, "option overruns", mtype, code, mid, token)
                    length = ((data[pos] << 8) | data[pos + 1]) + 269
                    pos += 2
                else:
                    raise CoapDecodeError(RESET, "option length 15", mtype, code, mid, token)
        end = pos + length
        if end > n:
            raise CoapDecodeError(RESET, "option overruns", mtype, code, mid, token)
        repeated = delta == 0 and seen
        seen = True
        number += delta
        if number > 0xFFFF:
            raise CoapDecodeError(RESET, f"option number {number}", mtype, code, mid, token)
        s = spec.get(number)
        if s is None:
            if number & 1:
                bad = bad or f"unknown critical option {number}"
            else:
                opts.append((number, bytes(data[pos:end])))
            pos = end
            continue
        fmt, lo, hi, repeatable = s
        problem = None
        if repeated and not repeatable:
            problem = f"repeated {option_name(number)}"
        elif length < lo or length > hi:
            problem = f"{option_name(number)} length {length}"
        value: OptionValue
        if problem is None:
            if fmt == _F_STRING:
                try:
                    value = bytes(data[pos:end]).decode("utf-8")
                except UnicodeDecodeError:
                    problem = f"{option_name(number)} not UTF-8"
            elif fmt == _F_UINT:
                value = int.from_bytes(data[pos:end], "big")
            elif fmt == _F_OPAQUE:
                value = bytes(data[pos:end])
            else:
                value = b""
        pos = end
        if problem is None:
            opts.append((number, value))
        elif number & 1:
            bad = bad or problem
    if bad is not None:
        raise CoapDecodeError(BAD_OPTION, bad, mtype, code, mid, token)
    msg = _new_message(Message)
    msg.mtype = mtype
    msg.code = _CODES.get(code, code)  # Code members print as "0.01 GET", like aiocoap's
    msg.mid = mid
    msg.token = token
    msg.options = opts
    msg.payload = payload
    msg.remote = remote
    msg.remaining_path = ()
    return msg


def _raw(value: OptionValue) -> bytes:
    if type(value) is int:
        return value.to_bytes((value.bit_length() + 7) >> 3, "big") if value else b""
    if type(value) is str:
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, int):  # IntEnum and bool
        v = int(value)
        return v.to_bytes((v.bit_length() + 7) >> 3, "big") if v else b""
    raise TypeError(f"option value {value!r} is not int, str or bytes")


def encode_tail(options: list[tuple[int, OptionValue]], payload: bytes) -> bytes:
    """Everything after the token: options (sorted into wire order) and payload."""
    buf = bytearray()
    prev = 0
    for number, value in sorted_options(options):
        raw = _raw(value)
        delta = number - prev
        prev = number
        length = len(raw)
        if delta < 13:
            dn = delta
            dx = b""
        elif delta < 269:
            dn = 13
            dx = bytes((delta - 13,))
        else:
            dn = 14
            dx = (delta - 269).to_bytes(2, "big")
        if length < 13:
            ln = length
            lx = b""
        elif length < 269:
            ln = 13
            lx = bytes((length - 13,))
        else:
            ln = 14
            lx = (length - 269).to_bytes(2, "big")
        buf.append((dn << 4) | ln)
        buf += dx
        buf += lx
        buf += raw
    if payload:
        buf.append(0xFF)
        buf += payload
    return bytes(buf)


def encode_head(mtype: int, code: int, mid: int, token: bytes) -> bytes:
    """The 4-byte header followed by the token."""
    return bytes((0x40 | (mtype << 4) | len(token), code, mid >> 8, mid & 0xFF)) + token


def encode(msg: Message) -> bytes:
    """Serialise a message; ``mtype`` and ``mid`` must be set and the token at most 8 bytes."""
    mtype = msg.mtype
    mid = msg.mid
    token = msg.token
    if mtype is None or mid is None:
        raise ValueError("message type and message id must be set before encoding")
    if len(token) > 8 or not 0 <= mid <= 0xFFFF or not 0 <= msg.code <= 255:
        raise ValueError("token longer than 8 bytes or mid/code out of range")
    head = bytes((0x40 | (mtype << 4) | len(token), msg.code, mid >> 8, mid & 0xFF))
    if not msg.options and not msg.payload:
        return head + token
    return head + token + encode_tail(msg.options, msg.payload)


# --- human-readable form ------------------------------------------------------------------------


def format_option(number: int, value: OptionValue) -> str:
    """``Uri-Path:time``, ``Block2:1/M/64``, ``Content-Format:text/plain; charset=utf-8``..."""
    name = option_name(number)
    if number in (o.BLOCK1, o.BLOCK2) and isinstance(value, int):
        num, more, szx = o.block_parts(value)
        return f"{name}:{num}/{'M' if more else '_'}/{o.szx_size(szx)}"
    if number in (o.CONTENT_FORMAT, o.ACCEPT) and isinstance(value, int):
        return f"{name}:{o.CONTENT_FORMAT_NAMES.get(value, value)}"
    if isinstance(value, bytes):
        return f"{name}:0x{value.hex()}" if value else name
    return f"{name}:{value}"


def describe(msg: Message) -> str:
    """One line in libcoap's style: ``v:1 t:CON c:GET i:1a2b {0c} [ Uri-Path:time ] :: 'ON'``."""
    t = TYPE_NAMES[msg.mtype] if msg.mtype is not None else "?"
    c = code_name(msg.code).split(" ", 1)
    ctext = c[1] if len(c) > 1 and msg.is_request() else code_name(msg.code)
    mid = f"{msg.mid:04x}" if msg.mid is not None else "?"
    line = f"v:1 t:{t} c:{ctext} i:{mid} {{{msg.token.hex()}}}"
    line += " [ " + ", ".join(format_option(n, v) for n, v in msg.options) + " ]"
    if msg.payload:
        try:
            text = msg.payload.decode("utf-8")
            shown = repr(text) if text.isprintable() else f"<<{msg.payload.hex()}>>"
        except UnicodeDecodeError:
            shown = f"<<{msg.payload.hex()}>>"
        if len(shown) > 200:
            shown = shown[:200] + "..."
        line += f" :: {shown}"
    return line


__all__ = [
    "ACK",
    "BAD_OPTION",
    "CON",
    "DROP",
    "NON",
    "RESET",
    "RST",
    "CoapDecodeError",
    "Code",
    "Message",
    "OptionView",
    "Type",
    "decode",
    "describe",
    "encode",
    "encode_head",
    "encode_tail",
    "format_option",
    "sorted_options",
]
