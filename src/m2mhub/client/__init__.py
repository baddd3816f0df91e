"""Clients: an asyncio MQTT client (``from m2mhub.client import MQTTClient``) and CoAP."""

from m2mhub.client.mqtt import (
    ConnectionLostError,
    ConnectionRefusedByBroker,
    Message,
    MQTTClient,
    MQTTClientError,
    PublishFailed,
    Will,
)

__all__ = [
    "ConnectionLostError",
    "ConnectionRefusedByBroker",
    "MQTTClient",
    "MQTTClientError",
    "Message",
    "PublishFailed",
    "Will",
]
