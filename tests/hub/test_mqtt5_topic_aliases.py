"""Server-to-client topic aliases (MQTT 5 3.3.2.3.4): the broker assigns them to a 5.0 client
that allows them (Topic Alias Maximum in CONNECT), never more than it allows, per connection.

Policy (docs/mqtt5.md): the first distinct topics sent get aliases 1..maximum and keep them for
the connection; further topics go by name. Client-to-server aliases: test_mqtt5_limits.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from m2mhub.hub import broker as broker_module
from m2mhub.hub.aliases import MAX_OUTBOUND_ALIASES
from m2mhub.mqtt.packets import Connack, Puback, Publish, Subscribe, SubscriptionOptions
from tests.hub.harness import Client, Hub

TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_PACKET_SIZE = 0x27
SESSION_EXPIRY = 0x11
MESSAGE_EXPIRY = 0x02
SUBSCRIPTION_ID = 0x0B


def _aliasing(hub: Hub, client_id: str, maximum: int = 10, **props: Any) -> Client:
    properties = {TOPIC_ALIAS_MAXIMUM: maximum, **{int(k[1:], 16): v for k, v in props.items()}}
    return hub.connected(client_id, level=5, properties=properties)


def _wire(publishes: list[Publish]) -> list[tuple[str, int | None, bytes]]:
    """(topic name as sent, Topic Alias or None, payload) of each PUBLISH."""
    return [(p.topic, p.properties.get(TOPIC_ALIAS), p.payload) for p in publishes]


class Resolver:
    """What a client does with incoming aliases: the topic each PUBLISH stands for."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.table: dict[int, str] = {}

    def resolve(self, publishes: list[Publish]) -> Iterator[tuple[str, bytes]]:
        for p in publishes:
            alias = p.properties.get(TOPIC_ALIAS)
            if alias is None:
                assert p.topic
                yield p.topic, p.payload
                continue
            assert 0 < alias <= self.maximum, f"alias {alias} over the client's maximum"
            if p.topic:
                self.table[alias] = p.topic
            assert alias in self.table, f"alias {alias} used before it was set"
            yield self.table[alias], p.payload


# ------------------------------------------------------------------ the basics


def test_first_send_names_the_topic_later_ones_only_the_alias() -> None:
    hub = Hub()
    sub = _aliasing(hub, "sub")
    sub.subscribe(("sensors/#", 0))
    pub = hub.connected("pub")
    start = len(sub.sink.data)
    pub.publish("sensors/kitchen/temperature", b"21")
    pub.publish("sensors/kitchen/temperature", b"22")
    # Raw bytes: name + alias 1, then an empty name + alias 1 (3 bytes of properties each).
    topic = b"sensors/kitchen/temperature"
    assert bytes(sub.sink.data[start:]) == (
        bytes((0x30, 2 + len(topic) + 4 + 2, 0, len(topic)))
        + topic
        + b"\x03\x23\x00\x0121"
        + b"\x30\x08\x00\x00\x03\x23\x00\x0122"
    )


def test_clients_that_allow_no_aliases_get_full_topics() -> None:
    hub = Hub()
    v5 = hub.connected("v5", level=5)
    v311 = hub.connected("v311")
    for c in (v5, v311):
        c.subscribe(("t", 1))
    pub = hub.connected("pub")
    for i in range(3):
        pub.publish_complete("t", b"%d" % i, 1, packet_id=i + 1)
    for c in (v5, v311):
        assert _wire(c.publishes()) == [("t", None, b"0"), ("t", None, b"1"), ("t", None, b"2")]


def test_connack_needs_no_change_and_topic_alias_maximum_is_per_client() -> None:
    hub = Hub()
    sub = hub.client("sub", level=5)
    ack = sub.connect(properties={TOPIC_ALIAS_MAXIMUM: 3})
    assert isinstance(ack, Connack) and ack.reason_code == 0
    assert ack.properties[TOPIC_ALIAS_MAXIMUM] == 10  # ours, for the client's aliases


def test_never_more_aliases_than_the_client_allows_first_ones_kept() -> None:
    hub = Hub()
    sub = _aliasing(hub, "sub", maximum=2)
    sub.subscribe(("#", 0))
    pub = hub.connected("pub")
    for topic in ("a", "b", "c", "a", "b", "c", "d"):
        pub.publish(topic, topic.encode())
    assert _wire(sub.publishes()) == [
        ("a", 1, b"a"),
        ("b", 2, b"b"),
        ("c", None, b"c"),  # no alias left: the name alone
        ("", 1, b"a"),
        ("", 2, b"b"),
        ("c", None, b"c"),
        ("d", None, b"d"),
    ]


def test_a_client_allowing_65535_gets_at_most_our_own_limit() -> None:
    hub = Hub()
    sub = _aliasing(hub, "sub", maximum=65535)
    sub.subscribe(("#", 0))
    pub = hub.connected("pub")
    for i in range(MAX_OUTBOUND_ALIASES + 2):
        pub.publish(f"t/{i}", b"x")
    aliases = [p.properties.get(TOPIC_ALIAS) for p in sub.publishes()]
    assert aliases == [*range(1, MAX_OUTBOUND_ALIASES + 1), None, None]


