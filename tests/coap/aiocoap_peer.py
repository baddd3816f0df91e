"""An aiocoap server used as a peer by the interop tests: /alarm (observable) and /big."""

import asyncio
import sys

import aiocoap
import aiocoap.resource as resource


class Alarm(resource.ObservableResource):
    def __init__(self):
        super().__init__()
        self.state = b"OFF"

    async def render_get(self, request):
        return aiocoap.Message(payload=self.state)

    async def render_put(self, request):
        self.state = request.payload
        self.updated_state()
        return aiocoap.Message(code=aiocoap.CHANGED)


class Big(resource.Resource):
    def __init__(self):
        super().__init__()
        self.body = bytes(range(256)) * 16

    async def render_get(self, request):
        return aiocoap.Message(payload=self.body)

    async def render_put(self, request):
        self.body = request.payload
        return aiocoap.Message(code=aiocoap.CHANGED)


async def main(port):
    root = resource.Site()
    root.add_resource(["alarm"], Alarm())
    root.add_resource(["big"], Big())
    # UDP only: the TCP and WebSocket transports would also want this port number.
    await aiocoap.Context.create_server_context(root, bind=("127.0.0.1", port), transports=["udp6"])
    print("aiocoap server ready", flush=True)
    await asyncio.get_running_loop().create_future()


asyncio.run(main(int(sys.argv[1])))
