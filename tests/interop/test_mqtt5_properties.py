"""MQTT 5 PUBLISH properties passed through unchanged, mosquitto and m2mhub alike.

paho-mqtt's 5.0 client and ``mosquitto_pub/sub -V 5 -D ... -F`` publish with every property a
publisher may set; the subscriber must see each one as it was sent: through QoS 0/1/2, retained
delivery, a queue for an offline persistent session, a will, a shared subscription. A 3.1.1
subscriber gets the message without them.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from tests.interop import cli
from tests.interop.conftest import Broker

pytestmark = pytest.mark.interop

TIMEOUT = 10.0
V5 = MQTTProtocolVersion.MQTTv5

# What a subscriber may see of a message's properties, by paho's names.
PASSED = (
    "PayloadFormatIndicator",
    "MessageExpiryInterval",
    "ContentType",
    "ResponseTopic",
    "CorrelationData",
    "UserProperty",
    "SubscriptionIdentifier",
)

USER_PROPERTIES = [("k", "v"), ("a", "1"), ("k", "v"), ("k", "v2"), ("ünï", "cødé ✓")]
CORRELATION = b"\x00req-1\x00\xff\x00"


def publish_properties(
    expiry: int | None = 3600, packet: int = PacketTypes.PUBLISH, **extra: Any
) -> Properties:
    """Every property a publisher may set (Topic Alias aside), unless overridden."""
    props = Properties(packet)
    props.PayloadFormatIndicator = 1
    if expiry is not None:
        props.MessageExpiryInterval = expiry
    props.ContentType = "application/json; charset=utf-8"
    props.ResponseTopic = "reply/to/me"
    props.CorrelationData = CORRELATION
    for pair in USER_PROPERTIES:
        props.UserProperty = pair  # paho appends each pair
    for name, value in extra.items():
        setattr(props, name, value)
    return props


EXPECTED: dict[str, Any] = {
    "PayloadFormatIndicator": 1,
    "ContentType": "application/json; charset=utf-8",
    "ResponseTopic": "reply/to/me",
    "CorrelationData": CORRELATION,
    "UserProperty": USER_PROPERTIES,
}


def passed(message: mqtt.MQTTMessage) -> dict[str, Any]:
    """The passed-through properties a received message carries (absent ones left out)."""
    props = getattr(message, "properties", None)
    return {name: getattr(props, name) for name in PASSED if hasattr(props, name)}


def without_expiry(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != "MessageExpiryInterval"}


class Client5:
    """A paho 5.0 client with its network loop in a thread and events to wait on."""

    def __init__(
        self,
        port: int,
        client_id: str = "",
        *,
        session_expiry: int = 0,
        clean_start: bool = True,
        will: tuple[str, bytes, int, bool, Properties] | None = None,
        protocol: MQTTProtocolVersion = V5,
    ) -> None:
        kwargs: dict[str, Any] = {} if protocol == V5 else {"clean_session": True}
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
        self.session_present = False
        self.acks: dict[int, int] = {}  # mid -> reason code of its PUBACK/PUBREC/PUBCOMP
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_a: self.disconnected.set()
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_publish = self._on_publish
        if will is not None:
            self.client.will_set(*will)
        connect_props = None
        if protocol == V5:
            connect_props = Properties(PacketTypes.CONNECT)
            connect_props.SessionExpiryInterval = session_expiry
            kwargs = {"clean_start": clean_start, "properties": connect_props}
        else:
            kwargs = {}
        self.client.connect("127.0.0.1", port, keepalive=60, **kwargs)
        self.client.loop_start()
        assert self.connected.wait(TIMEOUT), "no CONNACK"

    def _on_connect(self, _c: Any, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        self.session_present = bool(flags.session_present)
        self.connected.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        self.acks[mid] = int(reason.value) if hasattr(reason, "value") else int(reason)

    def subscribe(self, topic: str, qos: int, sub_id: int | None = None) -> None:
        props = None
        if sub_id is not None:
            props = Properties(PacketTypes.SUBSCRIBE)
            props.SubscriptionIdentifier = sub_id
        self.subscribed.clear()
        if self.client.protocol == V5:
            self.client.subscribe(topic, options=SubscribeOptions(qos=qos), properties=props)
        else:
            self.client.subscribe(topic, qos)
        assert self.subscribed.wait(TIMEOUT), "no SUBACK"

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> int:
        """Publish and wait until the QoS flow is over; the ack's reason code (0 for QoS 0)."""
        info = self.client.publish(topic, payload, qos, retain, properties)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()
        return self.acks.get(info.mid, 0)

    def next_message(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=TIMEOUT)

    def disconnect(self) -> None:
        self.client.disconnect()
        assert self.disconnected.wait(TIMEOUT)
        self.client.loop_stop()

    def drop(self) -> None:
        """Close the TCP connection without DISCONNECT (the broker sends the will)."""
        sock = self.client.socket()
        assert sock is not None
        sock.shutdown(2)
        assert self.disconnected.wait(TIMEOUT)
        self.client.loop_stop()


