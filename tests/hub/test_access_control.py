"""Access control in the broker core: what the authorizer says, and what mosquitto always does
for ``$SYS``; an ACL file (``m2mhub.auth.acl``) or a custom authorizer decides."""

from __future__ import annotations

import pytest

from m2mhub.auth.acl import AclFile, AclFileAuthorizer
from m2mhub.auth.enhanced import Success
from m2mhub.hub.auth import READ, SUBSCRIBE, WRITE
from m2mhub.mqtt.packets import (
    MQTT_5,
    Auth,
    Connack,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionOptions,
    Will,
)
from tests.hub.harness import Hub

ACL = """\
topic read pub/#
topic write in/#
topic deny in/secret
topic readwrite both/#
topic read $SYS/broker/#
pattern readwrite dev/%c/#

user writer
topic write #
"""


def acl_hub(text: str = ACL) -> Hub:
    hub = Hub()
    hub.broker.set_authorizer(AclFileAuthorizer(AclFile.parse(text)))
    return hub


class Recorder:
    """An authorizer that allows what ``allowed`` lists and records every question."""

    def __init__(self, allowed: set[tuple[str, int]]) -> None:
        self.allowed = allowed
        self.asked: list[tuple[str, str | None, str, int]] = []

    def check(self, client_id: str, username: str | None, topic: str, access: int) -> bool:
        self.asked.append((client_id, username, topic, access))
        return (topic, access) in self.allowed


@pytest.mark.parametrize("level", [4, 5])
def test_denied_publish_qos1_is_acknowledged_and_dropped(level: int) -> None:
    hub = acl_hub()
    watch = hub.connected("watch", username="writer")
    watch.subscribe(("#", 1))
    reader = hub.connected("reader")
    reader.subscribe(("#", 1))
    pub = hub.connected("pub", level=level)
    (ack,) = pub.publish("in/secret", b"no", qos=1, packet_id=5)
    assert isinstance(ack, Puback) and ack.packet_id == 5
    # 5.0 says why; 3.1.1's PUBACK has no reason code (mosquitto: the same).
    assert ack.reason_code == (0x87 if level == MQTT_5 else 0)
    assert watch.publishes() == [] and reader.publishes() == []
    denied = "Denied PUBLISH from pub (d0, q1, r0, m5, 'in/secret', ... (2 bytes))"
    assert hub.lines.count(denied) == 1
    assert "Sending PUBACK to pub (m5, rc135)" in hub.lines
    assert not any(line.startswith("Received PUBLISH from pub") for line in hub.lines)


@pytest.mark.parametrize("level", [4, 5])
def test_denied_publish_qos2_gets_pubrec_0x87(level: int) -> None:
    hub = acl_hub()
    pub = hub.connected("pub", level=level)
    (rec,) = pub.publish("pub/x", b"no", qos=2, packet_id=9)
    assert isinstance(rec, Pubrec) and rec.reason_code == (0x87 if level == MQTT_5 else 0)
    pub.send(Pubrel(9))  # the flow is over; a PUBREL all the same gets a PUBCOMP
    (comp,) = pub.received()
    assert isinstance(comp, Pubcomp)
    assert hub.broker.retained("pub/x") is None


def test_denied_qos0_publish_is_dropped_silently_and_logged_once() -> None:
    hub = acl_hub()
    reader = hub.connected("reader")
    reader.subscribe(("pub/#", 0))
    pub = hub.connected("pub")
    assert pub.publish("pub/x", b"m", retain=True) == []
    assert reader.publishes() == []
    assert hub.broker.retained("pub/x") is None
    assert hub.lines.count("Denied PUBLISH from pub (d0, q0, r1, m0, 'pub/x', ... (1 bytes))") == 1


