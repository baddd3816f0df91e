"""MQTT 5 Subscription Identifiers with paho-mqtt's 5.0 client, mosquitto and m2mhub alike."""

from __future__ import annotations

import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from tests.interop.conftest import Broker
from tests.interop.test_paho import TIMEOUT, Paho

pytestmark = pytest.mark.interop

V5 = MQTTProtocolVersion.MQTTv5


def subscribe(client: Paho, topic: str, qos: int, sub_id: int | None) -> None:
    props = None
    if sub_id is not None:
        props = Properties(PacketTypes.SUBSCRIBE)
        props.SubscriptionIdentifier = sub_id
    client.subscribed.clear()
    client.client.subscribe(topic, options=SubscribeOptions(qos=qos), properties=props)
    assert client.subscribed.wait(TIMEOUT), "no SUBACK"


def ids(message: object) -> list[int]:
    props = getattr(message, "properties", None)
    return sorted(getattr(props, "SubscriptionIdentifier", []) or [])


def test_every_matching_identifier_on_one_message(broker: Broker) -> None:
    sub = Paho(broker.port, "sub", protocol=V5)
    pub = Paho(broker.port, "pub", protocol=V5)
    subscribe(sub, "sid/#", 1, 7)
    subscribe(sub, "sid/+", 1, 3)
    subscribe(sub, "sid/x", 1, None)
    pub.publish("sid/x", b"m", 1)
    got = sub.until(pub, "sid/x")
    # MQTT 5.0 3.3.4 allows either one copy carrying every identifier (m2mhub) or one copy per
    # subscription carrying its own identifier (mosquitto 2.0.11); both give these ids.
    assert sorted(i for m in got for i in ids(m)) == [3, 7]
    if broker.kind == "m2mhub":
        assert [(m.payload, ids(m)) for m in got] == [(b"m", [3, 7])]
    else:
        assert sorted(ids(m) for m in got) == [[], [3], [7]]
    sub.disconnect()
    pub.disconnect()


def test_retained_message_carries_the_identifier(broker: Broker) -> None:
    pub = Paho(broker.port, "pub", protocol=V5)
    pub.publish("sidr/t", b"kept", 1, retain=True)
    sub = Paho(broker.port, "sub", protocol=V5)
    subscribe(sub, "sidr/#", 1, 42)
    got = sub.next_message()
    assert (got.payload, bool(got.retain), ids(got)) == (b"kept", True, [42])
    pub.publish("sidr/t", b"", 1, retain=True)
    sub.disconnect()
    pub.disconnect()
