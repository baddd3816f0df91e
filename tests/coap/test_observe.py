"""Observe (RFC 7641) server side and the CON retransmission schedule, with a fake clock."""

from __future__ import annotations

import itertools
import random
from typing import Any

from m2mhub.coap import options as o
from m2mhub.coap.endpoint import Endpoint
from m2mhub.coap.message import ACK, CON, NON, Message, encode
from m2mhub.coap.options import Code

from .helpers import CLIENT, OTHER, FakeClock, make_endpoint, make_site, take

ALARM = ["alarm"]


def register(ep: Endpoint, peer: object = CLIENT, token: bytes = b"ob", mid: int = 1) -> Message:
    ep.datagram_received(
        encode(Message(CON, Code.GET, mid, token, uri_path=ALARM, observe=0)), peer
    )
    [(msg, _)] = take(ep)
    return msg


def put(ep: Endpoint, value: bytes, mid: int) -> list[Message]:
    ep.datagram_received(
        encode(Message(CON, Code.PUT, mid, b"p", uri_path=ALARM, payload=value)), OTHER
    )
    return [m for m, _ in take(ep)]


def test_register_notify_and_deregister_with_observe_1() -> None:
    ep, _, res = make_endpoint()
    alarm = res["alarm"]
    first = register(ep)
    assert first.code == Code.CONTENT and first.observe == 0 and first.payload == b"OFF"
    assert alarm.observer_count() == 1 and alarm.changes == [((), 1)]
    out = put(ep, b"ON", 100)
    notes = [m for m in out if m.token == b"ob"]
    assert len(notes) == 1
    n = notes[0]
    assert (n.mtype, n.code, n.payload, n.observe) == (NON, Code.CONTENT, b"ON", 1)
    assert [m.code for m in out if m.token == b"p"] == [Code.CHANGED]
    put(ep, b"OFF", 101)
    ep.datagram_received(
        encode(Message(CON, Code.GET, 2, b"ob", uri_path=ALARM, observe=1)), CLIENT
    )
    [(resp, _)] = take(ep)
    assert resp.code == Code.CONTENT and resp.observe is None
    assert alarm.observer_count() == 0 and alarm.changes[-1] == ((), 0)
    assert [m for m in put(ep, b"X", 102) if m.token == b"ob"] == []


def test_sequence_numbers_increase_and_every_20th_is_con() -> None:
    ep, _, _res = make_endpoint()
    register(ep)
    types = []
    seqs = []
    for i in range(40):
        for m in put(ep, str(i).encode(), 200 + i):
            if m.token == b"ob":
                types.append(m.mtype)
                seqs.append(m.observe)
                if m.mtype == CON:
                    ep.datagram_received(encode(Message(ACK, 0, m.mid)), CLIENT)
    assert seqs == list(range(1, 41))
    assert [i for i, t in enumerate(types) if t == CON] == [19, 39]


def test_con_after_interval_even_without_many_notifications() -> None:
    ep, clock, _ = make_endpoint()
    register(ep)
    [n1] = [m for m in put(ep, b"a", 10) if m.token == b"ob"]
    clock.now += 61
    [n2] = [m for m in put(ep, b"b", 11) if m.token == b"ob"]
    assert (n1.mtype, n2.mtype) == (NON, CON)


def test_rst_to_a_non_notification_removes_the_observer() -> None:
    ep, _, res = make_endpoint()
    register(ep)
    [n] = [m for m in put(ep, b"a", 10) if m.token == b"ob"]
    assert n.mid is not None
    ep.datagram_received(encode(Message(3, 0, n.mid)), CLIENT)
    assert res["alarm"].observer_count() == 0


def test_rst_to_a_con_notification_removes_the_observer() -> None:
    ep, _, res = make_endpoint()
    register(ep)
    res["alarm"].updated_state(confirmable=True)
    [(n, _)] = take(ep)
    assert n.mtype == CON and n.mid is not None
    ep.datagram_received(encode(Message(3, 0, n.mid)), CLIENT)
    assert res["alarm"].observer_count() == 0
    assert ep.next_deadline() is None


