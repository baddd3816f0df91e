"""The client side of the endpoint, talking to a server endpoint through an in-memory wire."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.coap.endpoint import Endpoint
from m2mhub.coap.message import CON, NON, Message, decode
from m2mhub.coap.options import Code

from .helpers import FakeClock, make_site

C = ("127.0.0.1", 1)
S = ("127.0.0.1", 2)


class Wire:
    def __init__(self) -> None:
        self.clock = FakeClock()
        site, self.res = make_site()
        self.server = Endpoint(site, clock=self.clock, rng=random.Random(1))
        self.client = Endpoint(None, clock=self.clock, rng=random.Random(2))
        self.lose_next_to_client = 0

    def pump(self) -> None:
        while self.server.outbox or self.client.outbox:
            for data, _ in self.client.outbox[:]:
                self.server.datagram_received(data, C)
            self.client.outbox.clear()
            for data, _ in self.server.outbox[:]:
                if self.lose_next_to_client:
                    self.lose_next_to_client -= 1
                    continue
                self.client.datagram_received(data, S)
            self.server.outbox.clear()


def test_request_response_and_observe() -> None:
    w = Wire()
    got: list[tuple[Message | None, str | None]] = []
    w.client.request(
        Message(CON, Code.GET, uri_path=["counter"]), S, lambda m, e: got.append((m, e))
    )
    w.pump()
    assert [(m.payload if m else None, e) for m, e in got] == [(b"1", None)]
    got.clear()
    ex = w.client.request(
        Message(NON, Code.GET, uri_path=["alarm"], observe=0), S, lambda m, e: got.append((m, e))
    )
    w.pump()
    w.res["alarm"].updated_state(confirmable=True)  # CON notification: the client ACKs it
    w.pump()
    w.res["alarm"].updated_state()
    w.pump()
    assert [m.payload for m, _ in got if m] == [b"OFF", b"OFF", b"OFF"]
    assert w.server.next_deadline() is None  # the CON notification was acknowledged
    ex.cancel()
    w.res["alarm"].updated_state()
    w.pump()  # the client answers RST: the observation ends
    assert w.res["alarm"].observer_count() == 0


def test_retransmission_recovers_a_lost_response() -> None:
    w = Wire()
    got: list[Message | None] = []
    w.client.request(Message(CON, Code.GET, uri_path=["counter"]), S, lambda m, e: got.append(m))
    w.lose_next_to_client = 1
    w.pump()
    assert got == []
    deadline = w.client.next_deadline()
    assert deadline is not None
    w.clock.now = deadline
    w.client.handle_timer()
    w.pump()
    # the server saw a duplicate and answered from its cache: the handler ran once
    assert [m.payload for m in got if m] == [b"1"]
    assert w.server.stats["duplicates"] == 1


def test_timeout_and_reset_are_reported() -> None:
    w = Wire()
    errors: list[str | None] = []
    w.client.request(Message(CON, Code.GET, uri_path=["counter"]), S, lambda m, e: errors.append(e))
    w.client.outbox.clear()  # never delivered
    for _ in range(10):
        deadline = w.client.next_deadline()
        if deadline is None:
            break
        w.clock.now = deadline
        w.client.handle_timer()
        w.client.outbox.clear()
    assert errors == ["timeout"]
    w.client.request(Message(CON, 0), S, lambda m, e: errors.append(e))  # ping-like empty CON
    data = w.client.outbox[0][0]
    w.client.outbox.clear()
    w.server.datagram_received(data, C)
    [(rst, _)] = w.server.outbox
    w.server.outbox.clear()
    assert decode(rst).mtype == 3
    w.client.datagram_received(rst, S)
    assert errors == ["timeout", "reset"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(1, 8))
def test_lossy_wire_each_request_runs_once_and_ends_once(losses: list[bool], n: int) -> None:
    """Datagrams are lost per the drawn pattern; retransmission and dedup keep it exactly-once."""
    w = Wire()
    pattern = iter(losses)
    ends: dict[int, list[object]] = {i: [] for i in range(n)}
    for i in range(n):
        w.client.request(
            Message(CON, Code.GET, uri_path=["counter"]),
            S,
            lambda m, e, i=i: ends[i].append(m.payload if m else e),
        )

    def deliver(src: Endpoint, dst: Endpoint, peer: tuple[str, int]) -> None:
        items = src.outbox[:]
        src.outbox.clear()
        for data, _ in items:
            if not next(pattern, False):
                dst.datagram_received(data, peer)

    for _ in range(200):
        while w.client.outbox or w.server.outbox:
            deliver(w.client, w.server, C)
            deliver(w.server, w.client, S)
        deadlines = [d for d in (w.client.next_deadline(), w.server.next_deadline()) if d]
        if not deadlines:
            break
        w.clock.now = min(deadlines)
        w.client.handle_timer()
        w.server.handle_timer()
    assert all(len(v) == 1 for v in ends.values()), ends
    payloads = [v[0] for v in ends.values() if isinstance(v[0], bytes)]
    assert len(set(payloads)) == len(payloads)  # no request answered twice with a new run
    assert w.res["counter"].calls <= n


def test_unanswered_non_request_times_out_after_exchange_lifetime() -> None:
    w = Wire()
    errors: list[str | None] = []
    w.client.request(Message(NON, Code.GET, uri_path=["counter"]), S, lambda m, e: errors.append(e))
    w.client.outbox.clear()  # lost
    deadline = w.client.next_deadline()
    assert deadline is not None and deadline - w.clock.now == 247.0
    w.clock.now = deadline
    w.client.handle_timer()
    assert errors == ["timeout"] and w.client._exchanges == {}
