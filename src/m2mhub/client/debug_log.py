"""libmosquitto's client debug lines (what ``mosquitto_pub -d`` / ``mosquitto_sub -d`` print).

``packet_log_lines("sending", packet, "Sub1")`` gives the lines libmosquitto logs for that
packet; a SUBSCRIBE or UNSUBSCRIBE gives one line per topic filter, as libmosquitto does.
An empty client id prints as ``(null)``.
"""

from __future__ import annotations

from m2mhub.mqtt.packets import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
)


def client_name(client_id: str) -> str:
    """How libmosquitto names a client in its log: ``(null)`` before it has an id."""
    return client_id or "(null)"


def _publish_details(p: Publish) -> str:
    # An empty topic (MQTT 5, the topic alias alone) is libmosquitto's NULL topic: "(null)".
    return (
        f"(d{int(p.dup)}, q{p.qos}, r{int(p.retain)}, m{p.packet_id or 0}, "
        f"'{p.topic or '(null)'}', ... ({len(p.payload)} bytes))"
    )


def packet_log_lines(direction: str, packet: Packet, client_id: str) -> list[str]:
    """The debug lines for one packet sent (``direction="sending"``) or ``"received"``."""
    who = f"Client {client_name(client_id)} {direction}"
    sending = direction == "sending"
    if isinstance(packet, Publish):
        return [f"{who} PUBLISH {_publish_details(packet)}"]
    if isinstance(packet, Puback):
        if sending:
            return [f"{who} PUBACK (m{packet.packet_id}, rc{packet.reason_code})"]
        return [f"{who} PUBACK (Mid: {packet.packet_id}, RC:{packet.reason_code})"]
    if isinstance(packet, Pubrec):
        if sending:
            return [f"{who} PUBREC (m{packet.packet_id}, rc{packet.reason_code})"]
        return [f"{who} PUBREC (Mid: {packet.packet_id})"]
    if isinstance(packet, Pubrel):
        if sending:
            return [f"{who} PUBREL (m{packet.packet_id})"]
        return [f"{who} PUBREL (Mid: {packet.packet_id})"]
    if isinstance(packet, Pubcomp):
        if sending:
            return [f"{who} PUBCOMP (m{packet.packet_id})"]
        return [f"{who} PUBCOMP (Mid: {packet.packet_id}, RC:{packet.reason_code})"]
    if isinstance(packet, Connack):
        return [f"{who} CONNACK ({packet.reason_code})"]
    if isinstance(packet, Subscribe):
        lines = []
        for topic_filter, o in packet.subscriptions:
            options = (
                (0x04 if o.no_local else 0)
                | (0x08 if o.retain_as_published else 0)
                | (o.retain_handling << 4)
            )
            lines.append(
                f"{who} SUBSCRIBE (Mid: {packet.packet_id}, Topic: {topic_filter}, "
                f"QoS: {o.qos}, Options: 0x{options:02x})"
            )
        return lines
    if isinstance(packet, Unsubscribe):
        return [
            f"{who} UNSUBSCRIBE (Mid: {packet.packet_id}, Topic: {topic_filter})"
            for topic_filter in packet.topic_filters
        ]
    if isinstance(packet, Disconnect) and not sending:
        # libmosquitto's handle__disconnect line names no client.
        return [f"Received DISCONNECT ({packet.reason_code})"]
    if isinstance(packet, Auth) and not sending:
        return [f"{who} AUTH ({packet.reason_code})"]
    if isinstance(packet, (Connect, Suback, Unsuback, Pingreq, Pingresp, Disconnect, Auth)):
        return [f"{who} {packet.packet_type.name}"]
    return [f"{who} {type(packet).__name__.upper()}"]
