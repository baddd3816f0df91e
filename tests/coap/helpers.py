"""Fake clock, a test site and helpers to drive a sans-IO CoAP endpoint."""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any

from m2mhub.coap import Code, Message, ObservableResource, Resource, Site
from m2mhub.coap.endpoint import CoapConfig, Endpoint
from m2mhub.coap.message import decode

CLIENT = ("127.0.0.1", 40000)
OTHER = ("127.0.0.1", 40001)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Gate:
    """An awaitable that suspends until ``open(value)``; drives handlers that really wait."""

    def __init__(self) -> None:
        self.value: Any = None
        self.opened = False

    def open(self, value: Any) -> None:
        self.value = value
        self.opened = True

    def __await__(self) -> Generator[Any, None, Any]:
        while not self.opened:
            yield self
        return self.value


class Alarm(ObservableResource):
    rt = "alarm"
    title = "The lab alarm"
    ct = 0

    def __init__(self) -> None:
        super().__init__()
        self.state = b"OFF"
        self.changes: list[tuple[tuple[str, ...], int]] = []

    async def render_get(self, request: Message) -> Message:
        return Message(payload=self.state, content_format=0, etag=b"e-" + self.state)

    async def render_put(self, request: Message) -> Message:
        self.state = request.payload
        self.updated_state()
        return Message(code=Code.CHANGED)

    def observation_changed(self, subpath: tuple[str, ...], count: int) -> None:
        self.changes.append((subpath, count))


class Counter(Resource):
    rt = "counter"
    accepted_formats = frozenset({0})

    def __init__(self) -> None:
        self.calls = 0
        self.body = b""

    def render_get(self, request: Message) -> Message:
        self.calls += 1
        return Message(payload=str(self.calls).encode(), content_format=0)

    def render_post(self, request: Message) -> Message:
        self.body = request.payload
        return Message(code=Code.CHANGED, payload=str(len(request.payload)).encode())


class Big(Resource):
    data = bytes(range(256)) * 12  # 3072 bytes

    def render_get(self, request: Message) -> Message:
        return Message(payload=self.data, content_format=42)


class Slow(Resource):
    def __init__(self) -> None:
        self.gate = Gate()

    async def render_get(self, request: Message) -> Message:
        value: bytes = await self.gate
        return Message(payload=value)


def make_site() -> tuple[Site, dict[str, Any]]:
    site = Site()
    res: dict[str, Any] = {
        "alarm": Alarm(),
        "counter": Counter(),
        "big": Big(),
        "slow": Slow(),
    }
    for name, r in res.items():
        site.add_resource((name,), r)
    return site, res


def make_endpoint(
    config: CoapConfig | None = None,
) -> tuple[Endpoint, FakeClock, dict[str, Any]]:
    clock = FakeClock()
    site, res = make_site()
    ep = Endpoint(site, clock=clock, rng=random.Random(7), config=config)
    return ep, clock, res


def take(ep: Endpoint) -> list[tuple[Message, Any]]:
    out = [(decode(data), peer) for data, peer in ep.outbox]
    ep.outbox.clear()
    return out


def take_raw(ep: Endpoint) -> list[bytes]:
    out = [data for data, _ in ep.outbox]
    ep.outbox.clear()
    return out