def assert_expiry_then_rest(got: dict[str, Any], sent_expiry: int) -> None:
    """The expiry is the time left: never more than sent, less by the seconds the message
    waited (a loaded machine may take a while; tests/hub counts them with a fake clock)."""
    assert sent_expiry - 60 <= got["MessageExpiryInterval"] <= sent_expiry
    assert without_expiry(got) == {**EXPECTED, "SubscriptionIdentifier": [5]}


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_every_property_passes_through_unchanged(broker: Broker, qos: int) -> None:
    sub = Client5(broker.port)
    pub = Client5(broker.port)
    sub.subscribe("props/#", 2, sub_id=5)
    assert pub.publish("props/qos", b'{"n": 1}', qos, properties=publish_properties()) == 0
    msg = sub.next_message()
    assert (msg.topic, msg.payload, msg.qos) == ("props/qos", b'{"n": 1}', qos)
    assert_expiry_then_rest(passed(msg), 3600)
    sub.disconnect()
    pub.disconnect()


def test_no_properties_sent_gives_none_received(broker: Broker) -> None:
    sub = Client5(broker.port)
    pub = Client5(broker.port)
    sub.subscribe("props/none", 1)
    pub.publish("props/none", b"bare", 1)
    assert passed(sub.next_message()) == {}
    sub.disconnect()
    pub.disconnect()


def test_message_expiry_interval_zero_is_not_sent(broker: Broker) -> None:
    """0 means the message does not expire: mosquitto sends no interval then, and neither do we
    (it used to go out as 0, and a queued copy expired at once)."""
    sub = Client5(broker.port, "exp0", session_expiry=300)
    sub.subscribe("props/exp0", 1)
    pub = Client5(broker.port)
    pub.publish("props/exp0", b"live", 1, properties=publish_properties(expiry=0))
    assert passed(sub.next_message()) == EXPECTED
    sub.disconnect()
    pub.publish("props/exp0", b"queued", 1, properties=publish_properties(expiry=0))
    back = Client5(broker.port, "exp0", session_expiry=0, clean_start=False)
    assert back.session_present
    msg = back.next_message()
    assert (msg.payload, passed(msg)) == (b"queued", EXPECTED)
    back.disconnect()
    pub.disconnect()


def test_retained_message_keeps_its_properties(broker: Broker) -> None:
    pub = Client5(broker.port)
    pub.publish("props/ret", b"kept", 1, retain=True, properties=publish_properties())
    sub = Client5(broker.port)
    sub.subscribe("props/ret", 1, sub_id=5)
    msg = sub.next_message()
    assert (msg.payload, bool(msg.retain)) == (b"kept", True)
    assert_expiry_then_rest(passed(msg), 3600)
    pub.publish("props/ret", b"", 1, retain=True)
    sub.disconnect()
    pub.disconnect()


def test_expiry_counts_down_and_expired_retained_messages_are_not_sent(broker: Broker) -> None:
    pub = Client5(broker.port)
    pub.publish("props/exp/long", b"long", 1, retain=True, properties=publish_properties(100))
    pub.publish("props/exp/short", b"short", 1, retain=True, properties=publish_properties(1))
    # Both brokers count whole seconds: after 2.2 s the 1 s message is gone for sure, and the
    # other has at most 98 s left (however slow the machine, only ever less).
    time.sleep(2.2)
    sub = Client5(broker.port)
    sub.subscribe("props/exp/#", 1, sub_id=5)
    got = [m for m in until_sentinel(sub, pub, "props/exp/sentinel") if m.retain]
    assert [m.payload for m in got] == [b"long"]
    props = passed(got[0])
    assert props["MessageExpiryInterval"] <= 98
    assert without_expiry(props) == {**EXPECTED, "SubscriptionIdentifier": [5]}
    pub.publish("props/exp/long", b"", 1, retain=True)
    sub.disconnect()
    pub.disconnect()


