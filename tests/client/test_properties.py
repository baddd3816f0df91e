"""MQTTProperties: the identifiers the codec uses, readable and buildable by name."""

from __future__ import annotations

import pytest

from m2mhub.client import MQTTProperties
from m2mhub.mqtt.codec import decode, encode
from m2mhub.mqtt.packets import MQTT_5, Publish


def test_built_by_name_it_encodes_as_the_identifiers() -> None:
    props = MQTTProperties(
        content_type="text/plain",
        user_properties=[("k", "1"), ("k", "2")],
        subscription_identifiers=[3],
        message_expiry_interval=60,
    )
    assert props == {0x03: "text/plain", 0x26: [("k", "1"), ("k", "2")], 0x0B: [3], 0x02: 60}
    wire = encode(Publish("t", b"x", properties=props), MQTT_5)
    back = decode(wire, MQTT_5)
    assert isinstance(back, Publish)
    named = MQTTProperties(back.properties)
    assert (named.content_type, named.user_properties, named.message_expiry_interval) == (
        "text/plain",
        [("k", "1"), ("k", "2")],
        60,
    )


def test_absent_properties_read_as_none_or_empty_lists() -> None:
    props = MQTTProperties()
    assert props.content_type is None and props.reason_string is None
    assert props.user_properties == [] and props.subscription_identifiers == []
    props.user_properties.append(("not", "stored"))  # a copy: the properties are unchanged
    assert props == {}


@pytest.mark.parametrize("name", ["user_property", "subscription_identifier", "colour"])
def test_unknown_or_singular_names_of_lists_are_refused(name: str) -> None:
    with pytest.raises(TypeError, match=name):
        MQTTProperties(**{name: 1})
