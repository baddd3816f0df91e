"""message_size_limit, backpressure (paused transports), flush batching and wakeups."""

from __future__ import annotations

from m2mhub.hub.broker import OUT_HIGH_WATER, PROP_RECEIVE_MAXIMUM
from m2mhub.mqtt.packets import Puback, Publish
from tests.hub.harness import Hub


def test_oversize_publish_dropped_and_acked_like_mosquitto() -> None:
    hub = Hub(message_size_limit=10)
    sub = hub.connected("sub")
    sub.subscribe(("t", 1))
    big = hub.connected("big", level=5)
    # mosquitto 2.0.11 answers reason 0x95 (which MQTT 5 does not list for PUBACK/PUBREC, so
    # compare bytes rather than decode).
    start = len(big.sink.data)
    big.send(Publish("t", b"x" * 20, 1, packet_id=1))
    big.send(Publish("t", b"x" * 20, 2, packet_id=2))
    assert bytes(big.sink.data[start:]) == b"\x40\x03\x00\x01\x95" + b"\x50\x03\x00\x02\x95"
    big._read = len(big.sink.data)
    assert not big.closed
    assert sub.publishes() == []
    assert any(line.startswith("Dropped too large PUBLISH from big") for line in hub.lines)
    big.publish("t", b"small", qos=0)
    assert [p.payload for p in sub.publishes()] == [b"small"]


def test_paused_client_queues_bounded_and_catches_up() -> None:
    hub = Hub(max_queued_messages=3)
    slow = hub.connected("slow")
    slow.subscribe(("t", 1))
    fast = hub.connected("fast")
    fast.subscribe(("t", 1))
    pub = hub.connected("pub")
    hub.broker.pause_writing(slow.conn)
    pub.publish("t", b"zero", qos=0)
    for i in range(4):
        pub.publish_complete("t", b"%d" % i, 1, packet_id=i + 1)
    assert [p.payload for p in fast.publishes()] == [b"zero", b"0", b"1", b"2", b"3"]
    assert slow.publishes() == []
    assert hub.broker.stats.publish_dropped == 2  # the two oldest of the slow client's queue
    hub.broker.resume_writing(slow.conn, hub.now)
    hub.broker.flush()
    assert [p.payload for p in slow.publishes()] == [b"1", b"2", b"3"]


def test_output_is_written_once_per_flush() -> None:
    hub = Hub()
    sub = hub.connected("sub")
    sub.subscribe(("t", 0))
    pub = hub.connected("pub")
    writes = sub.sink.writes
    wakeups = hub.wakeups
    from m2mhub.mqtt.codec import encode

    burst = b"".join(encode(Publish("t", b"%d" % i), 4) for i in range(50))
    hub.broker.data_received(pub.conn, burst, hub.now)
    assert hub.wakeups == wakeups + 1  # asked for one flush, not fifty
    hub.broker.flush()
    assert sub.sink.writes == writes + 1
    assert len(sub.publishes()) == 50


def test_fan_out_shares_one_encoding_per_variant() -> None:
    hub = Hub()
    subs = [hub.connected(f"s{i}", level=4 if i % 2 else 5) for i in range(6)]
    for s in subs:
        s.subscribe(("t", 1))
    pub = hub.connected("pub")
    pub.publish_complete("t", b"same", 1)
    for s in subs:
        (msg,) = s.publishes()
        assert msg.payload == b"same" and msg.qos == 1


def _backlogged(hub: Hub):  # type: ignore[no-untyped-def]
    """A subscriber with a window of 2 and a publisher that sent 8 QoS 1 messages at once."""
    from m2mhub.mqtt.codec import encode

    sub = hub.connected("sub")
    sub.subscribe(("t", 1))
    pub = hub.connected("pub")
    pub.send_bytes(
        b"".join(encode(Publish("t", b"%d" % i, 1, packet_id=i + 1), 4) for i in range(8))
    )
    return sub, pub


def test_publisher_held_back_while_receiver_window_backlog_grows() -> None:
    hub = Hub(max_inflight_messages=2, max_queued_messages=4)
    sub, pub = _backlogged(hub)
    assert not pub.sink.reading  # 3 queued > window of 2: stop reading the publisher
    assert len([p for p in pub.received() if isinstance(p, Puback)]) < 8
    got: list[bytes] = []
    while len(got) < 8:
        batch = sub.publishes()
        assert batch
        got += [p.payload for p in batch]
        for p in batch:
            sub.send(Puback(p.packet_id or 0))
    assert got == [b"%d" % i for i in range(8)]
    assert pub.sink.reading
    assert hub.broker.stats.publish_dropped == 0


def test_receiver_that_never_acks_holds_publishers_only_briefly() -> None:
    hub = Hub(max_inflight_messages=2)
    _sub, pub = _backlogged(hub)
    assert not pub.sink.reading
    hub.advance(1.0)
    assert pub.sink.reading
    assert hub.broker.sessions["sub"].slow
    pub.publish_complete("t", b"more", 1, packet_id=20)
    assert pub.sink.reading  # a slow receiver no longer holds anyone back
    assert hub.broker.stats.publish_received == 9  # the held-back rest was handled too


def test_receiver_leaving_releases_publishers() -> None:
    hub = Hub(max_inflight_messages=2)
    sub, pub = _backlogged(hub)
    sub.drop()
    assert pub.sink.reading


def test_large_turn_output_waits_in_queue_then_follows() -> None:
    hub = Hub(max_queued_messages=0)
    sub = hub.connected("sub")
    sub.subscribe(("t", 0))
    pub = hub.connected("pub")
    from m2mhub.mqtt.codec import encode

    payload = b"x" * 10_000
    count = OUT_HIGH_WATER // 10_000 * 2  # twice the per-turn cap
    burst = b"".join(encode(Publish("t", payload), 4) for _ in range(count))
    hub.broker.data_received(pub.conn, burst, hub.now)
    assert len(sub.conn.out) < OUT_HIGH_WATER + 20_000  # capped per turn
    for _ in range(5):
        hub.broker.flush()
    assert len(sub.publishes()) == count


