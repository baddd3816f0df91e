"""The retained store's wildcard lookup agrees with the reference topic matcher."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.hub.message import Message
from m2mhub.mqtt.topics import topic_matches
from m2mhub.store.retained import RetainedStore

LEVEL = st.sampled_from(["a", "b", "$SYS", "", "c"])
TOPICS = st.lists(LEVEL, min_size=1, max_size=4).map("/".join)


@st.composite
def filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.sampled_from(["a", "b", "$SYS", "", "+"]), min_size=1, max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels)


@settings(max_examples=300, deadline=None)
@given(st.lists(TOPICS, max_size=8), st.lists(TOPICS, max_size=4), filters())
def test_matching_agrees_with_reference(kept: list[str], cleared: list[str], f: str) -> None:
    store = RetainedStore()
    for t in kept:
        store.set(Message(t, b"x" + t.encode(), 0, True))
    for t in cleared:
        store.clear(t)
    alive = set(kept) - set(cleared)
    assert sorted(m.topic for m in store.matching(f)) == sorted(
        t for t in alive if topic_matches(f, t)
    )
    assert len(store) == len(alive)
    assert store.bytes == sum(len(t) + 1 for t in alive)


def test_empty_payload_clears_and_prunes() -> None:
    store = RetainedStore()
    store.set(Message("a/b/c", b"1", 0, True))
    store.set(Message("a/b/c", b"", 0, True))
    assert store.get("a/b/c") is None
    assert list(store.matching("#")) == []
    assert not store._root.children


def test_a_topic_retained_again_after_a_clear_goes_last() -> None:
    """mosquitto 2.0.11 never frees a topic level, so there "a" would keep its first place;
    we free it at the clear to keep memory bounded (docs/serve.md)."""
    store = RetainedStore()
    store.set(Message("a", b"1", 0, True))
    store.set(Message("b", b"1", 0, True))
    store.clear("a")
    store.set(Message("a", b"2", 0, True))
    assert [m.topic for m in store.matching("#")] == ["b", "a"]


# Orders seen on mosquitto 2.0.11 with these topics retained in this order (the interop test
# tests/interop/test_retained_order.py checks both brokers over the wire).
ORDER_TOPICS = ["E/x/1", "E/y/2", "E/y/1", "E/x/2", "E/x/1/1", "F", "F/a", "F/a/b", "F/c"]


@pytest.mark.parametrize(
    ("topic_filter", "expected"),
    [
        ("E/+/1", ["E/x/1", "E/y/1"]),
        ("E/+/+", ["E/x/1", "E/x/2", "E/y/2", "E/y/1"]),
        ("E/#", ["E/x/1", "E/x/1/1", "E/x/2", "E/y/2", "E/y/1"]),
        ("E/+/#", ["E/x/1", "E/x/1/1", "E/x/2", "E/y/2", "E/y/1"]),
        ("F/#", ["F/a", "F/a/b", "F/c", "F"]),
        ("+/#", ["E/x/1", "E/x/1/1", "E/x/2", "E/y/2", "E/y/1", "F/a", "F/a/b", "F/c", "F"]),
        ("#", ["E/x/1", "E/x/1/1", "E/x/2", "E/y/2", "E/y/1", "F", "F/a", "F/a/b", "F/c"]),
    ],
)
def test_matching_follows_mosquittos_order(topic_filter: str, expected: list[str]) -> None:
    store = RetainedStore()
    for topic in ORDER_TOPICS:
        store.set(Message(topic, b"x", 0, True))
    assert [m.topic for m in store.matching(topic_filter)] == expected


def test_replacing_a_retained_message_keeps_its_place() -> None:
    store = RetainedStore()
    for topic in ["a", "b", "c"]:
        store.set(Message(topic, b"1", 0, True))
    store.set(Message("a", b"2", 0, True))
    assert [(m.topic, m.payload) for m in store.matching("+")] == [
        ("a", b"2"),
        ("b", b"1"),
        ("c", b"1"),
    ]
