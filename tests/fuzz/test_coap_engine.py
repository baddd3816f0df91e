"""Garbage and mutated CoAP datagrams never crash the engine, and what it sends is valid CoAP."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.coap.endpoint import CoapConfig, Endpoint
from m2mhub.coap.message import Message, decode, encode
from m2mhub.coap.options import Code
from tests.coap.helpers import FakeClock, make_site

_valid = [
    encode(Message(0, Code.GET, 1, b"\x01", uri_path=["alarm"], observe=0)),
    encode(Message(0, Code.PUT, 2, b"\x02", uri_path=["alarm"], payload=b"ON")),
    encode(Message(1, Code.GET, 3, b"", uri_path=["big"], options=[(23, 0x12)])),
    encode(
        Message(
            0, Code.POST, 4, b"\x04", uri_path=["counter"], options=[(27, 0x0A)], payload=bytes(64)
        )
    ),
    encode(Message(0, Code.GET, 5, b"", uri_path=[".well-known", "core"], uri_query=["rt=a*"])),
    bytes.fromhex("40000007"),
    bytes.fromhex("70000001"),
]


def _mutate(data: bytes, flips: list[tuple[int, int]], cut: int) -> bytes:
    buf = bytearray(data)
    for pos, val in flips:
        if buf:
            buf[pos % len(buf)] = val
    return bytes(buf[: max(0, len(buf) - cut)])


datagrams = st.one_of(
    st.binary(max_size=80),
    st.builds(
        _mutate,
        st.sampled_from(_valid),
        st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
        st.integers(0, 6),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(datagrams, st.integers(0, 3), st.floats(0, 5)), max_size=30))
def test_engine_survives_garbage(items: list[tuple[bytes, int, float]]) -> None:
    clock = FakeClock()
    site, res = make_site()
    ep = Endpoint(site, clock=clock, rng=random.Random(3), config=CoapConfig(max_body_size=300))
    for data, peer, dt in items:
        ep.datagram_received(data, ("127.0.0.1", 5000 + peer))
        clock.now += dt
        ep.handle_timer()
        res["alarm"].updated_state()
        ep.deferred.clear()
        for out, _ in ep.outbox:
            decode(out)
        ep.outbox.clear()
    # still serving
    ep.datagram_received(encode(Message(0, Code.GET, 999, b"z", uri_path=["counter"])), ("::1", 1))
    [(data, _)] = ep.outbox
    assert decode(data).code == Code.CONTENT
