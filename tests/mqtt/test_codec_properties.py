"""Hypothesis: round trips of every packet in every version, and chunking never matters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.mqtt.codec import PacketReader, decode, encode
from m2mhub.mqtt.packets import Packet
from tests.mqtt.strategies import levels, packets

SETTINGS = settings(max_examples=300, deadline=None)


@st.composite
def level_and_packet(draw: st.DrawFn) -> tuple[int, Packet]:
    level = draw(levels)
    return level, draw(packets(level))


@st.composite
def level_and_stream(draw: st.DrawFn) -> tuple[int, list[Packet]]:
    level = draw(levels)
    return level, draw(st.lists(packets(level), min_size=1, max_size=6))


@SETTINGS
@given(level_and_packet())
def test_round_trip(case: tuple[int, Packet]) -> None:
    level, packet = case
    wire = encode(packet, level)
    decoded = decode(wire, level)
    assert decoded == packet
    assert encode(decoded, level) == wire


@settings(max_examples=100, deadline=None)
@given(level_and_stream())
def test_byte_at_a_time_equals_whole(case: tuple[int, list[Packet]]) -> None:
    level, stream = case
    wire = b"".join(encode(p, level) for p in stream)
    whole = PacketReader(level).feed_all(wire)
    assert whole == stream
    reader = PacketReader(level)
    one_by_one: list[Packet] = []
    for i in range(len(wire)):
        one_by_one += reader.feed_all(wire[i : i + 1])
    assert one_by_one == stream
    assert reader.buffered == 0


@settings(max_examples=100, deadline=None)
@given(level_and_stream(), st.lists(st.integers(1, 64), min_size=1))
def test_random_chunks_equal_whole(case: tuple[int, list[Packet]], sizes: list[int]) -> None:
    level, stream = case
    wire = b"".join(encode(p, level) for p in stream)
    reader = PacketReader(level)
    got: list[Packet] = []
    pos = 0
    i = 0
    while pos < len(wire):
        n = sizes[i % len(sizes)]
        got += reader.feed_all(memoryview(wire)[pos : pos + n])
        pos += n
        i += 1
    assert got == stream
