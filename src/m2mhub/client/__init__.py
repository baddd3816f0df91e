"""Clients: an asyncio MQTT client (``from m2mhub.client import MQTTClient``) and CoAP.

The MQTT names load on first use, so importing ``m2mhub.client.coap`` does not pay for the
MQTT client and codec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from m2mhub.client.mqtt import (
        AuthenticationError,
        BrokerDisconnected,
        ConnectionLostError,
        ConnectionRefusedByBroker,
        Message,
        MQTTClient,
        MQTTClientError,
        MQTTProperties,
        PublishFailed,
        PublishNotAllowed,
        PublishResult,
        SubscribeResult,
        UnsubscribeResult,
        Will,
    )

__all__ = [
    "AuthenticationError",
    "BrokerDisconnected",
    "ConnectionLostError",
    "ConnectionRefusedByBroker",
    "MQTTClient",
    "MQTTClientError",
    "MQTTProperties",
    "Message",
    "PublishFailed",
    "PublishNotAllowed",
    "PublishResult",
    "SubscribeResult",
    "UnsubscribeResult",
    "Will",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from m2mhub.client import mqtt

        return getattr(mqtt, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
