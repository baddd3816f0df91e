"""The lab's observable alarm server: observers are notified straight from the PUT handler.

    python examples/alarm_server_observable.py [--port 5683]
    m2mhub coap -s 60 coap://localhost/alarm           # observe for a minute
    m2mhub coap -m put -e ON coap://localhost/alarm    # every observer sees "ON" at once

No polling thread, no busy loop: ``updated_state()`` sends the notifications.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from m2mhub.coap.message import Message
from m2mhub.coap.options import Code
from m2mhub.coap.resource import BadRequest, ObservableResource, Site
from m2mhub.net.coap_server import start_coap_server


class AlarmResource(ObservableResource):
    """The alarm: ON or OFF, observable (RFC 7641)."""

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
        if state != self.state:
            self.state = state
            print(f"alarm is now {state.decode()}", flush=True)
            self.updated_state()  # every observer gets the new state now
        return Message(code=Code.CHANGED)


async def main(port: int) -> None:
    site = Site()
    site.add_resource(["alarm"], AlarmResource())
    server = await start_coap_server(site, [("127.0.0.1", port), ("::1", port)])
    print(f"observable alarm server listening on coap://localhost:{port}/alarm", flush=True)
    try:
        await asyncio.get_running_loop().create_future()
    finally:
        server.close()
        await server.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5683)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args().port))
