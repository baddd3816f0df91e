"""Shared subscriptions with paho-mqtt's 5.0 client, mosquitto and m2mhub alike."""

from __future__ import annotations

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from tests.interop.conftest import Broker
from tests.interop.test_paho import Paho

pytestmark = pytest.mark.interop

V5 = MQTTProtocolVersion.MQTTv5


def test_each_message_to_one_member(broker: Broker) -> None:
    a = Paho(broker.port, "a", protocol=V5)
    b = Paho(broker.port, "b", protocol=V5)
    watcher = Paho(broker.port, "watcher", protocol=V5)
    for member in (a, b):
        member.subscribe("$share/g/sh/t", 1)
        member.subscribe("sh/done", 1)  # a plain subscription, for the end-of-test sentinel
    watcher.subscribe("sh/#", 1)
    pub = Paho(broker.port, "pub", protocol=V5)
    sent = [str(i).encode() for i in range(10)]
    for payload in sent:
        pub.publish("sh/t", payload, 1)
    seen = [m.payload for m in watcher.until(pub, "sh/done") if m.topic == "sh/t"]
    assert seen == sent
    # Each member gets the publisher's messages in order, so the sentinel comes after them.
    got_a = [(m.payload, m.qos) for m in a.until(pub, "sh/done") if m.topic == "sh/t"]
    got_b = [(m.payload, m.qos) for m in b.until(pub, "sh/done") if m.topic == "sh/t"]
    assert sorted(p for p, _q in got_a + got_b) == sorted(sent)
    assert {q for _p, q in got_a + got_b} == {1}
    assert got_a and got_b
    if broker.kind == "m2mhub":
        assert [p for p, _q in got_a] == sent[0::2]
        assert [p for p, _q in got_b] == sent[1::2]
    for client in (a, b, watcher, pub):
        client.disconnect()


def test_no_retained_message_on_shared_subscribe(broker: Broker) -> None:
    pub = Paho(broker.port, "pub", protocol=V5)
    pub.publish("shr/t", b"kept", 1, retain=True)
    member = Paho(broker.port, "member", protocol=V5)
    member.subscribe("$share/g/shr/#", 1)
    got = [(m.payload, bool(m.retain)) for m in member.until(pub, "shr/live")]
    # MQTT 5.0 3.3.1.3 sends retained messages only for new non-shared subscriptions;
    # mosquitto 2.0.11 sends them for shared ones too.
    assert got == ([] if broker.kind == "m2mhub" else [(b"kept", True)])
    pub.publish("shr/t", b"", 1, retain=True)
    member.disconnect()
    pub.disconnect()
