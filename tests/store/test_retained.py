"""The retained store's wildcard lookup agrees with the reference topic matcher."""

from __future__ import annotations

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
