"""The lab's PUT client: switch the alarm ON or OFF.

python examples/alarm_put_client.py ON [coap://localhost/alarm]
"""

from __future__ import annotations

import asyncio
import sys

from m2mhub.client.coap import CoapClient
from m2mhub.coap.options import code_name


async def main(state: str, uri: str) -> int:
    async with CoapClient() as client:
        response = await client.request("PUT", uri, state.encode())
    print(f"Result: {code_name(response.code)}")
    if response.payload:
        print(response.payload.decode(errors="replace"))
    return 0 if response.code < 128 else 1


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: alarm_put_client.py ON|OFF [coap://host[:port]/alarm]")
    uri = sys.argv[2] if len(sys.argv) == 3 else "coap://localhost/alarm"
    sys.exit(asyncio.run(main(sys.argv[1], uri)))
