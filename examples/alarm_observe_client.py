"""The lab's observe client: prints the alarm's state and every change until interrupted.

python examples/alarm_observe_client.py [coap://localhost/alarm]
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from m2mhub.client.coap import CoapClient
from m2mhub.coap.options import code_name


async def main(uri: str) -> int:
    async with CoapClient() as client, client.observe(uri) as observation:
        async for notification in observation:
            if notification.code >= 128:
                print(f"Error: {code_name(notification.code)}", flush=True)
                return 1
            print(f"alarm: {notification.payload.decode(errors='replace')}", flush=True)
    print("the server ended the observation", flush=True)
    return 0


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "coap://localhost/alarm"
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main(target)))