def test_retransmission_schedule_and_failed_con_notification_removes_observer() -> None:
    ep, clock, res = make_endpoint()
    register(ep)
    start = clock.now
    res["alarm"].updated_state(confirmable=True)
    [(n, _)] = take(ep)
    times = []
    while True:
        deadline = ep.next_deadline()
        if deadline is None:
            break
        clock.now = deadline
        ep.handle_timer()
        sent = take(ep)
        if not sent:
            break
        assert [m.mid for m, _ in sent] == [n.mid]
        times.append(clock.now - start)
    assert len(times) == 4  # MAX_RETRANSMIT
    t0 = times[0]
    assert 2.0 <= t0 <= 3.0  # ACK_TIMEOUT * [1, ACK_RANDOM_FACTOR]
    assert [round(t / t0, 6) for t in times] == [1, 3, 7, 15]
    assert abs(clock.now - start - 31 * t0) < 1e-6  # gave up after the last timeout
    assert res["alarm"].observer_count() == 0


def test_newer_con_notification_replaces_the_one_in_flight() -> None:
    ep, _clock, res = make_endpoint()
    register(ep)
    res["alarm"].updated_state(confirmable=True)
    [(n1, _)] = take(ep)
    res["alarm"].updated_state(confirmable=True)
    [(n2, _)] = take(ep)
    assert n1.mid != n2.mid and n2.observe == (n1.observe or 0) + 1
    assert len(ep._outstanding) == 1
    ep.datagram_received(encode(Message(ACK, 0, n2.mid)), CLIENT)
    assert ep.next_deadline() is None and res["alarm"].observer_count() == 1


def test_error_notification_ends_the_observation() -> None:
    ep, _, res = make_endpoint()
    register(ep)
    res["alarm"].updated_state(Message(code=Code.NOT_FOUND))
    [(n, _)] = take(ep)
    assert n.code == Code.NOT_FOUND and n.observe is None
    assert res["alarm"].observer_count() == 0


def test_fan_out_encodes_once_and_only_token_and_mid_differ() -> None:
    ep, _, res = make_endpoint()
    for i in range(50):
        register(ep, ("127.0.0.1", 2000 + i), token=bytes([i, 1]), mid=i)
    res["alarm"].updated_state(Message(payload=b"HELLO", content_format=0), confirmable=False)
    raw = [(d, p) for d, p in ep.outbox]
    ep.outbox.clear()
    assert len(raw) == 50
    tails = {d[6:] for d, _ in raw}  # 4 header bytes + 2 token bytes
    assert len(tails) == 1
    assert {d[4:6] for d, _ in raw} == {bytes([i, 1]) for i in range(50)}
    assert len({d[2:4] for d, _ in raw}) == 50


def test_reregistration_with_same_token_keeps_one_observer() -> None:
    ep, _, res = make_endpoint()
    register(ep, mid=1)
    register(ep, mid=2)
    assert res["alarm"].observer_count() == 1


def test_large_notification_sends_first_block_with_block2() -> None:
    ep, _, res = make_endpoint()
    ep.datagram_received(
        encode(
            Message(
                CON,
                Code.GET,
                1,
                b"ob",
                uri_path=ALARM,
                observe=0,
                options=[(o.BLOCK2, o.block_value(0, False, 2))],
            )
        ),
        CLIENT,
    )
    take(ep)
    res["alarm"].updated_state(Message(payload=b"x" * 100, content_format=0))
    [(n, _)] = take(ep)
    assert n.block2 == (0, True, 2) and n.get(o.SIZE2) == 100 and len(n.payload) == 64


def test_prefix_resource_observers_per_subpath() -> None:
    from m2mhub.coap import ObservablePrefixResource

    class Topics(ObservablePrefixResource):
        def render_get(self, request: Message) -> Message:
            return Message(payload="/".join(request.remaining_path).encode())

    site, _ = make_site()
    topics = Topics()
    site.add_resource(("ps",), topics)
    ep = Endpoint(site, clock=FakeClock(), rng=random.Random(1))
    for i, path in enumerate((["ps", "a", "b"], ["ps", "c"])):
        msg = Message(CON, Code.GET, i, bytes([i]), uri_path=path, observe=0)
        ep.datagram_received(encode(msg), CLIENT)
    replies = take(ep)
    assert [m.payload for m, _ in replies] == [b"a/b", b"c"]
    assert topics.observer_count(("a", "b")) == 1 and topics.observer_count() == 2
    topics.updated_state(Message(payload=b"new"), subpath=("a", "b"), confirmable=True)
    [(n, _)] = take(ep)
    assert n.token == b"\x00" and n.mtype == CON and n.payload == b"new"
    ep.close()
    assert topics.observer_count() == 0


