"""An in-process broker (and CoAP face) on free loopback ports, for running the lab alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from m2mhub.hub.broker import Broker
from m2mhub.hub.log import BrokerLog
from m2mhub.hub.settings import BrokerSettings
from m2mhub.net.mqtt_server import MqttServer


@asynccontextmanager
async def embedded_hub(coap: bool = False) -> AsyncIterator[tuple[int, int | None]]:
    """Yields ``(mqtt_port, coap_port)``; the CoAP port is None unless ``coap``."""
    loop = asyncio.get_running_loop()
    settings = BrokerSettings()
    log = BrokerLog(types=(), destinations=[])
    broker = Broker(settings, log, authenticator=None, now=loop.time())
    server = MqttServer()
    await server.start(broker, [("127.0.0.1", 0)])
    face = None
    try:
        coap_port = None
        if coap:
            from m2mhub.net.coap_face import start_coap_face

            face = await start_coap_face(broker, [("127.0.0.1", 0)])
            coap_port = face.addresses[0][1]
        yield server.ports[0], coap_port
    finally:
        if face is not None:
            face.close()
            await face.wait_closed()
        await server.close()
