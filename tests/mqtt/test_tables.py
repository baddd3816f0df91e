"""The property table and reason-code tables against the MQTT 5.0 specification."""

from __future__ import annotations

import pytest

from m2mhub.mqtt import codec
from m2mhub.mqtt.errors import MalformedPacket
from m2mhub.mqtt.packets import (
    Auth,
    Connack,
    Disconnect,
    PacketType,
    Puback,
    Pubcomp,
    Pubrec,
    Pubrel,
    Unsuback,
)
from m2mhub.mqtt.properties import (
    PROPERTIES,
    PROPERTY_TABLE,
    WILL,
    PropertyId,
    PropertyType,
    property_name,
)
from m2mhub.mqtt.reason_codes import (
    VALID_REASON_CODES,
    ConnackReturnCode,
    ReasonCode,
    connack_string,
    reason_string,
)


def test_table_has_every_property_once() -> None:
    assert len(PROPERTY_TABLE) == 27
    assert {p.id for p in PROPERTY_TABLE} == {int(i) for i in PropertyId}
    assert len(PROPERTIES) == 27


def test_spot_checks_against_the_specification() -> None:
    assert PROPERTIES[0x26].repeatable and PROPERTIES[0x0B].repeatable
    assert not PROPERTIES[0x02].repeatable
    assert PROPERTIES[0x0B].type == PropertyType.VARINT
    assert PROPERTIES[0x26].type == PropertyType.UTF8_PAIR
    assert PROPERTIES[0x09].type == PropertyType.BINARY
    assert PROPERTIES[0x27].type == PropertyType.FOUR_BYTE_INT
    assert PROPERTIES[0x23].allowed == {PacketType.PUBLISH}
    assert PROPERTIES[0x18].allowed == {WILL}
    assert WILL in PROPERTIES[0x01].allowed and PacketType.PUBLISH in PROPERTIES[0x01].allowed
    assert PacketType.PINGREQ not in PROPERTIES[0x26].allowed
    assert property_name(0x11) == "Session Expiry Interval"
    assert property_name(0x7F) == "Unknown property 0x7F"


def test_reason_codes() -> None:
    assert ReasonCode.NORMAL_DISCONNECTION == ReasonCode.SUCCESS == 0
    assert ReasonCode.PACKET_TOO_LARGE == 0x95
    assert reason_string(0x87) == "Not authorized"
    assert reason_string(0x42) == "Unknown reason"
    assert 0x04 in VALID_REASON_CODES[PacketType.DISCONNECT]
    assert 0x04 not in VALID_REASON_CODES[PacketType.PUBACK]
    assert VALID_REASON_CODES[PacketType.AUTH] == {0x00, 0x18, 0x19}
    for codes in VALID_REASON_CODES.values():
        assert all(code in {int(r) for r in ReasonCode} for code in codes)


def test_connack_strings_are_mosquittos() -> None:
    assert connack_string(ConnackReturnCode.BAD_USER_NAME_OR_PASSWORD) == (
        "Connection Refused: bad user name or password."
    )
    assert connack_string(ConnackReturnCode.NOT_AUTHORIZED) == "Connection Refused: not authorised."
    assert connack_string(9) == "Connection Refused: unknown reason."


def _sample(prop_type: PropertyType) -> object:
    return {
        PropertyType.BYTE: 1,
        PropertyType.TWO_BYTE_INT: 7,
        PropertyType.FOUR_BYTE_INT: 70000,
        PropertyType.VARINT: 300,
        PropertyType.UTF8: "text",
        PropertyType.UTF8_PAIR: ("k", "v"),
        PropertyType.BINARY: b"\x00\x01",
    }[prop_type]


def _one(prop_id: int) -> dict[int, object]:
    prop = PROPERTIES[prop_id]
    value = _sample(prop.type)
    return {prop_id: [value] if prop.repeatable else value}


# Packets whose wire form is "<fixed header> <prefix> <properties>" when given properties.
_CARRIERS = {
    PacketType.PUBACK: ("40", "0001 00"),
    PacketType.PUBREC: ("50", "0001 00"),
    PacketType.PUBREL: ("62", "0001 00"),
    PacketType.PUBCOMP: ("70", "0001 00"),
    PacketType.DISCONNECT: ("e0", "00"),
    PacketType.AUTH: ("f0", "00"),
    PacketType.CONNACK: ("20", "00 00"),
    PacketType.UNSUBACK: ("b0", "0001"),
}


def test_the_table_decides_what_each_packet_may_carry() -> None:
    """Both directions: encode refuses and decode rejects exactly what the table forbids."""
    make = {
        PacketType.PUBACK: lambda p: Puback(1, 0, p),
        PacketType.PUBREC: lambda p: Pubrec(1, 0, p),
        PacketType.PUBREL: lambda p: Pubrel(1, 0, p),
        PacketType.PUBCOMP: lambda p: Pubcomp(1, 0, p),
        PacketType.DISCONNECT: lambda p: Disconnect(0, p),
        PacketType.AUTH: lambda p: Auth(0, p),
        PacketType.CONNACK: lambda p: Connack(False, 0, p),
        PacketType.UNSUBACK: lambda p: Unsuback(1, [], p),
    }
    checked = 0
    for prop in PROPERTY_TABLE:
        props = _one(prop.id)
        block = codec._encode_properties(props, next(iter(prop.allowed)))
        for ptype, (first, prefix) in _CARRIERS.items():
            body = bytes.fromhex(prefix) + block
            wire = bytes.fromhex(first) + bytes((len(body),)) + body
            if ptype in prop.allowed:
                packet = codec.decode(wire, 5)
                assert packet.properties == props  # type: ignore[union-attr]
                assert codec.encode(make[ptype](props), 5) == wire
            else:
                with pytest.raises(MalformedPacket):
                    codec.decode(wire, 5)
                with pytest.raises(ValueError):
                    codec.encode(make[ptype](props), 5)
            checked += 1
    assert checked == 27 * len(_CARRIERS)
