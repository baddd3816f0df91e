"""A PUBLISH encoded once with each receiver's Subscription Identifiers spliced in.

``PublishSplice`` is what the broker's fan-out sends when subscribers differ only in their
Subscription Identifiers. The rule it must keep: for every receiver the bytes are exactly what
a fresh ``encode`` of the PUBLISH with the identifiers appended to its properties gives, whatever
the lengths (Remaining Length and Property Length both cross varint boundaries here).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.mqtt.codec import (
    PublishProperties,
    PublishSplice,
    decode,
    encode,
)
from m2mhub.mqtt.packets import PacketType, Publish
from tests.mqtt.strategies import properties

SUBSCRIPTION_ID = 0x0B

# Identifiers of every varint size (1 to 4 bytes), each size's smallest and largest.
_ids = st.one_of(
    st.sampled_from([1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455]),
    st.integers(1, 268_435_455),
)
# Sizes around the points where a Remaining Length or Property Length needs one more byte.
_sizes = st.one_of(st.integers(0, 300), st.integers(16_250, 16_500))


def _spliced(splice: PublishSplice, sub_ids: tuple[int, ...], qos: int, mid: int) -> bytes:
    head, middle = splice.parts(sub_ids)
    return head + (mid.to_bytes(2, "big") if qos else b"") + middle + splice.payload


def _fresh(
    topic: str, payload: bytes, qos: int, retain: bool, dup: bool, mid: int,
    props: dict[int, Any], sub_ids: tuple[int, ...],
) -> bytes:  # fmt: skip
    plain = {k: list(v) if isinstance(v, list) else v for k, v in props.items()}
    packet = Publish(topic, payload, qos, retain, dup, mid if qos else None,
                     {**plain, SUBSCRIPTION_ID: list(sub_ids)})  # fmt: skip
    return encode(packet, 5)


@st.composite
def _forwarded(draw: st.DrawFn) -> dict[int, Any]:
    """PUBLISH properties as the broker forwards them: no Subscription Identifier."""
    props = draw(properties(PacketType.PUBLISH))
    props.pop(SUBSCRIPTION_ID, None)
    padding = draw(st.sampled_from([0, 0, 50, 110, 120, 125, 200, 16_300]))
    if padding:  # a User Property long enough to push the Property Length over 127 (or 16383)
        props.setdefault(0x26, []).append(("pad", "p" * padding))
    return props


@settings(max_examples=400, deadline=None)
@given(
    _forwarded(),
    st.lists(st.lists(_ids, min_size=1, max_size=3).map(tuple), min_size=1, max_size=6),
    st.integers(0, 2),
    st.booleans(),
    st.booleans(),
    _sizes,
    st.integers(1, 300),
    st.integers(1, 0xFFFF),
    st.booleans(),
)
def test_spliced_bytes_equal_a_fresh_encoding(
    props: dict[int, Any],
    receivers: list[tuple[int, ...]],
    qos: int,
    retain: bool,
    dup: bool,
    payload_size: int,
    topic_size: int,
    mid: int,
    as_received: bool,
) -> None:
    topic = "t" * topic_size
    payload = b"p" * payload_size
    dup = dup and qos > 0
    if as_received:  # the decoded dict, whose received bytes are reused when it has them
        base = Publish(topic, payload, qos, retain, dup, mid if qos else None, props)
        received = decode(encode(base, 5), 5)
        assert isinstance(received, Publish)
        props = received.properties
    splice = PublishSplice(topic, payload, qos, retain, dup, props)
    for sub_ids in receivers:  # one splice serves receivers of any identifier lengths
        expected = _fresh(topic, payload, qos, retain, dup, mid, props, sub_ids)
        assert _spliced(splice, sub_ids, qos, mid) == expected


def test_received_properties_are_copied_not_encoded_again() -> None:
    props = {0x03: "application/json", 0x26: [("unit", "celsius")]}
    received = decode(encode(Publish("a/b", b"x", 1, packet_id=9, properties=props), 5), 5)
    assert isinstance(received, Publish)
    assert isinstance(received.properties, PublishProperties)
    splice = PublishSplice("a/b", b"x", 1, False, False, received.properties)
    for sub_ids in ((1,), (300,), (1, 2)):
        expected = _fresh("a/b", b"x", 1, False, False, 9, props, sub_ids)
        assert _spliced(splice, sub_ids, 1, 9) == expected


def test_no_properties_but_the_identifiers() -> None:
    splice = PublishSplice("a/b", b"hi", 0, False, False, {})
    # Remaining Length 10: topic (5), Property Length (1), identifier 0x0B 0x05 (2), payload (2)
    assert _spliced(splice, (5,), 0, 0) == b"\x30\x0a\x00\x03a/b\x02\x0b\x05hi"
    assert _spliced(splice, (5,), 0, 0) == _fresh("a/b", b"hi", 0, False, False, 0, {}, (5,))


def test_properties_that_already_carry_an_identifier_are_refused() -> None:
    with pytest.raises(ValueError):
        PublishSplice("a/b", b"", 0, False, False, {SUBSCRIPTION_ID: [1]})
