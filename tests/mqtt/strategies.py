"""Hypothesis strategies for MQTT packets of every type and version, from the property table."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from m2mhub.mqtt.packets import (
    MQTT_5,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionOptions,
    Unsuback,
    Unsubscribe,
    Will,
)
from m2mhub.mqtt.properties import PROPERTY_TABLE, WILL, PropertyId, PropertyType
from m2mhub.mqtt.reason_codes import VALID_REASON_CODES

_FORBIDDEN = set(range(0x20)) | set(range(0x7F, 0xA0)) | set(range(0xFDD0, 0xFDF0))
_FORBIDDEN |= {(plane << 16) | low for plane in range(17) for low in (0xFFFE, 0xFFFF)}


def _allowed_char(c: str) -> bool:
    return ord(c) not in _FORBIDDEN


# Characters an MQTT string may carry (mosquitto's rules): no surrogates, controls or
# non-characters.
chars = st.characters(blacklist_categories=("Cs",)).filter(_allowed_char)
mqtt_text = st.text(chars, max_size=20)
level_text = st.text(chars.filter(lambda c: c not in "+#/"), max_size=8)
topic_names = st.lists(level_text, min_size=1, max_size=5).map("/".join).filter(bool)


@st.composite
def topic_filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.one_of(level_text, st.just("+")), min_size=1, max_size=5))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels) or "#"


packet_ids = st.integers(1, 0xFFFF)
binary = st.binary(max_size=30)


def _value(ptype: PropertyType, prop_id: int) -> st.SearchStrategy[Any]:
    if ptype == PropertyType.BYTE:
        return st.integers(0, 1)  # every byte property is a 0/1 flag
    low = 1 if prop_id in (0x0B, 0x21, 0x23, 0x27) else 0
    if ptype == PropertyType.TWO_BYTE_INT:
        return st.integers(low, 0xFFFF)
    if ptype == PropertyType.FOUR_BYTE_INT:
        return st.integers(low, 0xFFFFFFFF)
    if ptype == PropertyType.VARINT:
        return st.integers(low, 268_435_455)
    if ptype == PropertyType.UTF8:
        return mqtt_text
    if ptype == PropertyType.UTF8_PAIR:
        return st.tuples(mqtt_text, mqtt_text)
    return binary


@st.composite
def properties(draw: st.DrawFn, packet_type: int) -> Properties:
    props: Properties = {}
    for prop in PROPERTY_TABLE:
        if packet_type not in prop.allowed or not draw(st.booleans()):
            continue
        value = _value(prop.type, prop.id)
        if prop.repeatable:
            most = 1 if packet_type == PacketType.SUBSCRIBE else 3
            props[prop.id] = draw(st.lists(value, min_size=1, max_size=most))
        else:
            props[prop.id] = draw(value)
    return props


def _props(level: int, packet_type: int) -> st.SearchStrategy[Properties]:
    return properties(packet_type) if level == MQTT_5 else st.just({})


def _code(level: int, ptype: PacketType) -> st.SearchStrategy[int]:
    if level != MQTT_5:
        return st.just(0)
    return st.sampled_from(sorted(VALID_REASON_CODES[ptype]))


@st.composite
def connects(draw: st.DrawFn, level: int) -> Connect:
    will = None
    if draw(st.booleans()):
        will = Will(draw(topic_names), draw(binary), draw(st.integers(0, 2)), draw(st.booleans()),
                    draw(_props(level, WILL)))  # fmt: skip
    props = draw(_props(level, PacketType.CONNECT))
    if PropertyId.AUTHENTICATION_DATA in props:
        props.setdefault(PropertyId.AUTHENTICATION_METHOD, "SCRAM-SHA-1")
    username = draw(st.none() | mqtt_text)
    password = draw(st.none() | binary)
    if username is None and level != MQTT_5:
        password = None
    return Connect(
        level, draw(mqtt_text), draw(st.booleans()), draw(st.integers(0, 0xFFFF)), will,
        username, password, props,
        "MQIsdp" if level == 3 else "MQTT", draw(st.booleans()),
    )  # fmt: skip


@st.composite
def publishes(draw: st.DrawFn, level: int) -> Publish:
    qos = draw(st.integers(0, 2))
    props = draw(_props(level, PacketType.PUBLISH))
    topic = draw(topic_names)
    if PropertyId.TOPIC_ALIAS in props and draw(st.booleans()):
        topic = ""
    return Publish(topic, draw(st.binary(max_size=300)), qos, draw(st.booleans()),
                   draw(st.booleans()) if qos else False, draw(packet_ids) if qos else None,
                   props)  # fmt: skip


@st.composite
def sub_options(draw: st.DrawFn, level: int) -> SubscriptionOptions:
    qos = draw(st.integers(0, 2))
    if level != MQTT_5:
        return SubscriptionOptions(qos)
    return SubscriptionOptions(qos, draw(st.booleans()), draw(st.booleans()),
                               draw(st.integers(0, 2)))  # fmt: skip


def packets(level: int) -> st.SearchStrategy[Packet]:
    """Any valid packet of any type for protocol ``level``."""
    acks = [
        st.builds(cls, packet_ids, _code(level, cls.packet_type), _props(level, cls.packet_type))
        for cls in (Puback, Pubrec, Pubrel, Pubcomp)
    ]
    suback_codes = (
        st.sampled_from(sorted(VALID_REASON_CODES[PacketType.SUBACK]))
        if level == MQTT_5
        else st.sampled_from([0, 1, 2, 0x80])
    )
    options = [
        connects(level),
        st.builds(Connack, st.booleans() if level != 3 else st.just(False),
                  _code(level, PacketType.CONNACK) if level == MQTT_5 else st.integers(0, 5),
                  _props(level, PacketType.CONNACK)),
        publishes(level),
        *acks,
        st.builds(Subscribe, packet_ids,
                  st.lists(st.tuples(topic_filters(), sub_options(level)), min_size=1, max_size=4),
                  _props(level, PacketType.SUBSCRIBE)),
        st.builds(Suback, packet_ids, st.lists(suback_codes, min_size=1, max_size=4),
                  _props(level, PacketType.SUBACK)),
        st.builds(Unsubscribe, packet_ids, st.lists(topic_filters(), min_size=1, max_size=4),
                  _props(level, PacketType.UNSUBSCRIBE)),
        st.builds(Unsuback, packet_ids,
                  st.lists(_code(level, PacketType.UNSUBACK), max_size=4)
                  if level == MQTT_5 else st.just([]),
                  _props(level, PacketType.UNSUBACK)),
        st.just(Pingreq()),
        st.just(Pingresp()),
        st.builds(Disconnect, _code(level, PacketType.DISCONNECT),
                  _props(level, PacketType.DISCONNECT)),
    ]  # fmt: skip
    if level == MQTT_5:
        auth = st.builds(Auth, _code(level, PacketType.AUTH), _props(level, PacketType.AUTH))
        options.append(auth)
    return st.one_of(options)


levels = st.sampled_from([3, 4, 5])
