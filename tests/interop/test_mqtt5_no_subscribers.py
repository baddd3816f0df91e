"""PUBACK says "no matching subscribers" (0x10) to a 5.0 publisher nobody listens to.

The spec lets the server use 0x10 instead of 0x00 (MQTT 5.0, 3.4.2.1); mosquitto 2.0.11 does
for PUBACK, and paho reports it to the publisher. PUBREC is sent before routing, so it says 0.
"""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.interop.conftest import Broker


def _publish_codes(port: int, topic: str, qos: int) -> int:
    """Publish once with paho 5.0 and return the reason code of its PUBACK/PUBREC."""
    codes: list[int] = []
    done = threading.Event()

    def on_publish(client: mqtt.Client, userdata: object, mid: int, rc: object, p: object) -> None:
        codes.append(int(rc.value))  # type: ignore[attr-defined]
        done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, f"nosub-q{qos}", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, b"x", qos=qos)
        assert done.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


@pytest.mark.parametrize("qos", [1, 2])
def test_ack_code_without_subscribers(broker: Broker, qos: int) -> None:
    mark = broker.mark()
    assert _publish_codes(broker.port, "nobody/listens", qos) == (0x10 if qos == 1 else 0)
    broker.barrier()
    acks = [line for line in broker.lines_since(mark) if line.startswith("Sending PUB")]
    kind, code = ("PUBACK", 16) if qos == 1 else ("PUBREC", 0)
    assert acks[0] == f"Sending {kind} to nosub-q{qos} (m1, rc{code})"


def test_ack_code_with_a_subscriber(broker: Broker) -> None:
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, "listener")
    subscribed = threading.Event()
    listener.on_subscribe = lambda *a: subscribed.set()
    listener.connect("127.0.0.1", broker.port)
    listener.loop_start()
    try:
        listener.subscribe("somebody/listens", 0)
        assert subscribed.wait(10)
        assert _publish_codes(broker.port, "somebody/listens", 1) == 0
    finally:
        listener.disconnect()
        listener.loop_stop()
