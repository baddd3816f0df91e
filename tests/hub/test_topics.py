"""The subscription trie: wildcards, $-topics, overlaps, unsubscribe, cache invalidation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.hub.topic_tree import TopicTree, filter_matches
from m2mhub.mqtt.packets import SubscriptionOptions, Unsuback
from m2mhub.mqtt.topics import topic_matches
from tests.hub.harness import Hub

LEVEL = st.sampled_from(["a", "b", "$SYS", "", "c"])
FILTER_LEVEL = st.sampled_from(["a", "b", "$SYS", "", "+", "c"])


@st.composite
def filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(FILTER_LEVEL, min_size=1, max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels)


TOPICS = st.lists(LEVEL, min_size=1, max_size=5).map("/".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(filters(), min_size=1, max_size=6, unique=True), TOPICS)
def test_trie_agrees_with_reference_matcher(fs: list[str], topic: str) -> None:
    tree = TopicTree()
    for i, f in enumerate(fs):
        tree.add(f, i, SubscriptionOptions(qos=1))
    expected = {i for i, f in enumerate(fs) if topic_matches(f, topic)}
    assert {sub for sub, _q, _o, _i in tree.match(topic)} == expected
    for f in fs:
        assert filter_matches(f, topic) == topic_matches(f, topic)


def test_dollar_topics_not_matched_by_leading_wildcards() -> None:
    tree = TopicTree()
    tree.add("#", "all", SubscriptionOptions())
    tree.add("+/broker/#", "plus", SubscriptionOptions())
    tree.add("$SYS/#", "sys", SubscriptionOptions())
    assert [s for s, _q, _o, _i in tree.match("$SYS/broker/uptime")] == ["sys"]
    assert {s for s, _q, _o, _i in tree.match("x/broker/uptime")} == {"all", "plus"}


def test_hash_matches_parent_level() -> None:
    tree = TopicTree()
    tree.add("a/#", "s", SubscriptionOptions())
    assert [s for s, _q, _o, _i in tree.match("a")] == ["s"]


def test_cache_invalidated_on_subscribe_and_unsubscribe() -> None:
    tree = TopicTree()
    assert tree.match("a/b") == []
    tree.add("a/+", "s", SubscriptionOptions(qos=2))
    assert [(s, q) for s, q, _o, _i in tree.match("a/b")] == [("s", 2)]
    assert tree.remove("a/+", "s")
    assert tree.match("a/b") == []
    assert not tree.remove("a/+", "s")
    assert tree.count == 0


def test_overlapping_subscriptions_deliver_one_copy_at_highest_qos() -> None:
    hub = Hub()
    sub = hub.connected("sub")
    sub.subscribe(("a/b", 0), ("a/+", 2), ("#", 1))
    pub = hub.connected("pub")
    pub.publish_complete("a/b", b"x", 2)
    got = sub.publishes()
    assert [(p.payload, p.qos) for p in got] == [(b"x", 2)]


def test_unsubscribe_stops_delivery() -> None:
    hub = Hub()
    sub = hub.connected("sub")
    sub.subscribe(("a", 0), ("b", 0))
    assert sub.unsubscribe("a", "nothing") == [Unsuback(2)]
    assert "sub a" in hub.lines
    pub = hub.connected("pub")
    pub.publish("a", b"1")
    pub.publish("b", b"2")
    assert [p.payload for p in sub.publishes()] == [b"2"]


def test_unsubscribe_v5_reason_codes() -> None:
    hub = Hub()
    sub = hub.connected("sub", level=5)
    sub.subscribe(("a", 0))
    assert sub.unsubscribe("a", "nothing") == [Unsuback(2, [0x00, 0x11])]


def test_subscribe_log_lines_match_mosquitto() -> None:
    hub = Hub()
    sub = hub.connected("Sub1")
    start = len(hub.lines)
    sub.subscribe(("test/message", 1))
    assert hub.lines[start:] == [
        "Received SUBSCRIBE from Sub1",
        "\ttest/message (QoS 1)",
        "Sub1 1 test/message",
        "Sending SUBACK to Sub1",
    ]


def test_shared_subscriptions_advertised_and_granted() -> None:
    hub = Hub()
    v5 = hub.client("v5", level=5)
    ack = v5.connect()
    assert ack is not None and ack.properties[0x2A] == 1  # type: ignore[union-attr]
    assert v5.subscribe(("$share/g/t", 1), ("t", 1)).reason_codes == [1, 1]