def test_paused_client_with_full_queue_refuses_new_qos0() -> None:
    hub = Hub(max_queued_messages=2)
    slow = hub.connected("slow")
    slow.subscribe(("t", 0))
    pub = hub.connected("pub")
    hub.broker.pause_writing(slow.conn)
    for i in range(5):
        pub.publish("t", b"%d" % i)
    assert hub.broker.stats.publish_dropped == 3
    hub.broker.resume_writing(slow.conn, hub.now)
    hub.broker.flush()
    assert [p.payload for p in slow.publishes()] == [b"0", b"1"]  # the oldest are kept


def test_v5_client_maximum_packet_size_is_respected() -> None:
    hub = Hub()
    small = hub.connected("small", level=5, properties={0x27: 40})
    small.subscribe(("t", 1))
    pub = hub.connected("pub")
    pub.publish_complete("t", b"x" * 100, 1)
    pub.publish_complete("t", b"fits", 1, packet_id=8)
    pub.publish("t", b"y" * 100, 0)
    assert [p.payload for p in small.publishes()] == [b"fits"]
    # As mosquitto 2.0.11: a notice per dropped PUBLISH, not counted as a dropped message.
    assert [line for line in hub.lines if line.startswith("Dropping too large")] == [
        "Dropping too large outgoing PUBLISH for small (106 bytes)",  # QoS 1: + packet id
        "Dropping too large outgoing PUBLISH for small (104 bytes)",
    ]
    assert hub.broker.stats.publish_dropped == 0
    session = small.conn.session
    assert session is not None and len(session.inflight) == 1  # only "fits" awaits its PUBACK


def test_two_clients_publishing_to_each_other_do_not_hold_each_other_up() -> None:
    from m2mhub.mqtt.codec import encode

    hub = Hub(max_inflight_messages=1, max_queued_messages=0)
    a = hub.connected("a")
    b = hub.connected("b")
    a.subscribe(("to/a", 1))
    b.subscribe(("to/b", 1))
    a.send_bytes(
        b"".join(encode(Publish("to/b", b"%d" % i, 1, packet_id=i + 1), 4) for i in range(5))
    )
    b.send_bytes(
        b"".join(encode(Publish("to/a", b"%d" % i, 1, packet_id=i + 1), 4) for i in range(5))
    )
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    for _ in range(20):  # no time passes: nobody may wait for the 1 s release
        for name, c in (("a", a), ("b", b)):
            for p in c.received():
                if isinstance(p, Publish):
                    got[name].append(p.payload)
                    c.send(Puback(p.packet_id or 0))
    assert got == {"a": [b"%d" % i for i in range(5)], "b": [b"%d" % i for i in range(5)]}
    assert a.sink.reading and b.sink.reading


def _payloads(packets: list[Publish]) -> list[bytes]:
    return [p.payload for p in packets]


def test_max_inflight_bytes_holds_back_qos1_by_payload_bytes() -> None:
    # man mosquitto.conf: another message goes while the bytes in flight are under the limit.
    hub = Hub(max_inflight_bytes=100)
    sub = hub.connected("sub")
    sub.subscribe(("t", 1))
    pub = hub.connected("pub")
    msgs = [bytes([65 + i]) * 40 for i in range(6)]
    for i, payload in enumerate(msgs):
        pub.publish_complete("t", payload, 1, packet_id=i + 1)
    first = sub.publishes()
    assert _payloads(first) == msgs[:3]  # 0, 40, 80 < 100; then 120 in flight
    pub.publish("t", b"qos0", qos=0)
    assert _payloads(sub.publishes()) == [b"qos0"]  # QoS 0 is not held back
    sub.send(Puback(first[0].packet_id))  # 80 in flight: one more
    assert _payloads(sub.publishes()) == msgs[3:4]
    session = hub.broker.sessions["sub"]
    assert session.queue is not None and len(session.queue) == 2


def test_max_inflight_bytes_lets_one_large_message_through_alone() -> None:
    hub = Hub(max_inflight_bytes=100)
    pub = hub.connected("pub")
    pub.publish_complete("r/1", b"x" * 150, 1, retain=True, packet_id=1)
    pub.publish_complete("r/2", b"y" * 10, 1, retain=True, packet_id=2)
    sub = hub.connected("sub", level=5)
    sub.subscribe(("r/#", 1))  # retained messages go through the same window
    got = [p for p in sub.pending if isinstance(p, Publish)]
    assert _payloads(got) == [b"x" * 150]
    sub.send(Puback(got[0].packet_id))
    assert _payloads(sub.publishes()) == [b"y" * 10]


def test_max_inflight_bytes_and_receive_maximum_both_apply() -> None:
    hub = Hub(max_inflight_bytes=1000)
    sub = hub.connected("sub", level=5, properties={PROP_RECEIVE_MAXIMUM: 2})
    sub.subscribe(("t", 1))
    pub = hub.connected("pub")
    for i in range(4):
        pub.publish_complete("t", b"%d" % i, 1, packet_id=i + 1)
    assert _payloads(sub.publishes()) == [b"0", b"1"]


def test_no_byte_limit_by_default() -> None:
    hub = Hub(max_inflight_messages=0)
    sub = hub.connected("sub")
    sub.subscribe(("t", 1))
    pub = hub.connected("pub")
    for i in range(30):
        pub.publish_complete("t", b"z" * 1000, 1, packet_id=i + 1)
    assert len(sub.publishes()) == 30