def until_sentinel(sub: Client5, pub: Client5, topic: str) -> list[mqtt.MQTTMessage]:
    """What ``sub`` receives before a QoS 2 sentinel ``pub`` sends on ``topic``."""
    pub.publish(topic, b"SENTINEL", 2)
    got = []
    while (msg := sub.next_message()).payload != b"SENTINEL":
        got.append(msg)
    return got


def test_offline_queued_message_keeps_its_properties(broker: Broker) -> None:
    sub = Client5(broker.port, "props-offline", session_expiry=300)
    sub.subscribe("props/offline", 2, sub_id=5)
    sub.disconnect()
    pub = Client5(broker.port)
    for qos in (1, 2):
        pub.publish("props/offline", f"q{qos}".encode(), qos, properties=publish_properties())
    back = Client5(broker.port, "props-offline", clean_start=False)
    assert back.session_present
    for qos in (1, 2):
        msg = back.next_message()
        assert (msg.payload, msg.qos) == (f"q{qos}".encode(), qos)
        assert_expiry_then_rest(passed(msg), 3600)
    back.disconnect()
    pub.disconnect()


def test_will_properties_are_passed_on(broker: Broker) -> None:
    watcher = Client5(broker.port)
    watcher.subscribe("props/will/#", 1, sub_id=5)
    will_props = publish_properties(packet=PacketTypes.WILLMESSAGE)
    dying = Client5(
        broker.port, "props-dying", will=("props/will/x", b"gone", 1, False, will_props)
    )
    dying.drop()
    msg = watcher.next_message()
    assert (msg.topic, msg.payload) == ("props/will/x", b"gone")
    assert_expiry_then_rest(passed(msg), 3600)
    watcher.disconnect()


def test_shared_subscription_member_gets_the_properties(broker: Broker) -> None:
    member = Client5(broker.port)
    member.subscribe("$share/grp/props/shared", 1, sub_id=5)
    pub = Client5(broker.port)
    pub.publish("props/shared", b"one", 1, properties=publish_properties())
    msg = member.next_message()
    assert (msg.topic, msg.payload) == ("props/shared", b"one")
    assert_expiry_then_rest(passed(msg), 3600)
    member.disconnect()
    pub.disconnect()


def test_a_311_subscriber_gets_the_message_without_properties(broker: Broker) -> None:
    """Properties encoded into a 3.1.1 PUBLISH would show up as bytes before the payload."""
    old = Client5(broker.port, protocol=MQTTProtocolVersion.MQTTv311)
    old.subscribe("props/old", 2)
    pub = Client5(broker.port)
    for qos in (0, 1, 2):
        pub.publish("props/old", f"q{qos}".encode(), qos, properties=publish_properties())
        msg = old.next_message()
        assert (msg.payload, msg.qos) == (f"q{qos}".encode(), qos)
    old.disconnect()
    pub.disconnect()


def test_payload_format_indicator_with_bytes_that_are_not_utf8(broker: Broker) -> None:
    """mosquitto 2.0.11 passes such a payload on; MQTT 5.0 3.3.2.3.2 lets the receiver check
    it, and m2mhub does: the PUBACK says 0x99 (payload format invalid) and nobody gets it."""
    sub = Client5(broker.port)
    sub.subscribe("props/pfi", 1)
    pub = Client5(broker.port)
    code = pub.publish("props/pfi", b"\xff\xfe", 1, properties=publish_properties())
    got = until_sentinel(sub, pub, "props/pfi")
    if broker.kind == "mosquitto":
        assert code == 0
        assert [m.payload for m in got] == [b"\xff\xfe"]
    else:
        assert code == 0x99
        assert got == []
    sub.disconnect()
    pub.disconnect()


# mosquitto_sub's -F fields for each property; "|" separates them.
FORMAT = "%F|%E|%C|%R|%D|%P|%S|%q|%p"


