"""paho-mqtt (2.x, callback API version 2) against each broker."""

from __future__ import annotations

import queue
import socket
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.interop.conftest import Broker

pytestmark = pytest.mark.interop

TIMEOUT = 10.0


class Paho:
    """A paho client running its network loop in a thread, with events to wait on."""

    def __init__(
        self,
        port: int,
        client_id: str = "",
        *,
        clean_session: bool = True,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
        will: tuple[str, bytes, int, bool] | None = None,
        properties: Any = None,  # 5.0 CONNECT properties (paho.mqtt.properties.Properties)
    ) -> None:
        kwargs: dict[str, Any] = {}
        if protocol != MQTTProtocolVersion.MQTTv5:
            kwargs["clean_session"] = clean_session
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            reconnect_on_failure=False,
            **kwargs,
        )
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.subscribed = threading.Event()
        self.session_present: bool | None = None
        self.reason: Any = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        if will is not None:
            self.client.will_set(will[0], will[1], will[2], will[3])
        if protocol == MQTTProtocolVersion.MQTTv5:
            # 5.0: clean_session=False resumes the session (Clean Start 0).
            kwargs = {"clean_start": clean_session, "properties": properties}
        else:
            kwargs = {}
        self.client.connect("127.0.0.1", port, keepalive=60, **kwargs)
        self.client.loop_start()
        assert self.connected.wait(TIMEOUT), "no CONNACK"

    def _on_connect(self, _c: Any, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        self.session_present = bool(flags.session_present)
        self.reason = reason
        self.connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.reason = reason
        self.disconnected.set()

    def subscribe(self, topic: str, qos: int) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos)
        assert self.subscribed.wait(TIMEOUT), "no SUBACK"

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos, retain)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()

    def next_message(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=TIMEOUT)

    def until(self, publisher: Paho, topic: str) -> list[mqtt.MQTTMessage]:
        """Messages that arrive before a QoS 2 sentinel that ``publisher`` sends on ``topic``."""
        sentinel = f"SENTINEL-{uuid.uuid4().hex[:8]}".encode()
        publisher.publish(topic, sentinel, 2)
        got = []
        while (msg := self.next_message()).payload != sentinel:
            got.append(msg)
        return got

    def disconnect(self) -> None:
        self.client.disconnect()
        assert self.disconnected.wait(TIMEOUT)
        self.client.loop_stop()

    def drop(self) -> None:
        """Close the TCP connection without DISCONNECT."""
        sock = self.client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        assert self.disconnected.wait(TIMEOUT)
        self.client.loop_stop()


@pytest.mark.parametrize("sub_qos", [0, 1, 2])
@pytest.mark.parametrize("pub_qos", [0, 1, 2])
def test_qos_both_directions(broker: Broker, pub_qos: int, sub_qos: int) -> None:
    sub = Paho(broker.port)
    pub = Paho(broker.port)
    try:
        sub.subscribe("paho/qos", sub_qos)
        pub.publish("paho/qos", b"payload", pub_qos)
        msg = sub.next_message()
        assert (msg.topic, msg.payload, msg.qos, msg.retain) == (
            "paho/qos",
            b"payload",
            min(pub_qos, sub_qos),
            False,
        )
        assert sub.until(pub, "paho/qos") == []  # exactly once, no duplicate
    finally:
        sub.disconnect()
        pub.disconnect()


@pytest.mark.parametrize(
    "protocol",
    [MQTTProtocolVersion.MQTTv31, MQTTProtocolVersion.MQTTv311, MQTTProtocolVersion.MQTTv5],
    ids=["3.1", "3.1.1", "5.0"],
)
def test_protocol_versions_round_trip(broker: Broker, protocol: MQTTProtocolVersion) -> None:
    client = Paho(broker.port, f"ver-{protocol.value}", protocol=protocol)
    try:
        client.subscribe("paho/ver", 2)
        client.publish("paho/ver", b"to myself", 1)
        msg = client.next_message()
        assert (msg.topic, msg.payload, msg.qos) == ("paho/ver", b"to myself", 1)
    finally:
        client.disconnect()


def test_persistent_session(broker: Broker) -> None:
    first = Paho(broker.port, "paho-persist", clean_session=False)
    assert first.session_present is False
    first.subscribe("paho/persist", 2)
    first.disconnect()
    pub = Paho(broker.port)
    try:
        pub.publish("paho/persist", b"q1", 1)
        pub.publish("paho/persist", b"q2", 2)
        pub.publish("paho/persist", b"q0", 0)
        again = Paho(broker.port, "paho-persist", clean_session=False)
        try:
            assert again.session_present is True
            # No new SUBSCRIBE: the stored subscription delivers the sentinel too.
            got = sorted((m.payload, m.qos) for m in again.until(pub, "paho/persist"))
            assert got == [(b"q1", 1), (b"q2", 2)]
        finally:
            again.disconnect()
        clean = Paho(broker.port, "paho-persist", clean_session=True)
        assert clean.session_present is False
        clean.disconnect()
    finally:
        pub.disconnect()


def test_retained(broker: Broker) -> None:
    pub = Paho(broker.port)
    try:
        pub.publish("paho/ret", b"old", 1, retain=True)
        pub.publish("paho/ret", b"new", 2, retain=True)
        sub = Paho(broker.port)
        try:
            sub.subscribe("paho/+", 2)
            msg = sub.next_message()
            assert (msg.topic, msg.payload, msg.qos, msg.retain) == ("paho/ret", b"new", 2, True)
            pub.publish("paho/ret", b"", 1, retain=True)  # clears it
            live = sub.next_message()
            assert (live.payload, live.retain) == (b"", False)
        finally:
            sub.disconnect()
        late = Paho(broker.port)
        try:
            late.subscribe("paho/ret", 1)
            assert late.until(pub, "paho/ret") == []
        finally:
            late.disconnect()
    finally:
        pub.disconnect()


def test_will_on_ungraceful_close_not_on_disconnect(broker: Broker) -> None:
    watcher = Paho(broker.port)
    try:
        watcher.subscribe("paho/will/#", 2)
        polite = Paho(broker.port, "polite", will=("paho/will/polite", b"bye", 1, False))
        polite.disconnect()
        rude = Paho(broker.port, "rude", will=("paho/will/rude", b"gone", 1, True))
        rude.drop()
        msg = watcher.next_message()
        assert (msg.topic, msg.payload, msg.qos, msg.retain) == (
            "paho/will/rude",
            b"gone",
            1,
            False,
        )
        assert watcher.until(watcher, "paho/will/end") == []
    finally:
        watcher.disconnect()
    late = Paho(broker.port)
    try:
        late.subscribe("paho/will/#", 2)
        msg = late.next_message()
        assert (msg.topic, msg.payload, msg.qos, msg.retain) == ("paho/will/rude", b"gone", 1, True)
    finally:
        late.disconnect()


def test_takeover_by_same_client_id(broker: Broker) -> None:
    old = Paho(broker.port, "same-id")
    old.subscribe("paho/take", 1)
    new = Paho(broker.port, "same-id")
    try:
        assert old.disconnected.wait(TIMEOUT), "the old connection was not closed"
        old.client.loop_stop()
        new.subscribe("paho/take", 1)
        new.publish("paho/take", b"still works", 1)
        assert new.next_message().payload == b"still works"
        assert old.messages.empty()
    finally:
        new.disconnect()