def test_reads_are_checked_per_delivered_topic() -> None:
    hub = acl_hub()
    anon = hub.connected("anon")
    assert anon.subscribe(("#", 0)).reason_codes == [0]  # granted: filters are not checked
    writer = hub.connected("writer", username="writer")
    for topic in ["pub/1", "in/1", "both/1", "dev/anon/1", "dev/other/1", "x"]:
        writer.publish(topic, b"m")
    assert [p.topic for p in anon.publishes()] == ["pub/1", "both/1", "dev/anon/1"]


def test_retained_messages_on_subscribe_are_filtered_by_read_access() -> None:
    hub = acl_hub()
    writer = hub.connected("writer", username="writer")
    for topic in ["pub/r", "in/r", "both/r"]:
        writer.publish(topic, b"kept", retain=True)
    late = hub.connected("late")
    late.subscribe(("#", 0))
    assert sorted(p.topic for p in late.pending) == ["both/r", "pub/r"]


def test_sys_needs_explicit_read_access() -> None:
    hub = acl_hub("topic read #\n")
    anon = hub.connected("anon")
    anon.subscribe(("$SYS/#", 0))
    hub.broker.publish("$SYS/broker/uptime", b"1 seconds")  # as $SYS publishing does
    hub.broker.flush()
    assert anon.publishes() == []  # '#' does not match $SYS topics
    hub = acl_hub("topic read $SYS/#\n")
    anon = hub.connected("anon")
    anon.subscribe(("$SYS/#", 0))
    hub.broker.publish("$SYS/broker/uptime", b"1 seconds")
    hub.broker.flush()
    assert [p.topic for p in anon.publishes()] == ["$SYS/broker/uptime"]


def test_denied_will_is_not_sent_but_the_client_connects() -> None:
    hub = acl_hub()
    watch = hub.connected("watch", username="writer")
    watch.subscribe(("#", 0))
    watch2 = hub.connected("watch2")
    watch2.subscribe(("#", 0))
    denied = hub.connected("denied", level=5, will=Will("pub/will", b"w1"))
    allowed = hub.connected("allowed", level=5, will=Will("both/will", b"w2"))
    denied.drop()
    allowed.drop()
    assert [p.payload for p in watch2.publishes()] == [b"w2"]
    assert not any("Denied PUBLISH" in line for line in hub.lines)  # mosquitto logs nothing


def test_delayed_will_is_checked_when_it_is_sent() -> None:
    hub = acl_hub()
    watch = hub.connected("watch")
    watch.subscribe(("both/#", 0))
    c = hub.connected(
        "c", level=5, will=Will("both/w", b"late", properties={0x18: 5}), properties={0x11: 60}
    )
    c.drop()
    hub.broker.set_authorizer(AclFileAuthorizer(AclFile.parse("topic read both/#\n")))
    hub.advance(6)
    assert watch.publishes() == []  # write access was withdrawn before the delay ran out


@pytest.mark.parametrize("level", [4, 5])
def test_clients_never_publish_to_sys_even_without_an_authorizer(level: int) -> None:
    hub = Hub()
    reader = hub.connected("reader")
    reader.subscribe(("$SYS/#", 0), ("$share/#", 0))
    pub = hub.connected("pub", level=level)
    (ack,) = pub.publish("$SYS/broker/fake", b"x", qos=1, packet_id=3)
    assert ack.reason_code == (0x87 if level == MQTT_5 else 0)
    (ack,) = pub.publish("$share/g/x", b"x", qos=1, packet_id=4)
    assert ack.reason_code == (0x87 if level == MQTT_5 else 0)
    # mosquitto lets bridges report their state, and other $ topics through.
    (ack,) = pub.publish("$SYS/broker/connection/pub/state", b"1", qos=1, packet_id=5)
    assert ack.reason_code == 0
    (ack,) = pub.publish("$other/x", b"y", qos=1, packet_id=6)
    assert ack.reason_code == (0x10 if level == MQTT_5 else 0)  # accepted; nobody subscribed
    assert [p.topic for p in reader.publishes()] == ["$SYS/broker/connection/pub/state"]


