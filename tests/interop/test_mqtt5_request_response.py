"""MQTT 5 request/response end to end (Response Topic + Correlation Data), on both brokers.

Requesters: paho-mqtt's 5.0 client, ``mosquitto_rr`` and ``m2mhub rr``. Responders: paho and
``m2mhub.client.MQTTClient``. A responder answers on the request's Response Topic and copies
its Correlation Data; the requester matches answers to requests by it.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from typing import Any, Protocol

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from m2mhub.client import ConnectionLostError, MQTTClient, MQTTProperties
from tests.client.cli_support import run_tool
from tests.interop.conftest import Broker

pytestmark = pytest.mark.interop

TIMEOUT = 10.0


class Responder(Protocol):
    def stop(self) -> None: ...


class PahoResponder:
    """paho 5.0: answers each request on ``svc/#`` with b"re:" + payload, at the request's QoS."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(
            "svc/#", options=SubscribeOptions(qos=2)
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(TIMEOUT), "responder: no SUBACK"

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        response_topic = getattr(msg.properties, "ResponseTopic", None)
        if response_topic is None:
            return  # nowhere to answer
        reply = Properties(PacketTypes.PUBLISH)
        correlation = getattr(msg.properties, "CorrelationData", None)
        if correlation is not None:
            reply.CorrelationData = correlation
        reply.UserProperty = ("responder", "paho")
        client.publish(response_topic, b"re:" + msg.payload, msg.qos, False, reply)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class ClientResponder:
    """The same responder written with m2mhub.client.MQTTClient, on its own loop in a thread."""

    def __init__(self, port: int) -> None:
        self.ready = threading.Event()
        self.stopping = False
        self.client = MQTTClient()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self._serve(port),), daemon=True
        )
        self.thread.start()
        assert self.ready.wait(TIMEOUT), "responder: no SUBACK"

    async def _serve(self, port: int) -> None:
        client = self.client
        await client.connect("127.0.0.1", port, protocol=5)
        await client.subscribe([("svc/#", 2)])
        self.ready.set()
        try:
            async for request in client.messages():
                reply_to = request.properties.response_topic
                if reply_to is None:
                    continue  # nowhere to answer
                answer = MQTTProperties(user_properties=[("responder", "m2mhub.client")])
                correlation = request.properties.correlation_data
                if correlation is not None:
                    answer.update(MQTTProperties(correlation_data=correlation))
                await client.publish(reply_to, b"re:" + request.payload, request.qos, False, answer)
        except ConnectionLostError:
            if not self.stopping:  # (stopping may cut an answer's PUBACK short)
                raise

    def stop(self) -> None:
        self.stopping = True
        self.loop.call_soon_threadsafe(self.client.disconnect_nowait)
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()
        self.loop.close()


RESPONDERS = {"paho": PahoResponder, "m2mhub.client": ClientResponder}


@pytest.fixture(params=list(RESPONDERS))
def responder(request: pytest.FixtureRequest, broker: Broker) -> Iterator[str]:
    """A responder of each kind on the broker; yields its name (the user property it sets)."""
    running: Responder = RESPONDERS[request.param](broker.port)
    try:
        yield str(request.param)
    finally:
        running.stop()


class Requester:
    """paho 5.0: sends requests with Response Topic + Correlation Data, collects the answers."""

    def __init__(self, port: int, reply_to: str) -> None:
        self.reply_to = reply_to
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.answers: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        subscribed = threading.Event()
        self.client.on_message = lambda _c, _u, msg: self.answers.put(msg)
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(reply_to, options=SubscribeOptions(qos=2))
        assert subscribed.wait(TIMEOUT), "requester: no SUBACK"

    def request(self, topic: str, payload: bytes, qos: int, correlation: bytes) -> None:
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.reply_to
        props.CorrelationData = correlation
        self.client.publish(topic, payload, qos, False, props).wait_for_publish(TIMEOUT)

    def answer(self) -> mqtt.MQTTMessage:
        return self.answers.get(timeout=TIMEOUT)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_answers_matched_to_requests_by_correlation_data(broker: Broker, responder: str) -> None:
    requester = Requester(broker.port, "replies/requester-1")
    try:
        # Binary correlation data, zero bytes included; all three in flight at once.
        sent = {bytes([0, n, 0xFF, 0]): (f"req-{n}".encode(), n) for n in range(3)}
        for correlation, (payload, qos) in sent.items():
            requester.request(f"svc/echo/{qos}", payload, qos, correlation)
        answers = {}
        for _ in sent:
            msg = requester.answer()
            assert msg.topic == "replies/requester-1"
            assert msg.properties.UserProperty == [("responder", responder)]
            answers[msg.properties.CorrelationData] = (msg.payload, msg.qos)
        assert answers == {cd: (b"re:" + payload, qos) for cd, (payload, qos) in sent.items()}
    finally:
        requester.stop()


@pytest.mark.parametrize("tool", ["mosquitto_rr", "rr"])
def test_rr_tools_against_each_broker(broker: Broker, responder: str, tool: str) -> None:
    """mosquitto_rr and m2mhub rr as the requester; the -F line shows the answer's topic,
    correlation data (copied from -D), user property and payload."""
    done = run_tool(
        tool,
        *("-p", str(broker.port), "-t", "svc/time", "-e", f"replies/{tool}", "-m", "now"),
        *("-q", "1", "-D", "publish", "correlation-data", "corr-∂", "-F", "%t|%D|%P|%q|%p"),
    )
    assert (done.code, done.err) == (0, "")
    assert done.out == f"replies/{tool}|corr-∂|responder:{responder}|1|re:now\n"


@pytest.mark.parametrize("tool", ["mosquitto_rr", "rr"])
def test_rr_tools_time_out_without_a_responder(broker: Broker, tool: str) -> None:
    done = run_tool(
        tool,
        "-p",
        str(broker.port),
        "-t",
        "nobody/home",
        "-e",
        "replies/none",
        "-m",
        "x",
        "-W",
        "1",
    )
    assert (done.code, done.out, done.err) == (27, "", "Timed out\n")
