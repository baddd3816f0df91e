"""CoAP URIs (RFC 7252 section 6): ``coap://host[:port]/path?query`` to options and back.

Host may be a name, an IPv4 address or a bracketed IPv6 literal (``coap://[::1]/time``).
Path segments and query parameters are percent-decoded into Uri-Path / Uri-Query values,
as libcoap's coap-client does.  A name (not an address literal) also becomes Uri-Host.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

DEFAULT_PORT = 5683


class CoapUriError(ValueError):
    """The text is not a ``coap://`` URI this client can use."""


class CoapUri(NamedTuple):
    """A parsed ``coap://`` URI."""

    host: str
    port: int
    path: tuple[str, ...]
    query: tuple[str, ...]
    explicit_port: bool

    @property
    def is_literal(self) -> bool:
        """True when ``host`` is an IP address, not a name to resolve."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.explicit_port else ""
        path = "/" + "/".join(self.path)
        query = ("?" + "&".join(self.query)) if self.query else ""
        return f"coap://{host}{port}{path}{query}"


def _decode(part: str) -> str:
    return unquote_to_bytes(part).decode("utf-8", errors="surrogateescape")


def parse_uri(text: str) -> CoapUri:
    """Split ``coap://host[:port]/path?query`` into its parts.

    Raises :class:`CoapUriError` for another scheme, an empty host or a bad port.
    """
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise CoapUriError(f"not an absolute URI (coap://host/path expected): {text!r}")
    if scheme.lower() != "coap":
        raise CoapUriError(f"unsupported scheme {scheme!r} (only coap:// is supported)")
    rest, _, _fragment = rest.partition("#")
    authority_end = len(rest)
    for ch in "/?":
        i = rest.find(ch)
        if i != -1:
            authority_end = min(authority_end, i)
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        raise CoapUriError("user information is not allowed in coap:// URIs")
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            raise CoapUriError(f"unclosed '[' in host: {text!r}")
        host = authority[1:close]
        after = authority[close + 1 :]
        if after and not after.startswith(":"):
            raise CoapUriError(f"junk after IPv6 address: {text!r}")
        port_text = after[1:] if after else ""
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise CoapUriError(f"bad IPv6 address {host!r}") from None
    else:
        host, colon, port_text = authority.partition(":")
        if colon and not port_text:
            port_text = ""
    if not host:
        raise CoapUriError(f"no host in {text!r}")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise CoapUriError(f"bad port {port_text!r}")
        port = int(port_text)
    else:
        port = DEFAULT_PORT
    path_text, _, query_text = tail.partition("?")
    segments = path_text.split("/")[1:] if path_text else []
    # "coap://h/" and "coap://h" both address the root: no Uri-Path at all.
    if segments == [""]:
        segments = []
    path = tuple(_decode(s) for s in segments)
    query = tuple(_decode(q) for q in query_text.split("&")) if query_text else ()
    if ":" not in host:
        host = host.lower()
    return CoapUri(host, port, path, query, bool(port_text))
