"""mosquitto_pub/mosquitto_sub against each broker: the expectations hold for mosquitto itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop import raw
from tests.interop.cli import (
    Msg,
    interrupt,
    kill9,
    parse,
    pub,
    start_sub,
    subscribe_and_leave,
    until_sentinel,
)
from tests.interop.conftest import Broker, start_broker
from tests.support import Proc

pytestmark = pytest.mark.interop


def stop(proc: Proc) -> None:
    interrupt(proc)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_delivery_at_each_qos(broker: Broker, qos: int) -> None:
    sub = start_sub(broker.port, "-t", "lab/qos", "-q", "2")
    try:
        pub(broker.port, "-t", "lab/qos", "-m", f"hello q{qos}", "-q", str(qos))
        sub.wait_for_line(f"|hello q{qos}")
        assert parse(sub.output().splitlines()) == [Msg(False, qos, "lab/qos", f"hello q{qos}")]
    finally:
        stop(sub)


def test_delivered_at_min_of_publish_and_subscription_qos(broker: Broker) -> None:
    sub = start_sub(broker.port, "-t", "lab/min", "-q", "1")
    try:
        pub(broker.port, "-t", "lab/min", "-m", "two", "-q", "2")
        pub(broker.port, "-t", "lab/min", "-m", "zero", "-q", "0")
        sub.wait_for_line("|zero")
        assert parse(sub.output().splitlines()) == [
            Msg(False, 1, "lab/min", "two"),
            Msg(False, 0, "lab/min", "zero"),
        ]
    finally:
        stop(sub)


def test_persistent_session_gets_queued_messages(broker: Broker) -> None:
    args = ("-i", "persist1", "-c", "-t", "lab/persist", "-q", "2")
    subscribe_and_leave(broker.port, *args)
    for n, qos in enumerate([1, 2, 0, 1]):
        pub(broker.port, "-t", "lab/persist", "-m", f"queued {n}", "-q", str(qos))
    sub = start_sub(broker.port, *args)
    try:
        got = until_sentinel(broker.port, sub, "lab/persist")
        # QoS 0 is not queued for an offline client (queue_qos0_messages false). The client
        # prints a QoS 2 message only when its PUBREL arrives, so compare without order.
        assert sorted(got, key=lambda m: m.payload) == [
            Msg(False, 1, "lab/persist", "queued 0"),
            Msg(False, 2, "lab/persist", "queued 1"),
            Msg(False, 1, "lab/persist", "queued 3"),
        ]
    finally:
        stop(sub)


def test_clean_session_gets_nothing_queued(broker: Broker) -> None:
    args = ("-i", "clean1", "-t", "lab/clean", "-q", "2")
    subscribe_and_leave(broker.port, *args)
    pub(broker.port, "-t", "lab/clean", "-m", "lost", "-q", "2")
    sub = start_sub(broker.port, *args)
    try:
        assert until_sentinel(broker.port, sub, "lab/clean") == []
    finally:
        stop(sub)


def test_clean_connect_discards_a_persistent_session(broker: Broker) -> None:
    subscribe_and_leave(broker.port, "-i", "persist2", "-c", "-t", "lab/discard", "-q", "1")
    pub(broker.port, "-t", "lab/discard", "-m", "queued", "-q", "1")
    # Same id with clean session: the stored session and its queue are thrown away.
    subscribe_and_leave(broker.port, "-i", "persist2", "-t", "lab/other", "-q", "1")
    sub = start_sub(broker.port, "-i", "persist2", "-c", "-t", "lab/discard", "-q", "1")
    try:
        assert until_sentinel(broker.port, sub, "lab/discard") == []
    finally:
        stop(sub)


def test_retained_set_replace_clear(broker: Broker) -> None:
    def retained_now() -> list[Msg]:
        sub = start_sub(broker.port, "-t", "lab/ret", "-q", "1")
        try:
            return until_sentinel(broker.port, sub, "lab/ret")
        finally:
            stop(sub)

    pub(broker.port, "-t", "lab/ret", "-m", "first", "-q", "1", "-r")
    assert retained_now() == [Msg(True, 1, "lab/ret", "first")]
    pub(broker.port, "-t", "lab/ret", "-m", "second", "-q", "0", "-r")
    assert retained_now() == [Msg(True, 0, "lab/ret", "second")]
    pub(broker.port, "-t", "lab/ret", "-n", "-r")
    assert retained_now() == []


def test_retained_flag_clear_for_live_delivery(broker: Broker) -> None:
    sub = start_sub(broker.port, "-t", "lab/live", "-q", "1")
    try:
        pub(broker.port, "-t", "lab/live", "-m", "live", "-q", "1", "-r")
        sub.wait_for_line("|live")
        assert parse(sub.output().splitlines()) == [Msg(False, 1, "lab/live", "live")]
    finally:
        stop(sub)


def test_retained_matched_by_wildcard_subscription(broker: Broker) -> None:
    pub(broker.port, "-t", "lab/w/a", "-m", "A", "-r")
    pub(broker.port, "-t", "lab/w/b/c", "-m", "C", "-r")
    pub(broker.port, "-t", "lab/x", "-m", "X", "-r")
    sub = start_sub(broker.port, "-t", "lab/w/#", "-q", "1")
    try:
        got = until_sentinel(broker.port, sub, "lab/w/s")
        assert sorted(got, key=lambda m: m.topic) == [
            Msg(True, 0, "lab/w/a", "A"),
            Msg(True, 0, "lab/w/b/c", "C"),
        ]
    finally:
        stop(sub)


WILL = ("--will-topic", "lab/will", "--will-payload", "client died", "--will-qos", "1")


def test_will_sent_when_client_is_killed(broker: Broker) -> None:
    watcher = start_sub(broker.port, "-t", "lab/will", "-q", "2")
    try:
        victim = start_sub(broker.port, "-i", "victim", "-t", "lab/nothing", *WILL)
        mark = broker.mark()
        kill9(victim)
        watcher.wait_for_line("|client died")
        assert parse(watcher.output().splitlines()) == [Msg(False, 1, "lab/will", "client died")]
        broker.wait_log("victim", start=mark)
    finally:
        stop(watcher)


def test_will_not_sent_after_disconnect(broker: Broker) -> None:
    watcher = start_sub(broker.port, "-t", "lab/will", "-q", "2")
    try:
        subscribe_and_leave(broker.port, "-i", "polite", "-t", "lab/nothing", *WILL)
        assert until_sentinel(broker.port, watcher, "lab/will") == []
    finally:
        stop(watcher)


def test_retained_will_with_its_qos(broker: Broker) -> None:
    watcher = start_sub(broker.port, "-t", "lab/will", "-q", "2")
    try:
        victim = start_sub(
            broker.port, "-i", "victim2", "-t", "lab/nothing", *WILL[:-1], "2", "--will-retain"
        )
        kill9(victim)
        watcher.wait_for_line("|client died")
    finally:
        stop(watcher)
    late = start_sub(broker.port, "-t", "lab/will", "-q", "2")
    try:
        got = until_sentinel(broker.port, late, "lab/will")
        assert got == [Msg(True, 2, "lab/will", "client died")]
    finally:
        stop(late)


def test_will_sent_when_raw_socket_closes_without_disconnect(broker: Broker) -> None:
    watcher = start_sub(broker.port, "-t", "lab/rawwill", "-q", "1")
    try:
        with raw.RawClient(broker.port) as c:
            connack = c.connect("rawwill", will=("lab/rawwill", b"socket gone", 1, False))
            assert connack.body == b"\x00\x00"
        watcher.wait_for_line("|socket gone")
        assert parse(watcher.output().splitlines()) == [Msg(False, 1, "lab/rawwill", "socket gone")]
    finally:
        stop(watcher)


def test_overlapping_subscriptions_one_copy_at_highest_qos(broker: Broker) -> None:
    with raw.RawClient(broker.port) as c:
        c.connect("overlap")
        suback = c.subscribe([("lab/o/#", 1), ("lab/o/+", 2), ("lab/o/x", 0)])
        assert suback.body == b"\x00\x01\x01\x02\x00"
        pub(broker.port, "-t", "lab/o/x", "-m", "once", "-q", "2")
        pub(broker.port, "-t", "lab/o/x", "-m", "end", "-q", "0")
        got = [(p.qos, p.publish_fields()[2]) for p in c.collect_until(b"end")]
        assert [payload for _, payload in got] == [b"once", b"end"]
        if broker.kind == "m2mhub":
            # MQTT-3.3.5-1 and issue 2: the highest QoS of all matching subscriptions.
            assert got[0][0] == 2
        else:
            # mosquitto 2.0.11 sends one copy too, but at the QoS of the exact-match subscription.
            assert got[0][0] == 0


def test_unsubscribe(broker: Broker) -> None:
    with raw.RawClient(broker.port) as c:
        c.connect("unsub")
        c.subscribe([("lab/u/a", 1), ("lab/u/b", 1)])
        c.send(raw.unsubscribe(2, ["lab/u/a"]))
        assert c.expect(raw.UNSUBACK).body == b"\x00\x02"
        pub(broker.port, "-t", "lab/u/a", "-m", "gone", "-q", "1")
        pub(broker.port, "-t", "lab/u/b", "-m", "kept", "-q", "1")
        pkt = c.expect(raw.PUBLISH)
        assert pkt.publish_fields()[0::2] == ("lab/u/b", b"kept")


def test_mosquitto_sub_unsubscribe_flag_clears_persistent_subscription(broker: Broker) -> None:
    args = ("-i", "unsub2", "-c", "-q", "1")
    subscribe_and_leave(broker.port, *args, "-t", "lab/u2/a", "-t", "lab/u2/b")
    # -U unsubscribes from the stored session; the client then subscribes to nothing else.
    subscribe_and_leave(broker.port, *args, "-t", "lab/u2/b", "-U", "lab/u2/a")
    pub(broker.port, "-t", "lab/u2/a", "-m", "dropped", "-q", "1")
    pub(broker.port, "-t", "lab/u2/b", "-m", "queued", "-q", "1")
    sub = start_sub(broker.port, *args, "-t", "lab/u2/b")
    try:
        assert until_sentinel(broker.port, sub, "lab/u2/b") == [Msg(False, 1, "lab/u2/b", "queued")]
    finally:
        stop(sub)


@pytest.mark.parametrize(
    ("filters", "topic", "matches"),
    [
        (["lab/+/t"], "lab/a/t", True),
        (["lab/+/t"], "lab/a/b/t", False),
        (["lab/+"], "lab/", True),
        (["lab/#"], "lab", True),
        (["lab/#"], "lab/a/b", True),
        (["+/+"], "/x", True),
        (["+"], "/x", False),
        (["lab/t"], "lab/T", False),
        # Leading wildcards never match $-topics (clients may not publish to $SYS itself).
        (["#"], "$lab/anything", False),
        (["+/anything"], "$lab/anything", False),
        (["$lab/#"], "$lab/anything", True),
        (["$lab/+"], "$lab/x", True),
    ],
)
def test_topic_matching_rules(
    broker: Broker, filters: list[str], topic: str, matches: bool
) -> None:
    with raw.RawClient(broker.port) as c:
        c.connect("matcher")
        c.subscribe([(f, 0) for f in [*filters, "sentinel/t"]])
        pub(broker.port, "-t", topic, "-m", "probe")
        pub(broker.port, "-t", "sentinel/t", "-m", "end")
        got = []
        while True:
            t, _, payload = c.expect(raw.PUBLISH).publish_fields()
            if payload == b"end":
                break
            if payload == b"probe":
                got.append(t)
        assert got == ([topic] if matches else [])


SYS_TOPICS = [
    "$SYS/broker/version",
    "$SYS/broker/uptime",
    "$SYS/broker/clients/connected",
    "$SYS/broker/messages/received",
    "$SYS/broker/bytes/received",
    "$SYS/broker/load/messages/received/1min",
]


def test_sys_topics_published_every_interval(broker: Broker) -> None:
    sub = start_sub(broker.port, "-t", "$SYS/#", "-q", "0")
    try:
        for topic in SYS_TOPICS:
            sub.wait_for_line(f"|{topic}|", timeout=10)
        # uptime keeps ticking with sys_interval 1: a second, different value arrives.
        first = sub.wait_for_line("|$SYS/broker/uptime|")
        start = len(sub.lines)
        second = sub.wait_for_line("|$SYS/broker/uptime|", start=start, timeout=10)
        assert first != second
        assert first.split("|")[4].endswith(" seconds")
        version = parse([sub.wait_for_line("|$SYS/broker/version|")])[0]
        assert version.retain and version.payload.split()[0] in ("mosquitto", "m2mhub")
        # The value retained at start-up may be 0; the one after a tick counts this client.
        connected = parse([sub.wait_for_line("|$SYS/broker/clients/connected|", start=start)])[0]
        assert int(connected.payload) >= 1
    finally:
        stop(sub)


# mosquitto's -v lines number the protocols its own way: p1 = 3.1, p2 = 3.1.1, p5 = 5.0.
LOG_PROTOCOL = {"31": "p1", "311": "p2", "5": "p5"}


@pytest.mark.parametrize("version", ["31", "311", "5"])
def test_protocol_versions(broker: Broker, version: str) -> None:
    sub = start_sub(broker.port, "-V", version, "-i", f"v{version}", "-t", "lab/v", "-q", "2")
    try:
        pub(broker.port, "-V", version, "-t", "lab/v", "-m", f"over {version}", "-q", "2")
        sub.wait_for_line(f"|over {version}")
        assert parse(sub.output().splitlines()) == [Msg(False, 2, "lab/v", f"over {version}")]
        broker.wait_log(f"as v{version} ({LOG_PROTOCOL[version]}, c1, k60)")
    finally:
        stop(sub)


def sys_snapshot(port: int) -> dict[str, str]:
    """Every $SYS topic and its latest value, after two more ticks of sys_interval 1."""
    sub = start_sub(port, "-t", "$SYS/#")
    try:
        start = 0
        for _ in range(3):
            sub.wait_for_line("|$SYS/broker/uptime|", start=start)
            start = len(sub.output().splitlines())
    finally:
        stop(sub)
    return {m.topic: m.payload for m in parse(sub.output().splitlines())}


def test_sys_topics_same_as_mosquitto(tmp_path: Path) -> None:
    snapshots = {}
    for kind in ("mosquitto", "m2mhub"):
        with start_broker(kind, tmp_path, ["sys_interval 1"]) as broker:
            snapshots[kind] = sys_snapshot(broker.port)
    wanted = set(snapshots["mosquitto"])
    assert len(wanted) > 40
    assert wanted <= set(snapshots["m2mhub"]), sorted(wanted - set(snapshots["m2mhub"]))
    for topic in ("clients/connected", "clients/total", "clients/maximum", "subscriptions/count"):
        assert snapshots["m2mhub"][f"$SYS/broker/{topic}"] == "1", topic
        assert snapshots["mosquitto"][f"$SYS/broker/{topic}"] == "1", topic
