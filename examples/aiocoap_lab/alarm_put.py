"""The lab's aiocoap PUT client, as students write it (runs against `m2mhub serve` unchanged).

python examples/aiocoap_lab/alarm_put.py ON [coap://localhost/alarm]
"""

import asyncio
import sys

from aiocoap import PUT, Context, Message


async def main():
    state = sys.argv[1] if len(sys.argv) > 1 else "ON"
    uri = sys.argv[2] if len(sys.argv) > 2 else "coap://localhost/alarm"
    protocol = await Context.create_client_context()
    request = Message(code=PUT, payload=state.encode(), uri=uri)
    try:
        response = await protocol.request(request).response
    except Exception as e:
        print("Failed to fetch resource:")
        print(e)
        sys.exit(1)
    else:
        print(f"Result: {response.code}\n{response.payload!r}")
    finally:
        await protocol.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