def test_will_to_sys_is_not_sent() -> None:
    hub = Hub()
    reader = hub.connected("reader")
    reader.subscribe(("$SYS/#", 0))
    c = hub.connected("c", will=Will("$SYS/broker/fake", b"x"))
    c.drop()
    assert reader.publishes() == []


@pytest.mark.parametrize(("level", "code"), [(5, 0x87), (4, 0x80), (3, 1)])
def test_subscribe_refused_by_an_authorizer(level: int, code: int) -> None:
    """mosquitto's codes: 0x87 in 5.0, 0x80 in 3.1.1; 3.1 has no failure code, so it gets the
    QoS it asked for -- and no subscription."""
    hub = Hub()
    recorder = Recorder({("ok/#", SUBSCRIBE), ("ok/x", READ), ("no/x", WRITE), ("ok/x", WRITE)})
    hub.broker.set_authorizer(recorder)
    sub = hub.connected("sub", level=level, username="u")
    ack = sub.subscribe(("no/#", 1), ("ok/#", 1))
    assert ack.reason_codes == [code, 1]
    assert ("sub", "u", "no/#", SUBSCRIBE) in recorder.asked
    assert "sub 1 ok/#" in hub.lines and "sub 1 no/#" not in hub.lines
    pub = hub.connected("pub")
    pub.publish("no/x", b"m")
    pub.publish("ok/x", b"m")
    assert [p.topic for p in sub.publishes()] == ["ok/x"]


def test_answers_are_cached_per_client_and_topic_until_the_rules_change() -> None:
    hub = Hub()
    recorder = Recorder({("t", SUBSCRIBE), ("t", READ), ("t", WRITE)})
    hub.broker.set_authorizer(recorder)
    sub = hub.connected("sub")
    sub.subscribe(("t", 0))
    pub = hub.connected("pub")
    for _ in range(5):
        pub.publish("t", b"m")
    assert len(sub.publishes()) == 5
    assert recorder.asked.count(("sub", None, "t", READ)) == 1
    assert recorder.asked.count(("pub", None, "t", WRITE)) == 1
    recorder.allowed = {("t", SUBSCRIBE), ("t", WRITE)}
    hub.broker.set_authorizer(recorder)
    pub.publish("t", b"m")
    assert sub.publishes() == []


def test_reconnecting_with_another_user_name_drops_cached_answers() -> None:
    hub = acl_hub("user alice\ntopic write a/#\nuser bob\ntopic write b/#\n")
    watch = hub.connected("watch")
    c = hub.connected("c", clean=False, username="alice")
    (ack,) = c.publish("a/1", b"m", qos=1)
    assert ack.reason_code == 0
    c.drop()
    c = hub.client("c", level=5)
    c.connect(clean=False, username="bob")
    (ack,) = c.publish("a/1", b"m", qos=1)
    assert ack.reason_code == 0x87
    del watch


def test_shared_subscription_member_without_read_access_does_not_get_its_turn() -> None:
    """mosquitto picks the member first, then checks it: a message picked for a member that
    may not read it is dropped, not handed to the next one."""
    hub = acl_hub("user a\ntopic read sh/#\nuser b\ntopic read other/#\nuser p\ntopic write #\n")
    a = hub.connected("a", level=5, username="a")
    b = hub.connected("b", level=5, username="b")
    a.subscribe(("$share/g/sh/#", 0))
    b.subscribe(("$share/g/sh/#", 0))
    pub = hub.connected("p", username="p")
    for i in range(4):
        pub.publish("sh/t", str(i).encode())
    assert [p.payload for p in a.publishes()] == [b"0", b"2"]
    assert b.publishes() == []


def test_no_authorizer_no_checks() -> None:
    hub = Hub()
    sub = hub.connected("sub")
    sub.subscribe(("#", 0))
    hub.connected("pub").publish("any/topic", b"m")
    assert [p.topic for p in sub.publishes()] == ["any/topic"]
    assert hub.broker.sessions["sub"].readable is None


