"""The property table and reason-code tables against the MQTT 5.0 specification."""

from __future__ import annotations

from m2mhub.mqtt.packets import PacketType
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
