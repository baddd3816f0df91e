"""Topic names and topic filters: validation, shared-subscription parsing and a reference matcher.

Rules (MQTT 3.1.1 section 4.7, 5.0 section 4.7):
- names and filters are at least one character and at most 65535 UTF-8 bytes, without U+0000;
- a topic name (PUBLISH, will) contains no wildcard;
- in a filter ``#`` is a whole level and the last one, ``+`` is a whole level;
- topics starting with ``$`` are not matched by a filter starting with a wildcard.

``$share/{group}/{filter}`` is a shared subscription when ``shared=True`` (MQTT 5.0; mosquitto
also accepts it from 3.1.1 clients): the group is non-empty and wildcard-free and the filter
is a valid non-empty filter. Without the flag it is an ordinary filter whose first level is
``$share``.
"""

from __future__ import annotations

from m2mhub.mqtt.errors import TopicFilterInvalid, TopicNameInvalid

SHARE_PREFIX = "$share/"
MAX_TOPIC_BYTES = 65535


def split_levels(topic: str) -> list[str]:
    """The levels of a topic name or filter (``"a//b"`` has three, the middle one empty)."""
    return topic.split("/")


def split_shared(topic_filter: str) -> tuple[str | None, str]:
    """``("group", "filter")`` for ``$share/group/filter``, ``(None, topic_filter)`` otherwise.

    Does not validate; call :func:`validate_topic_filter` with ``shared=True`` first.
    """
    if topic_filter.startswith(SHARE_PREFIX):
        parts = topic_filter.split("/", 2)
        return parts[1], parts[2] if len(parts) == 3 else ""
    return None, topic_filter


def _check_length_and_nul(
    topic: str, error: type[TopicNameInvalid | TopicFilterInvalid], what: str
) -> None:
    if not topic:
        raise error(f"empty {what}")
    if "\x00" in topic:
        raise error(f"{what} contains U+0000")
    # At most 4 UTF-8 bytes per character: only long strings need encoding to be measured.
    if len(topic) > MAX_TOPIC_BYTES // 4 and len(topic.encode("utf-8", "surrogatepass")) > (
        MAX_TOPIC_BYTES
    ):
        raise error(f"{what} longer than {MAX_TOPIC_BYTES} bytes")


def validate_topic_name(topic: str) -> None:
    """Raise :class:`TopicNameInvalid` unless ``topic`` is a valid PUBLISH/will topic name."""
    _check_length_and_nul(topic, TopicNameInvalid, "topic name")
    if "+" in topic or "#" in topic:
        raise TopicNameInvalid(f"wildcard in topic name {topic!r}")


def _validate_filter_levels(topic_filter: str) -> None:
    if "+" not in topic_filter and "#" not in topic_filter:
        return
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if level == "+":
            continue
        if level == "#":
            if i != last:
                raise TopicFilterInvalid(f"'#' is not the last level in {topic_filter!r}")
            continue
        if "+" in level or "#" in level:
            raise TopicFilterInvalid(f"wildcard is not a whole level in {topic_filter!r}")


def validate_topic_filter(topic_filter: str, shared: bool = False) -> None:
    """Raise :class:`TopicFilterInvalid` unless ``topic_filter`` is a valid subscription filter.

    With ``shared=True`` a ``$share/group/filter`` must be a well-formed shared subscription.
    """
    _check_length_and_nul(topic_filter, TopicFilterInvalid, "topic filter")
    if shared and topic_filter.startswith(SHARE_PREFIX):
        parts = topic_filter.split("/", 2)
        if len(parts) < 3 or not parts[1]:
            raise TopicFilterInvalid(f"shared subscription without group: {topic_filter!r}")
        group, rest = parts[1], parts[2]
        if "+" in group or "#" in group:
            raise TopicFilterInvalid(f"wildcard in shared subscription group {group!r}")
        if not rest:
            raise TopicFilterInvalid(f"shared subscription without filter: {topic_filter!r}")
        _validate_filter_levels(rest)
        return
    _validate_filter_levels(topic_filter)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """True if ``topic`` (a valid name) matches ``topic_filter`` (a valid, non-shared filter).

    This is the reference matcher the tests compare the broker's trie against; it is not meant
    for the hot path.
    """
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for i, f in enumerate(f_levels):
        if f == "#":
            return True
        if i >= len(t_levels):
            return False
        if f != "+" and f != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)
