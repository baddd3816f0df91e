"""The lab's aiocoap observe client: prints every alarm change (runs against `m2mhub serve`).

python examples/aiocoap_lab/alarm_observe.py [coap://localhost/alarm]
"""

import asyncio
import contextlib
import sys

from aiocoap import GET, Context, Message


async def main():
    uri = sys.argv[1] if len(sys.argv) > 1 else "coap://localhost/alarm"
    protocol = await Context.create_client_context()
    request = Message(code=GET, uri=uri, observe=0)
    requester = protocol.request(request)
    first = await requester.response
    print(f"First response: {first.code}\n{first.payload.decode()}", flush=True)
    async for notification in requester.observation:
        print(f"Alarm changed: {notification.payload.decode()}", flush=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
