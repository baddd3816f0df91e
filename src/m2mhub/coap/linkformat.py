"""CoRE link-format (RFC 6690): the body of ``/.well-known/core`` and its query filtering."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from m2mhub.coap.resource import Site

Link = tuple[str, dict[str, str | int | bool]]


def href_of(path: tuple[str, ...]) -> str:
    return "/" + "/".join(quote(s, safe="!$&'()*+,;=:@-._~") for s in path)


def format_link(href: str, attrs: dict[str, str | int | bool]) -> str:
    parts = [f"<{href}>"]
    for k, v in attrs.items():
        if v is True:
            parts.append(k)
        elif isinstance(v, int) and not isinstance(v, bool):
            parts.append(f"{k}={v}")
        elif v is not False:
            parts.append(f'{k}="{v}"')
    return ";".join(parts)


def _matches(value: str | int | bool | None, pattern: str, multi: bool) -> bool:
    if value is None or value is False:
        return False
    text = "" if value is True else str(value)
    candidates = text.split() if multi else [text]
    if pattern.endswith("*"):
        return any(c.startswith(pattern[:-1]) for c in candidates)
    return pattern in candidates


def filter_links(links: list[Link], query: Sequence[str]) -> list[Link]:
    """Keep the links matching every ``name=value`` query (trailing ``*`` = prefix match)."""
    out = links
    for q in query:
        name, _, pattern = q.partition("=")
        if name == "href":
            out = [lk for lk in out if _matches(lk[0], pattern, False)]
        else:
            multi = name in ("rt", "if", "rel")
            out = [lk for lk in out if _matches(lk[1].get(name), pattern, multi)]
    return out


def site_links(site: Site) -> list[Link]:
    from m2mhub.coap.resource import PrefixResource

    links: list[Link] = []
    for path, resource in sorted(site.resources(), key=lambda pr: pr[0]):
        if resource.hidden:
            continue
        attrs = resource.link_attributes()
        extra = getattr(resource, "get_link_description", None)  # aiocoap's spelling
        if callable(extra):
            attrs = {**attrs, **extra()}
        if isinstance(resource, PrefixResource):
            for sub in resource.link_paths():
                links.append((href_of(path + tuple(sub)), attrs))
        else:
            links.append((href_of(path), attrs))
    return links


def link_format(site: Site, query: Sequence[str] = ()) -> str:
    links = filter_links(site_links(site), query)
    return ",".join(format_link(h, a) for h, a in links)


def parse_link_format(text: str) -> list[Link]:
    """Parse a link-format document (enough for our own client and tests)."""
    links: list[Link] = []
    for item in _split_outside_quotes(text, ","):
        item = item.strip()
        if not item.startswith("<") or ">" not in item:
            continue
        href, _, rest = item[1:].partition(">")
        attrs: dict[str, str | int | bool] = {}
        for part in _split_outside_quotes(rest, ";"):
            part = part.strip()
            if not part:
                continue
            k, eq, v = part.partition("=")
            if not eq:
                attrs[k] = True
            elif v.startswith('"') and v.endswith('"') and len(v) >= 2:
                attrs[k] = v[1:-1]
            else:
                attrs[k] = int(v) if v.isdigit() else v
        links.append((href, attrs))
    return links


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts
