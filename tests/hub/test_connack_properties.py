"""CONNACK properties and the limits they announce: Maximum QoS (``max_qos``), Retain Available,
Wildcard / Subscription Identifier / Shared Subscription Available, Response Information,
Request Problem Information."""

from __future__ import annotations

from m2mhub.mqtt.packets import (
    Connack,
    Disconnect,
    Publish,
    Subscribe,
    SubscriptionOptions,
    Will,
)
from tests.hub.harness import Hub

MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
WILDCARD_AVAILABLE = 0x28
SUBSCRIPTION_ID_AVAILABLE = 0x29
SHARED_AVAILABLE = 0x2A
RESPONSE_INFORMATION = 0x1A
REASON = 0x1F


def _connack(hub: Hub, client_id: str = "c", **connect: object) -> Connack:
    c = hub.client(client_id, level=5)
    ack = c.connect(**connect)  # type: ignore[arg-type]
    assert isinstance(ack, Connack)
    return ack


def test_defaults_announce_everything_available() -> None:
    props = _connack(Hub()).properties
    # Absent means available (or QoS 2) in MQTT 5; we say the optional ones explicitly.
    assert MAXIMUM_QOS not in props and RETAIN_AVAILABLE not in props
    assert WILDCARD_AVAILABLE not in props  # wildcards work: absent means 1
    assert props[SUBSCRIPTION_ID_AVAILABLE] == 1 and props[SHARED_AVAILABLE] == 1


def test_retain_unavailable_is_announced() -> None:
    assert _connack(Hub(retain_available=False)).properties[RETAIN_AVAILABLE] == 0


def test_max_qos_is_announced_and_publish_above_it_disconnects_with_0x9b() -> None:
    hub = Hub(max_qos=1)
    c = hub.client("c", level=5)
    ack = c.connect()
    assert isinstance(ack, Connack) and ack.properties[MAXIMUM_QOS] == 1
    c.publish("t", b"x", qos=1)
    c.send(Publish("t", b"x", 2, packet_id=2))
    assert c.received() == [Disconnect(0x9B, {REASON: "QoS above the maximum QoS 1"})]
    assert c.closed
    assert hub.lines[-2:] == [
        "Too high QoS in PUBLISH from c, disconnecting.",
        "Bad socket read/write on client c: Requested QoS not supported on server.",
    ]


def test_max_qos_0_refuses_qos_1_from_311_by_closing() -> None:
    hub = Hub(max_qos=0)
    c = hub.connected("c")
    c.send(Publish("t", b"x", 1, packet_id=1))
    assert c.received() == [] and c.closed


def test_subscribe_is_granted_at_most_max_qos_and_delivered_so() -> None:
    hub = Hub(max_qos=1)
    for level in (4, 5):
        c = hub.connected(f"s{level}", level=level)
        c.send(Subscribe(1, [("t", SubscriptionOptions(qos=2)), ("u", SubscriptionOptions(0))]))
        (suback,) = c.received()
        assert suback.reason_codes == [1, 0]  # type: ignore[union-attr]
    assert "\tt (QoS 1)" in hub.lines and "s4 1 t" in hub.lines
    # What is stored is what was granted (upgrade_outgoing_qos would use it).
    assert hub.broker.sessions["s5"].subscriptions["t"].qos == 1


def test_will_above_max_qos_is_refused() -> None:
    hub = Hub(max_qos=1)
    c5 = hub.client("w5", level=5)
    ack = c5.connect(will=Will("w", b"x", qos=2))
    assert ack == Connack(
        False, 0x9B, {MAXIMUM_QOS: 1, REASON: "will QoS 2 above the maximum QoS 1"}
    )
    assert c5.closed
    c4 = hub.client("w4", level=4)
    assert c4.connect(will=Will("w", b"x", qos=2)) is None and c4.closed  # 3.1.1: closed
    assert hub.lines[-1] == (
        "Client <unknown> disconnected due to QoS too high or retain not supported."
    )


def test_response_information_on_request() -> None:
    hub = Hub()
    assert _connack(hub, "dev1", properties={0x19: 1}).properties[RESPONSE_INFORMATION] == (
        "response/dev1"
    )
    assert RESPONSE_INFORMATION not in _connack(hub, "dev2").properties
    assert RESPONSE_INFORMATION not in _connack(hub, "dev3", properties={0x19: 0}).properties
    # A client id that cannot be part of a topic gets none.
    assert RESPONSE_INFORMATION not in _connack(hub, "a+b", properties={0x19: 1}).properties


def test_reason_string_on_disconnect_unless_problem_information_is_0() -> None:
    hub = Hub()
    for problem_info, expected in ((None, {REASON: "PUBLISH with QoS 3"}), (0, {})):
        props = {} if problem_info is None else {0x17: problem_info}
        c = hub.connected(f"c{problem_info}", level=5, properties=props)
        c.send_bytes(bytes((0x36, 0x04, 0x00, 0x01, 0x74, 0x00)))  # PUBLISH QoS 3
        assert c.received() == [Disconnect(0x81, expected)]


def test_reason_string_left_out_when_it_would_exceed_maximum_packet_size() -> None:
    hub = Hub()
    c = hub.connected("small", level=5, properties={0x27: 10})
    c.send_bytes(bytes((0x36, 0x04, 0x00, 0x01, 0x74, 0x00)))
    assert c.received() == [Disconnect(0x81, {})]
