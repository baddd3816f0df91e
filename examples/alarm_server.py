"""The lab's alarm server, written with m2mhub's resource API: PUT ON/OFF and GET.

    python examples/alarm_server.py [--port 5683]
    m2mhub coap -m put -e ON coap://localhost/alarm
    m2mhub coap -m get coap://localhost/alarm

The aiocoap original differs only in the imports and in how the server is started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from m2mhub.coap.message import Message
from m2mhub.coap.options import Code
from m2mhub.coap.resource import BadRequest, Resource, Site
from m2mhub.net.coap_server import start_coap_server


class AlarmResource(Resource):
    """The alarm: ON or OFF."""

    rt = "alarm"
    ct = 0
    title = "Alarm"

    def __init__(self) -> None:
        super().__init__()
        self.state = b"OFF"

    async def render_get(self, request: Message) -> Message:
        return Message(payload=self.state, content_format=0)

    async def render_put(self, request: Message) -> Message:
        state = request.payload.strip().upper()
        if state not in (b"ON", b"OFF"):
            raise BadRequest("the alarm is ON or OFF")
        self.state = state
        print(f"alarm is now {state.decode()}", flush=True)
        return Message(code=Code.CHANGED)


async def main(port: int) -> None:
    site = Site()
    site.add_resource(["alarm"], AlarmResource())
    # Both loopbacks, so that coap://localhost/ works whichever address localhost means.
    server = await start_coap_server(site, [("127.0.0.1", port), ("::1", port)])
    print(f"alarm server listening on coap://localhost:{port}/alarm", flush=True)
    try:
        await asyncio.get_running_loop().create_future()  # serve until interrupted
    finally:
        server.close()
        await server.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5683)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args().port))
