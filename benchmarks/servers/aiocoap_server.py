#!/usr/bin/env python3
"""A small aiocoap server for the CoAP benchmark rows: ``aiocoap_server.py PORT``.

It offers what the scenarios use on every server: ``/bench/get`` and ``/bench/obs``, each an
observable resource whose state a PUT (or POST) replaces and a GET returns, so mqbench's
observers see every update's payload echoed in the notifications. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import sys

import aiocoap
import aiocoap.resource as resource


class EchoState(resource.ObservableResource):
    """GET returns the state; PUT/POST replace it and notify the observers."""

    def __init__(self) -> None:
        super().__init__()
        self.state = b"0123456789abcdef"

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(payload=self.state, content_format=0)

    async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
        self.state = request.payload
        self.updated_state()
        return aiocoap.Message(code=aiocoap.CHANGED)

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        return await self.render_put(request)


async def main(port: int) -> None:
    root = resource.Site()
    root.add_resource(
        [".well-known", "core"], resource.WKCResource(root.get_resources_as_linkheader)
    )
    root.add_resource(["bench", "get"], EchoState())
    root.add_resource(["bench", "obs"], EchoState())
    await aiocoap.Context.create_server_context(root, bind=("127.0.0.1", port))
    await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