def test_cached_readable_subscribers_follow_user_names_and_subscriptions() -> None:
    hub = acl_hub("user alice\ntopic read a/#\nuser w\ntopic write #\n")
    w = hub.connected("w", username="w")
    c = hub.connected("c", clean=False, username="alice")
    c.subscribe(("a/#", 0))
    w.publish("a/1", b"1")
    assert [p.payload for p in c.publishes()] == [b"1"]
    c.drop()
    c = hub.client("c")
    c.connect(clean=False, username="bob")  # same session, same subscription, no read access
    w.publish("a/1", b"2")
    assert c.publishes() == []
    other = hub.connected("other", username="alice")
    other.subscribe(("a/#", 0))  # a new subscriber gets its own answer
    w.publish("a/1", b"3")
    assert [p.payload for p in other.publishes()] == [b"3"]
    assert c.publishes() == []


def test_suback_never_says_unsupported_for_what_connack_announces() -> None:
    """0x9E (shared subscriptions), 0xA1 (subscription identifiers) and 0xA2 (wildcards) do
    not apply: CONNACK announces all three available, and such a SUBSCRIBE is granted."""
    hub = Hub()
    c = hub.client("c", level=5)
    ack = c.connect()
    assert isinstance(ack, Connack)
    assert ack.properties[0x29] == 1 and ack.properties[0x2A] == 1
    assert 0x28 not in ack.properties  # Wildcard Subscription Available: absent means 1
    c.send(
        Subscribe(
            1,
            [("$share/g/a/+/#", SubscriptionOptions(qos=1)), ("b/#", SubscriptionOptions(qos=2))],
            {0x0B: [7]},
        )
    )
    (suback,) = c.received()
    assert isinstance(suback, Suback) and suback.reason_codes == [1, 2]


def test_offline_session_queues_only_what_it_may_read() -> None:
    hub = acl_hub("user r\ntopic read ok/#\nuser w\ntopic write #\n")
    sub = hub.connected("sub", clean=False, username="r")
    sub.subscribe(("#", 1))
    sub.drop()
    w = hub.connected("w", username="w")
    w.publish("ok/1", b"a", qos=1, packet_id=1)
    w.publish("no/1", b"b", qos=1, packet_id=2)
    assert [item.message.topic for item in hub.broker.sessions["sub"].queue or ()] == ["ok/1"]
    back = hub.client("sub")
    back.connect(clean=False, username="r")
    assert [p.topic for p in back.pending if isinstance(p, Publish)] == ["ok/1"]


class _NamingMethod:
    """An enhanced authentication method that says who the client is: the data it sends."""

    name = "X-NAME"

    def start(self, client_id: str, username: str | None, reauthenticating: bool) -> _Naming:
        return _Naming()


class _Naming:
    def step(self, data: bytes | None) -> Success:
        return Success(None, username=(data or b"").decode())


def test_the_user_an_authentication_method_names_is_the_one_authorized() -> None:
    hub = acl_hub("user alice\ntopic write a/#\nuser bob\ntopic write b/#\n")
    hub.broker.add_auth_method(_NamingMethod())
    c = hub.client("c", level=5)
    ack = c.connect(properties={0x15: "X-NAME", 0x16: b"alice"})  # CONNECT has no user name
    assert isinstance(ack, Connack) and ack.reason_code == 0
    (puback,) = c.publish("a/1", b"m", qos=1)
    assert puback.reason_code == 0x10  # accepted (no subscriber), not 0x87
    # Re-authentication as another user: the answers cached for alice are dropped.
    c.send(Auth(0x19, {0x15: "X-NAME", 0x16: b"bob"}))
    assert [p.reason_code for p in c.received()] == [0]  # type: ignore[attr-defined]
    (puback,) = c.publish("a/1", b"m", qos=1, packet_id=2)
    assert puback.reason_code == 0x87
    (puback,) = c.publish("b/1", b"m", qos=1, packet_id=3)
    assert puback.reason_code == 0x10
