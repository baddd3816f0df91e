"""The hub's CoAP face: the hub's resources (:mod:`m2mhub.bridge.resources`) on UDP sockets.

``m2mhub serve`` calls::

    face = await start_coap_face(broker, [("127.0.0.1", 5683), ("::1", 5683)], log)
    ...
    face.close()
    await face.wait_closed()

It also runs the one timer the resources need (``/time`` ticks at each full second) and
writes the engine's log records (bad datagrams, dropped observers, failing handlers) as lines
of the broker's log, gated by its log types (error, warning, information, debug).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from m2mhub.bridge.resources import HubSite, build_hub_site
from m2mhub.coap.endpoint import CoapConfig
from m2mhub.hub.broker import Broker
from m2mhub.net.coap_server import CoapServer, DatagramTap, start_coap_server

#: The engine logs here (bad datagrams, dropped observers, failing handlers).
ENGINE_LOG = logging.getLogger("m2mhub.coap")


class _Log(Protocol):
    """What the face needs of :class:`m2mhub.hub.log.BrokerLog`."""

    notice: bool
    error: bool
    warning: bool
    information: bool
    debug: bool

    def write(self, text: str) -> None: ...


class _ToBrokerLog(logging.Handler):
    """The engine's log records (logger ``m2mhub.coap``) as lines of the broker's log."""

    def __init__(self, log: _Log) -> None:
        super().__init__(logging.DEBUG if log.debug else logging.INFO)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        log = self.log
        level = record.levelno
        wanted = (
            log.error
            if level >= logging.ERROR
            else log.warning
            if level >= logging.WARNING
            else log.information
            if level >= logging.INFO
            else log.debug
        )
        if not wanted:
            return
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f": {type(exc).__name__}: {exc}"
        log.write(text)


class CoapFace:
    """The running CoAP face: sockets, resources and the ``/time`` ticker."""

    def __init__(
        self,
        server: CoapServer,
        site: HubSite,
        ticker: asyncio.Task[None],
        handler: logging.Handler | None = None,
    ) -> None:
        self.server = server
        self.site = site
        self._ticker = ticker
        self._handler = handler

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Bound (host, port) of every socket."""
        return self.server.addresses

    def close(self) -> None:
        if self._handler is not None:
            ENGINE_LOG.removeHandler(self._handler)
            self._handler = None
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
    tap: DatagramTap | None = None,
) -> CoapFace:
    """Serve the hub's CoAP resources on every (host, port); raises OSError if a bind fails.

    ``tap``, if given, sees every datagram received and sent (``m2mhub serve --trace``/``-w``).
    """
    loop = asyncio.get_running_loop()
    site = build_hub_site(broker, loop.time)
    try:
        server = await start_coap_server(site, host_ports, config=config, tap=tap)
    except BaseException:
        site.close()
        raise
    if log is not None and log.notice:
        for host, port in server.addresses:
            family = "ipv6" if ":" in host else "ipv4"
            log.write(f"Opening {family} CoAP socket on port {port}.")
    handler = None
    if log is not None:
        handler = _ToBrokerLog(log)
        ENGINE_LOG.addHandler(handler)
        ENGINE_LOG.setLevel(min(ENGINE_LOG.level or logging.INFO, handler.level))
        ENGINE_LOG.propagate = False
    ticker = loop.create_task(_tick_every_second(site))
    return CoapFace(server, site, ticker, handler)
