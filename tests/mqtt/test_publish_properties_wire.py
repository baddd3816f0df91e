"""A decoded 5.0 PUBLISH's properties are re-sent as the bytes they came in, never stale ones.

``PublishProperties`` lets ``encode_publish_parts`` copy the received property bytes instead of
encoding the dict again. Every test here checks the one rule that makes that safe: the bytes
produced are exactly those that encoding an equal plain dict produces.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.mqtt.codec import PublishProperties, decode, encode, encode_publish_parts
from m2mhub.mqtt.packets import Publish
from tests.mqtt.strategies import publishes

TYPICAL: dict[int, Any] = {
    0x03: "application/json",
    0x02: 3600,
    0x26: [("source", "sensor-17"), ("unit", "celsius")],
}


def _sent_on(props: dict[int, Any], qos: int = 1) -> bytes:
    head, tail = encode_publish_parts("a/b", b"payload", qos, False, False, props, 5)
    return head + (b"\x00\x07" if qos else b"") + tail


def _plain(props: dict[int, Any]) -> dict[int, Any]:
    return {k: list(v) if isinstance(v, list) else v for k, v in props.items()}


def _publish_with_raw_properties(raw: bytes) -> bytes:
    """A QoS 0 PUBLISH to a/b whose property section is ``raw`` (length included)."""
    body = b"\x00\x03a/b" + raw + b"payload"
    return bytes((0x30, len(body))) + body


def test_decoded_properties_go_on_as_received() -> None:
    wire = encode(Publish("a/b", b"payload", 1, packet_id=7, properties=TYPICAL), 5)
    packet = decode(wire, 5)
    assert isinstance(packet, Publish)
    assert isinstance(packet.properties, PublishProperties)
    assert packet.properties == TYPICAL
    assert _sent_on(packet.properties) == wire == _sent_on(TYPICAL)


def test_a_changed_dict_is_encoded_afresh() -> None:
    wire = encode(Publish("a/b", b"payload", 0, properties=TYPICAL), 5)
    changes = [
        lambda p: p.__setitem__(0x03, "text/plain"),
        lambda p: p.pop(0x02),
        lambda p: p.update({0x08: "reply/to"}),
        lambda p: p.setdefault(0x09, b"id"),
        lambda p: p[0x26].append(("more", "yes")),
        lambda p: p[0x26].__setitem__(0, ("source", "sensor-18")),
        lambda p: p[0x26].reverse(),
        lambda p: p.clear(),
    ]
    for change in changes:
        packet = decode(wire, 5)
        assert isinstance(packet, Publish)
        change(packet.properties)
        assert packet.properties != TYPICAL
        assert _sent_on(packet.properties, 0) == _sent_on(_plain(packet.properties), 0)


def test_interleaved_user_properties_are_encoded_as_the_dict_has_them() -> None:
    # User Property, Content Type, User Property: the dict keeps the two User Properties in one
    # list, so what is sent on groups them (as before); the received bytes cannot be reused.
    raw = b"\x12" + b"\x26\x00\x01k\x00\x01v" + b"\x03\x00\x01t" + b"\x26\x00\x01x\x00\x01y"
    packet = decode(_publish_with_raw_properties(raw), 5)
    assert isinstance(packet, Publish)
    assert packet.properties == {0x26: [("k", "v"), ("x", "y")], 0x03: "t"}
    assert not isinstance(packet.properties, PublishProperties)
    assert _sent_on(packet.properties) == _sent_on(_plain(packet.properties))


def test_a_long_property_length_is_sent_on_in_its_shortest_form() -> None:
    # Property Length 4 written in two bytes (0x84 0x00) is allowed on the wire.
    packet = decode(_publish_with_raw_properties(b"\x84\x00" + b"\x03\x00\x01t"), 5)
    assert isinstance(packet, Publish)
    assert packet.properties == {0x03: "t"}
    assert _sent_on(packet.properties) == _sent_on({0x03: "t"})
    assert b"\x04\x03\x00\x01t" in _sent_on(packet.properties)


def test_properties_the_broker_does_not_forward_keep_the_plain_dict() -> None:
    for extra in ({0x23: 5}, {0x0B: [3]}):
        props = {**TYPICAL, **extra}
        packet = decode(encode(Publish("a/b", b"p", 1, packet_id=1, properties=props), 5), 5)
        assert isinstance(packet, Publish)
        assert not isinstance(packet.properties, PublishProperties)


@settings(max_examples=300, deadline=None)
@given(publishes(5))
def test_sent_on_bytes_equal_a_fresh_encoding(packet: Publish) -> None:
    received = decode(encode(packet, 5), 5)
    assert isinstance(received, Publish)
    props = received.properties
    args = (received.topic, received.payload, received.qos, received.retain, False)
    assert encode_publish_parts(*args, props, 5) == encode_publish_parts(*args, _plain(props), 5)
    if props:  # and still so after the User Properties changed
        props.setdefault(0x26, []).append(("k", "v"))
        assert encode_publish_parts(*args, props, 5) == encode_publish_parts(
            *args, _plain(props), 5
        )


def test_copies_are_ordinary_dicts() -> None:
    packet = decode(encode(Publish("a/b", b"p", 0, properties=TYPICAL), 5), 5)
    assert isinstance(packet, Publish)
    assert type(dict(packet.properties)) is dict
    assert type({**packet.properties}) is dict
    assert repr(packet.properties) == repr(TYPICAL)


def test_a_repeated_property_section_decodes_to_separate_equal_dicts() -> None:
    wire = encode(Publish("a/b", b"payload", 0, properties=TYPICAL), 5)
    first = decode(wire, 5)
    assert isinstance(first, Publish)
    first.properties[0x26].append(("changed", "here"))
    first.properties[0x03] = "text/plain"
    second = decode(wire, 5)
    assert isinstance(second, Publish)
    assert second.properties == TYPICAL
    assert second.properties is not first.properties
    assert second.properties[0x26] is not first.properties[0x26]
    assert _sent_on(second.properties, 0) == _sent_on(TYPICAL, 0)
    assert _sent_on(first.properties, 0) == _sent_on(_plain(first.properties), 0)


def test_the_property_section_cache_stays_bounded() -> None:
    from m2mhub.mqtt import codec

    for i in range(codec._PROPS_CACHE_SIZE + 10):
        props = {0x08: f"reply/{i}", 0x26: [("n", str(i))]}
        packet = decode(encode(Publish("a/b", b"p", 0, properties=props), 5), 5)
        assert isinstance(packet, Publish)
        assert packet.properties == props
    assert 0 < len(codec._props_cache) <= codec._PROPS_CACHE_SIZE


def test_a_property_added_per_receiver_keeps_the_received_bytes() -> None:
    wire = encode(Publish("a/b", b"payload", 1, packet_id=7, properties=TYPICAL), 5)
    packet = decode(wire, 5)
    assert isinstance(packet, Publish)
    props = packet.properties
    assert isinstance(props, PublishProperties)
    for prop_id, value in ((0x0B, [3, 200_000]), (0x23, 9)):
        wider = props.plus(prop_id, value)
        assert isinstance(wider, PublishProperties)
        assert wider == {**TYPICAL, prop_id: value}
        assert _sent_on(wider) == _sent_on({**TYPICAL, prop_id: value})
        wider[0x26].append(("later", "change"))  # shared with the received dict, as {**p} is
        assert _sent_on(wider) == _sent_on(_plain(wider))
        assert _sent_on(props) == _sent_on(_plain(props))
        props[0x26].pop()
    props[0x03] = "text/plain"  # changed: nothing to keep
    assert type(props.plus(0x0B, [1])) is dict
    assert props.plus(0x0B, [1]) == {**props, 0x0B: [1]}


@settings(max_examples=200, deadline=None)
@given(publishes(5), st.lists(st.integers(1, 268_435_455), min_size=1, max_size=3))
def test_identifiers_added_encode_as_a_fresh_dict(packet: Publish, ids: list[int]) -> None:
    received = decode(encode(packet, 5), 5)
    assert isinstance(received, Publish)
    props = received.properties
    if not isinstance(props, PublishProperties):
        return
    wider = props.plus(0x0B, ids)
    args = (received.topic, received.payload, received.qos, received.retain, False)
    assert wider == {**props, 0x0B: ids}
    assert encode_publish_parts(*args, wider, 5) == encode_publish_parts(*args, _plain(wider), 5)