def test_mosquitto_pub_properties_reach_mosquitto_sub(broker: Broker) -> None:
    sub = cli.start_sub(broker.port, "-V", "5", "-t", "props/cli/#", "-q", "2", "-F", FORMAT)
    try:
        cli.pub(
            broker.port,
            "-V",
            "5",
            "-t",
            "props/cli/a",
            "-q",
            "1",
            "-m",
            "hello",
            *("-D", "publish", "payload-format-indicator", "1"),
            *("-D", "publish", "content-type", "text/plain"),
            *("-D", "publish", "response-topic", "props/cli/reply"),
            *("-D", "publish", "correlation-data", "corr-7"),
            *("-D", "publish", "user-property", "k", "v"),
            *("-D", "publish", "user-property", "k", "v"),
            *("-D", "publish", "user-property", "ünï", "✓ x"),
        )
        # mosquitto_sub prints a QoS 2 message at its PUBREL: one message at a time keeps order.
        sub.wait_for_line("|hello")
        cli.pub(broker.port, "-V", "5", "-t", "props/cli/b", "-q", "2", "-m", "plain")
        sub.wait_for_line("|plain")
        cli.pub(
            broker.port,
            *("-t", "props/cli/c", "-q", "0", "-m", "zero-expiry"),
            *("-D", "publish", "message-expiry-interval", "0"),
        )
        sub.wait_for_line("zero-expiry")
        lines = [line for line in sub.lines if line.count("|") >= 8]
        assert lines == [
            "1||text/plain|props/cli/reply|corr-7|k:v k:v ünï:✓ x||1|hello",
            "|||||||2|plain",
            "|||||||0|zero-expiry",
        ]
    finally:
        cli.interrupt(sub)


def test_mosquitto_sub_shows_subscription_identifier_and_expiry(broker: Broker) -> None:
    sub = cli.start_sub(
        broker.port,
        *("-V", "5", "-t", "props/sid", "-q", "1", "-F", "SID|%S|%E|%p"),
        *("-D", "subscribe", "subscription-identifier", "42"),
    )
    try:
        pub = Client5(broker.port)
        pub.publish("props/sid", b"x", 1, properties=publish_properties(expiry=600))
        pub.disconnect()
        _, sid, expiry, payload = sub.wait_for_line("SID|").split("|")
        assert (sid, payload) == ("42", "x")
        assert 540 <= int(expiry) <= 600
    finally:
        cli.interrupt(sub)


CLI_FORMAT = "%r|%F|%C|%R|%D|%P|%q|%p"


def test_mosquitto_clients_retained_queued_and_will(broker: Broker) -> None:
    """The same with mosquitto_pub/sub alone: a retained message, one queued for an offline
    persistent session, and a will with its properties (-D will ...)."""
    port = broker.port
    props = ["-D", "publish", "content-type", "text/x", "-D", "publish", "correlation-data"]
    props += ["c1", "-D", "publish", "user-property", "a", "1", "-D", "publish"]
    props += ["user-property", "a", "2", "-D", "publish", "response-topic", "props/r"]
    cli.pub(port, "-V", "5", "-t", "props/cli2/ret", "-q", "1", "-r", "-m", "kept", *props)
    cli.subscribe_and_leave(
        port, "-V", "5", "-c", "-i", "props-cli-off", "-t", "props/q", "-q", "1"
    )
    cli.pub(port, "-V", "5", "-t", "props/q", "-q", "2", "-m", "queued", *props)
    watcher = cli.start_sub(port, "-V", "5", "-t", "props/cli2/#", "-q", "2", "-F", CLI_FORMAT)
    dying = None
    back = None
    try:
        assert watcher.wait_for_line("|kept") == "1||text/x|props/r|c1|a:1 a:2|1|kept"
        dying = cli.start_sub(
            port,
            *("-V", "5", "-t", "props/nothing", "--will-topic", "props/cli2/will"),
            *("--will-payload", "gone", "--will-qos", "1"),
            *("-D", "will", "payload-format-indicator", "1", "-D", "will", "content-type", "w"),
            *("-D", "will", "correlation-data", "cw", "-D", "will", "user-property", "ü", "✓"),
        )
        cli.kill9(dying)
        assert watcher.wait_for_line("|gone") == "0|1|w||cw|ü:✓|1|gone"
        back = cli.start_sub(
            *(port, "-V", "5", "-c", "-i", "props-cli-off", "-t", "props/q", "-q", "1"),
            *("-F", CLI_FORMAT),
        )
        assert back.wait_for_line("|queued") == "0||text/x|props/r|c1|a:1 a:2|1|queued"
    finally:
        for proc in (watcher, dying, back):
            if proc is not None:
                cli.interrupt(proc)
        cli.pub(port, "-t", "props/cli2/ret", "-r", "-n")