def test_what_the_client_resolves_is_what_was_published() -> None:
    hub = Hub()
    sub = _aliasing(hub, "sub", maximum=3)
    sub.subscribe(("#", 2))
    pub = hub.connected("pub")
    sent = [(f"room/{i % 5}/t", b"%d" % i) for i in range(30)]
    for i, (topic, payload) in enumerate(sent):
        pub.publish_complete(topic, payload, i % 3, packet_id=i + 1)
    got = sub.received()
    publishes = [p for p in got if isinstance(p, Publish)]
    assert list(Resolver(3).resolve(publishes)) == sent


# ------------------------------------------------------------------ per connection


def test_aliases_start_afresh_after_a_reconnect_and_resends_use_the_name() -> None:
    hub = Hub()
    props = {TOPIC_ALIAS_MAXIMUM: 5, SESSION_EXPIRY: 60}
    sub = hub.connected("sub", level=5, properties=props)
    sub.subscribe(("t/#", 1))
    pub = hub.connected("pub")
    pub.publish_complete("t/a", b"1", 1, packet_id=1)
    pub.publish_complete("t/a", b"2", 1, packet_id=2)
    first = sub.publishes()
    assert _wire(first) == [("t/a", 1, b"1"), ("", 1, b"2")]
    sub.send(Puback(first[0].packet_id or 0))  # "2" stays unacknowledged
    sub.drop()
    pub.publish_complete("t/a", b"3", 1, packet_id=3)  # queued while offline
    again = hub.client("sub", level=5)
    ack = again.connect(clean=False, properties=props)
    assert isinstance(ack, Connack) and ack.session_present
    got = [p for p in again.pending if isinstance(p, Publish)]
    # The resend (DUP) names the topic again: the new connection knows no alias yet.
    assert [(p.dup, *w) for p, w in zip(got, _wire(got), strict=True)] == [
        (True, "t/a", 1, b"2"),
        (False, "", 1, b"3"),
    ]


def test_reconnecting_without_aliases_gets_full_topics() -> None:
    hub = Hub()
    sub = _aliasing(hub, "sub", **{"x11": 60})
    sub.subscribe(("t", 0))
    pub = hub.connected("pub")
    pub.publish("t", b"1")
    assert _wire(sub.publishes()) == [("t", 1, b"1")]
    sub.drop()
    plain = hub.client("sub", level=5)
    plain.connect(clean=False, properties={SESSION_EXPIRY: 60})
    pub.publish("t", b"2")
    assert _wire(plain.publishes()) == [("t", None, b"2")]


def test_each_connection_has_its_own_table() -> None:
    hub = Hub()
    a = _aliasing(hub, "a")
    b = _aliasing(hub, "b")
    a.subscribe(("x", 0), ("y", 0))
    b.subscribe(("y", 0))
    pub = hub.connected("pub")
    pub.publish("x", b"1")  # a: x is alias 1
    pub.publish("y", b"2")  # a: y is alias 2; b: y is alias 1
    pub.publish("y", b"3")
    assert _wire(a.publishes()) == [("x", 1, b"1"), ("y", 2, b"2"), ("", 2, b"3")]
    assert _wire(b.publishes()) == [("y", 1, b"2"), ("", 1, b"3")]


def test_inbound_and_outbound_aliases_are_separate_tables() -> None:
    hub = Hub()
    c = _aliasing(hub, "c")
    c.subscribe(("in", 0), ("out", 0))
    other = hub.connected("other")
    c.send(Publish("in", b"1", properties={TOPIC_ALIAS: 1}))  # the client's alias 1 = "in"
    assert _wire(c.publishes()) == [("in", 1, b"1")]  # ours happens to be 1 as well
    other.publish("out", b"2")
    c.send(Publish("", b"3", properties={TOPIC_ALIAS: 1}))
    assert _wire(c.publishes()) == [("out", 2, b"2"), ("", 1, b"3")]


# ------------------------------------------------------------------ every way out


def test_retained_and_queued_messages_use_aliases() -> None:
    hub = Hub()
    pub = hub.connected("pub")
    pub.publish("r/1", b"retained", retain=True)
    props = {TOPIC_ALIAS_MAXIMUM: 10, SESSION_EXPIRY: 60}
    sub = hub.connected("sub", level=5, properties=props)
    sub.subscribe(("r/#", 1))
    assert _wire([p for p in sub.pending if isinstance(p, Publish)]) == [("r/1", 1, b"retained")]
    sub.drop()
    for i in range(2):
        pub.publish_complete("r/2", b"q%d" % i, 1, packet_id=i + 1)
    again = hub.client("sub", level=5)
    again.connect(clean=False, properties=props)
    got = [p for p in again.pending if isinstance(p, Publish)]
    assert _wire(got) == [("r/2", 1, b"q0"), ("", 1, b"q1")]


