"""The order of the retained messages a wildcard SUBSCRIBE brings, on both brokers.

mosquitto 2.0.11 walks its topic tree depth first, the children of each level in the order
they were created; a ``#`` subtree comes parent first, except that the level the ``#`` hangs
under ("F" for "F/#") comes after everything below it. Filters of one SUBSCRIBE are served in
the packet's order.
"""

from __future__ import annotations

import pytest

from tests.interop import raw
from tests.interop.conftest import Broker
from tests.interop.raw import RawClient

pytestmark = pytest.mark.interop

TOPICS = ["E/x/1", "E/y/2", "E/y/1", "E/x/2", "E/x/1/1", "F", "F/a", "F/a/b", "F/c"]


def retain_all(broker: Broker, topics: list[str]) -> None:
    with RawClient(broker.port) as pub:
        assert pub.connect("order-pub").body[1] == 0
        for pid, topic in enumerate(topics, start=1):
            pub.send(raw.publish(topic, topic.encode(), qos=1, retain=True, pid=pid))
            pub.expect(raw.PUBACK)


def retained_topics(broker: Broker, filters: list[str]) -> list[str]:
    """Topics of the retained messages a SUBSCRIBE to ``filters`` gets, in arrival order."""
    with RawClient(broker.port) as sub, RawClient(broker.port) as pub:
        assert sub.connect("order-sub").body[1] == 0
        sub.subscribe([*((f, 0) for f in filters), ("order/end", 0)])
        # Sent after the SUBACK, so it arrives after every retained message.
        assert pub.connect("order-end").body[1] == 0
        pub.send(raw.publish("order/end", b"end"))
        got = [p.publish_fields()[0] for p in sub.collect_until(b"end")]
        return got[:-1]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["E/+/1"], ["E/x/1", "E/y/1"]),
        (["E/+/+"], ["E/x/1", "E/x/2", "E/y/2", "E/y/1"]),
        (["E/#"], ["E/x/1", "E/x/1/1", "E/x/2", "E/y/2", "E/y/1"]),
        (["F/#"], ["F/a", "F/a/b", "F/c", "F"]),
        (["+/#"], ["E/x/1", "E/x/1/1", "E/x/2", "E/y/2", "E/y/1", "F/a", "F/a/b", "F/c", "F"]),
        (["#"], ["E/x/1", "E/x/1/1", "E/x/2", "E/y/2", "E/y/1", "F", "F/a", "F/a/b", "F/c"]),
        (["F/#", "E/+/1"], ["F/a", "F/a/b", "F/c", "F", "E/x/1", "E/y/1"]),
    ],
)
def test_retained_messages_come_in_topic_tree_order(
    broker: Broker, filters: list[str], expected: list[str]
) -> None:
    retain_all(broker, TOPICS)
    assert retained_topics(broker, filters) == expected


def test_a_replaced_retained_message_keeps_its_place(broker: Broker) -> None:
    retain_all(broker, ["R/a", "R/b", "R/c", "R/a"])
    assert retained_topics(broker, ["R/+"]) == ["R/a", "R/b", "R/c"]
