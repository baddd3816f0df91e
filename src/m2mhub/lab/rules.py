"""What the MQTT 3.1.1 specification says a subscriber receives, rule by rule.

Each function returns ``(deliveries, why)``. The rules used:

- A message is delivered at QoS min(publish QoS, subscription QoS) [MQTT-3.8.4-6].
- A clean session ends with the connection, subscriptions included [MQTT-3.1.2-6].
- A persistent session keeps the subscriptions and stores QoS 1 and 2 messages for the
  offline client; QoS 0 messages need not be stored [MQTT-3.1.2-5] (mosquitto does not).
- A new subscription receives the topic's retained message with RETAIN 1 [MQTT-3.3.1-6];
  an established subscription gets RETAIN 0 [MQTT-3.3.1-9]; a new retained message replaces
  the old one [MQTT-3.3.1-5]; an empty retained message clears it [MQTT-3.3.1-10/11].
- The will is published when the connection ends without DISCONNECT [MQTT-3.1.2-8], and
  discarded on DISCONNECT [MQTT-3.1.2-10].
"""

from __future__ import annotations

from m2mhub.lab.results import Delivery

Expectation = tuple[list[Delivery], str]


def offline_publish(payload: str, pub_qos: int, sub_qos: int, persistent: bool) -> Expectation:
    """Subscribe, disconnect, publish, reconnect."""
    qos = min(pub_qos, sub_qos)
    if not persistent:
        return [], "clean session: the subscription ended with the connection"
    if qos == 0:
        return [], f"delivered at QoS min({pub_qos},{sub_qos}) = 0: not queued while offline"
    return [
        Delivery(payload, qos)
    ], f"persistent session queues QoS min({pub_qos},{sub_qos}) = {qos}"


def retained_late(payloads: list[str], pub_qos: int, sub_qos: int) -> Expectation:
    """Retained messages published in order (empty clears), then a new subscription."""
    kept: str | None = None
    for payload in payloads:
        kept = payload or None
    if kept is None:
        return [], "an empty retained message clears the retained one"
    qos = min(pub_qos, sub_qos)
    why = "the last retained message, RETAIN 1, at QoS min(pub, sub)"
    return [Delivery(kept, qos, retain=True)], why


def live_publish(payload: str, pub_qos: int, sub_qos: int) -> Expectation:
    """A publish reaching a connected subscriber."""
    qos = min(pub_qos, sub_qos)
    return [Delivery(payload, qos)], f"online: delivered at QoS min({pub_qos},{sub_qos}) = {qos}"


def retained_live(payload: str, pub_qos: int, sub_qos: int) -> Expectation:
    """A retained publish reaching an established subscription."""
    return [Delivery(payload, min(pub_qos, sub_qos))], "established subscription: RETAIN 0"


def will(payload: str, will_qos: int, sub_qos: int, retain: bool, crash: bool) -> Expectation:
    """A client with a will ends its connection; ``retain``: the subscriber comes later."""
    if not crash:
        return [], "DISCONNECT discards the will"
    qos = min(will_qos, sub_qos)
    if retain:
        return [Delivery(payload, qos, retain=True)], "retained will, new subscription: RETAIN 1"
    return [Delivery(payload, qos)], "connection lost without DISCONNECT: the will is published"
