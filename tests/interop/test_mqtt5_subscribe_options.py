"""MQTT 5 SUBSCRIBE options with paho-mqtt's 5.0 client, mosquitto and m2mhub alike."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from tests.interop.conftest import Broker
from tests.interop.test_paho import TIMEOUT, Paho

pytestmark = pytest.mark.interop

V5 = MQTTProtocolVersion.MQTTv5


def subscribe(client: Paho, topic: str, options: SubscribeOptions) -> None:
    client.subscribed.clear()
    client.client.subscribe(topic, options=options)
    assert client.subscribed.wait(TIMEOUT), "no SUBACK"


def drain(client: Paho, publisher: Paho, topic: str) -> list[mqtt.MQTTMessage]:
    """Messages before a sentinel the publisher sends on ``topic`` (which must reach us)."""
    return client.until(publisher, topic)


def test_no_local(broker: Broker) -> None:
    me = Paho(broker.port, "me", protocol=V5)
    other = Paho(broker.port, "other", protocol=V5)
    subscribe(me, "nl/t", SubscribeOptions(qos=1, noLocal=True))
    me.publish("nl/t", b"mine", 1)
    other.publish("nl/t", b"theirs", 1)
    assert [m.payload for m in drain(me, other, "nl/t")] == [b"theirs"]
    me.disconnect()
    other.disconnect()


@pytest.mark.parametrize("rap", [False, True])
def test_retain_as_published(broker: Broker, rap: bool) -> None:
    sub = Paho(broker.port, "sub", protocol=V5)
    pub = Paho(broker.port, "pub", protocol=V5)
    subscribe(sub, "rap/t", SubscribeOptions(qos=1, retainAsPublished=rap))
    pub.publish("rap/t", b"r", 1, retain=True)
    got = drain(sub, pub, "rap/t")
    assert [(m.payload, bool(m.retain)) for m in got] == [(b"r", rap)]
    pub.publish("rap/t", b"", 1, retain=True)  # clear
    sub.disconnect()
    pub.disconnect()


@pytest.mark.parametrize(("handling", "first", "again"), [(0, 1, 1), (1, 1, 0), (2, 0, 0)])
def test_retain_handling(broker: Broker, handling: int, first: int, again: int) -> None:
    pub = Paho(broker.port, "pub", protocol=V5)
    pub.publish("rh/t", b"kept", 1, retain=True)
    sub = Paho(broker.port, "sub", protocol=V5)
    counts = []
    for _ in range(2):
        subscribe(sub, "rh/t", SubscribeOptions(qos=1, retainHandling=handling))
        # Retained messages follow the SUBACK; a live sentinel on another subscription
        # (QoS 2 from the same publisher, so ordered after them) ends the wait.
        got = drain(sub, pub, "rh/t")
        counts.append(sum(1 for m in got if m.payload == b"kept" and m.retain))
    assert counts == [first, again]
    pub.publish("rh/t", b"", 1, retain=True)
    sub.disconnect()
    pub.disconnect()


def test_mqtt311_subscriber_unchanged(broker: Broker) -> None:
    me = Paho(broker.port, "v311", protocol=MQTTProtocolVersion.MQTTv311)
    me.subscribe("v3/t", 1)
    me.publish("v3/t", b"own", 1, retain=True)
    got = drain(me, me, "v3/t")
    assert [(m.payload, bool(m.retain)) for m in got] == [(b"own", False)]
    me.publish("v3/t", b"", 1, retain=True)
    me.disconnect()