def test_expiring_messages_carry_alias_and_time_left() -> None:
    hub = Hub()
    props = {TOPIC_ALIAS_MAXIMUM: 10, SESSION_EXPIRY: 60}
    sub = hub.connected("sub", level=5, properties=props)
    sub.subscribe(("e", 1))
    sub.drop()
    pub = hub.connected("pub", level=5)
    for i in range(2):
        pub.send(Publish("e", b"%d" % i, 1, packet_id=i + 1, properties={MESSAGE_EXPIRY: 100}))
    hub.advance(30)
    again = hub.client("sub", level=5)
    again.connect(clean=False, properties=props)
    got = [p for p in again.pending if isinstance(p, Publish)]
    assert _wire(got) == [("e", 1, b"0"), ("", 1, b"1")]
    assert [p.properties[MESSAGE_EXPIRY] for p in got] == [70, 70]


def test_subscription_identifiers_and_aliases_together() -> None:
    hub = Hub()
    sub = _aliasing(hub, "sub")
    sub.send(Subscribe(1, [("s/#", SubscriptionOptions(qos=0))], {SUBSCRIPTION_ID: [7]}))
    sub.received()
    pub = hub.connected("pub")
    pub.publish("s/1", b"a")
    pub.publish("s/1", b"b")
    got = sub.publishes()
    assert _wire(got) == [("s/1", 1, b"a"), ("", 1, b"b")]
    assert [p.properties[SUBSCRIPTION_ID] for p in got] == [[7], [7]]


def test_shared_subscription_members_use_their_own_aliases() -> None:
    hub = Hub()
    a = _aliasing(hub, "a")
    b = _aliasing(hub, "b")
    for c in (a, b):
        c.subscribe(("$share/g/w", 0))
    pub = hub.connected("pub")
    for i in range(4):
        pub.publish("w", b"%d" % i)
    assert _wire(a.publishes()) == [("w", 1, b"0"), ("", 1, b"2")]
    assert _wire(b.publishes()) == [("w", 1, b"1"), ("", 1, b"3")]


# ------------------------------------------------------------------ with Maximum Packet Size


def test_no_alias_when_name_and_alias_would_not_fit_the_clients_maximum() -> None:
    hub = Hub()
    # "t" + 17-byte payload: 24 bytes by name, 27 with a new alias, 26 with a known one.
    sub = _aliasing(hub, "sub", **{"x27": 25})
    sub.subscribe(("t", 0))
    pub = hub.connected("pub")
    pub.publish("t", b"x" * 17)
    pub.publish("t", b"x" * 17)
    pub.publish("t", b"y")  # small: now the alias is assigned
    pub.publish("t", b"z" * 17)  # 23 bytes with the known alias
    assert _wire(sub.publishes()) == [
        ("t", None, b"x" * 17),
        ("t", None, b"x" * 17),
        ("t", 1, b"y"),
        ("", 1, b"z" * 17),
    ]


def test_too_large_even_with_its_alias_is_dropped_and_logged() -> None:
    hub = Hub()
    sub = _aliasing(hub, "sub", **{"x27": 30})
    sub.subscribe(("t", 1))
    pub = hub.connected("pub")
    pub.publish_complete("t", b"a", 1, packet_id=1)
    pub.publish_complete("t", b"x" * 40, 1, packet_id=2)
    pub.publish_complete("t", b"b", 1, packet_id=3)
    got = sub.publishes()
    assert _wire(got) == [("t", 1, b"a"), ("", 1, b"b")]
    assert "Dropping too large outgoing PUBLISH for sub (48 bytes)" in hub.lines
    session = sub.conn.session
    assert session is not None and len(session.inflight) == 2  # the dropped one is not in flight


# ------------------------------------------------------------------ the fan-out's encodings


@pytest.fixture
def encodings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Topic names of the PUBLISH encodings the broker core makes."""
    made: list[str] = []
    real = broker_module.encode_publish_parts

    def counting(topic: str, *args: Any) -> tuple[bytes, bytes]:
        made.append(topic)
        return real(topic, *args)

    monkeypatch.setattr(broker_module, "encode_publish_parts", counting)
    return made


def test_fan_out_encodes_once_per_variant(encodings: list[str]) -> None:
    """Plain 3.1.1 and 5.0 subscribers share one encoding each as before; aliasing ones share
    one per (alias, name or not)."""
    hub = Hub()
    subs = [hub.connected(f"p{i}") for i in range(3)]
    subs += [hub.connected(f"v{i}", level=5) for i in range(3)]
    subs += [_aliasing(hub, f"a{i}") for i in range(3)]
    for sub in subs:
        sub.subscribe(("t", 0))
    pub = hub.connected("pub")
    pub.publish("t", b"1")
    assert sorted(encodings) == ["t", "t", "t"]  # 3.1.1, 5.0, 5.0 with name + alias 1
    encodings.clear()
    pub.publish("t", b"2")
    assert sorted(encodings) == ["", "t", "t"]  # the alias-only form, once for three clients
    for sub in subs:
        assert [p.payload for p in sub.publishes()] == [b"1", b"2"]