def test_notification_message_ids_are_per_peer_and_consecutive() -> None:
    ep, _, res = make_endpoint()
    register(ep, ("127.0.0.1", 7001), token=b"a", mid=1)
    register(ep, ("127.0.0.1", 7002), token=b"b", mid=2)
    mids: dict[bytes, list[int]] = {b"a": [], b"b": []}
    for _ in range(5):
        res["alarm"].updated_state(confirmable=False)
        for m, _peer in take(ep):
            assert m.mid is not None
            mids[m.token].append(m.mid)
    for seq in mids.values():
        assert [(b - a) & 0xFFFF for a, b in itertools.pairwise(seq)] == [1] * 4
    ep.close()
    assert ep._peer_mid == {}


def test_deregistration_works_even_when_the_answer_is_an_error() -> None:
    from m2mhub.coap import NotFound

    ep, _, res = make_endpoint()
    register(ep)
    alarm = res["alarm"]

    async def gone(request: Message) -> Message:
        raise NotFound()

    alarm.render_get = gone
    ep.datagram_received(
        encode(Message(CON, Code.GET, 5, b"ob", uri_path=ALARM, observe=1)), CLIENT
    )
    [(resp, _)] = take(ep)
    assert resp.code == Code.NOT_FOUND
    assert alarm.observer_count() == 0
    # a re-registration that fails removes the old entry too
    del alarm.render_get
    register(ep, mid=6)
    alarm.render_get = gone
    ep.datagram_received(
        encode(Message(CON, Code.GET, 7, b"ob", uri_path=ALARM, observe=0)), CLIENT
    )
    take(ep)
    assert alarm.observer_count() == 0


def test_resource_that_skipped_init_can_still_be_observed() -> None:
    from m2mhub.coap import ObservableResource

    class Lazy(ObservableResource):
        def __init__(self) -> None:  # no super().__init__()
            self.value = b"v"

        def render_get(self, request: Message) -> Message:
            return Message(payload=self.value)

    site, _ = make_site()
    lazy = Lazy()
    site.add_resource(("lazy",), lazy)
    ep = Endpoint(site, clock=FakeClock(), rng=random.Random(1))
    assert lazy.observer_count() == 0
    lazy.updated_state()  # nobody yet: nothing happens
    ep.datagram_received(
        encode(Message(CON, Code.GET, 1, b"t", uri_path=["lazy"], observe=1)), CLIENT
    )
    ep.datagram_received(
        encode(Message(CON, Code.GET, 2, b"t", uri_path=["lazy"], observe=0)), CLIENT
    )
    take(ep)
    assert lazy.observer_count() == 1
    lazy.updated_state()
    [(n, _)] = take(ep)
    assert n.observe == 1 and n.payload == b"v"


def test_observer_removal_log_lines_read_like_the_rest(caplog: Any) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="m2mhub.coap")
    ep, clock, res = make_endpoint()
    register(ep, ("::1", 5683, 0, 0), token=b"\x6d\xa4")
    ep.datagram_received(
        encode(Message(CON, Code.GET, 9, b"\x6d\xa4", uri_path=ALARM, observe=1)),
        ("::1", 5683, 0, 0),
    )
    take(ep)
    assert "CoAP observer [::1]:5683 (token 6da4) of /alarm removed: deregistered." in caplog.text
    register(ep, CLIENT, token=b"\x01")
    res["alarm"].updated_state(confirmable=True)
    for _ in range(10):
        deadline = ep.next_deadline()
        if deadline is None:
            break
        clock.now = deadline
        ep.handle_timer()
    assert (
        "CoAP observer 127.0.0.1:40000 (token 01) of /alarm removed: notification not acknowledged."
        in caplog.text
    )
