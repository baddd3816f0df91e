"""The topic bridge with paho-mqtt (MQTT 5) on the MQTT side: payloads, QoS and the
Content-Format <-> Content Type mapping, against `m2mhub serve`."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.coap.coapapp_support import coap_client, hub_serve, m2mhub_coap

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with hub_serve(tmp_path_factory.mktemp("hub")) as (_, mqtt_port, coap_port):
        yield mqtt_port, coap_port


class Paho:
    """A connected MQTT 5 paho client whose messages land in a queue."""

    def __init__(self, port: int) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"coap-bridge-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_subscribe(self, *_args: Any) -> None:
        self.subscribed.set()

    def subscribe(self, topic: str, qos: int) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos)
        assert self.subscribed.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_coap_put_reaches_paho_with_qos_and_content_type(hub: tuple[int, int]) -> None:
    paho = Paho(hub[0])
    try:
        paho.subscribe("paho/in/#", 2)
        uri = f"coap://127.0.0.1:{hub[1]}/ps/paho/in/json"
        assert m2mhub_coap("-m", "put", "-t", "json", "-e", '{"t": 21}', uri).returncode == 0
        msg = paho.messages.get(timeout=10)
        assert (msg.topic, msg.payload, msg.qos, msg.retain) == (
            "paho/in/json",
            b'{"t": 21}',
            1,  # a CON request publishes at QoS 1
            False,  # live delivery to an existing subscription
        )
        assert msg.properties.ContentType == "application/json"
        non = f"coap://127.0.0.1:{hub[1]}/ps/paho/in/non"
        assert m2mhub_coap("-N", "-m", "post", "-e", "x", non).returncode == 0
        assert paho.messages.get(timeout=10).qos == 0  # a NON request publishes at QoS 0
        assert m2mhub_coap("-m", "post", "-e", "y", non + "?qos=2").returncode == 0
        assert paho.messages.get(timeout=10).qos == 2
    finally:
        paho.close()


def test_paho_publish_with_content_type_gives_coap_content_format(hub: tuple[int, int]) -> None:
    paho = Paho(hub[0])
    try:
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/cbor"
        info = paho.client.publish("paho/out/cbor", b"\xa1\x61t\x15", 1, True, props)
        info.wait_for_publish(10)
        uri = f"coap://127.0.0.1:{hub[1]}/ps/paho/out/cbor"
        shown = coap_client("-v", "6", "-m", "get", uri).stdout.decode(errors="replace")
        assert "Content-Format:application/cbor" in shown
    finally:
        paho.close()
