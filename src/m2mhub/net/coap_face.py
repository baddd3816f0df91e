"""The hub's CoAP face: the hub's resources (:mod:`m2mhub.bridge.resources`) on UDP sockets.

``m2mhub serve`` calls::

    face = await start_coap_face(broker, [("127.0.0.1", 5683), ("::1", 5683)], log)
    ...
    face.close()
    await face.wait_closed()

It also runs the one timer the resources need: ``/time`` ticks at each full second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

from m2mhub.bridge.resources import HubSite, build_hub_site
from m2mhub.coap.endpoint import CoapConfig
from m2mhub.hub.broker import Broker
from m2mhub.net.coap_server import CoapServer, start_coap_server


class _Log(Protocol):
    notice: bool

    def write(self, text: str) -> None: ...


class CoapFace:
    """The running CoAP face: sockets, resources and the ``/time`` ticker."""

    def __init__(self, server: CoapServer, site: HubSite, ticker: asyncio.Task[None]) -> None:
        self.server = server
        self.site = site
        self._ticker = ticker

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Bound (host, port) of every socket."""
        return self.server.addresses

    def close(self) -> None:
        self._ticker.cancel()
        self.site.close()
        self.server.close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticker
        await self.server.wait_closed()


async def _tick_every_second(site: HubSite) -> None:
    while True:
        now = time.time()
        await asyncio.sleep(1.0 - (now % 1.0) + 0.001)
        site.time.tick()


async def start_coap_face(
    broker: Broker,
    host_ports: list[tuple[str, int]],
    log: _Log | None = None,
    *,
    config: CoapConfig | None = None,
) -> CoapFace:
    """Serve the hub's CoAP resources on every (host, port); raises OSError if a bind fails."""
    loop = asyncio.get_running_loop()
    site = build_hub_site(broker, loop.time)
    try:
        server = await start_coap_server(site, host_ports, config=config)
    except BaseException:
        site.close()
        raise
    if log is not None and log.notice:
        for host, port in server.addresses:
            family = "ipv6" if ":" in host else "ipv4"
            log.write(f"Opening {family} CoAP socket on port {port}.")
    ticker = loop.create_task(_tick_every_second(site))
    return CoapFace(server, site, ticker)
