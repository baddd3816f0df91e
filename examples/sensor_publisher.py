"""A CoAP "sensor" that publishes a reading each second into the hub's topic space.

    python examples/sensor_publisher.py [--uri coap://localhost/ps/sensors/room1/temp]
                                        [--count N] [--interval 1.0]
    mosquitto_sub -t 'sensors/#' -v          # MQTT subscribers see every reading
    m2mhub coap -s 60 coap://localhost/ps/sensors/room1/temp   # and so do CoAP observers

Each reading is a CoAP PUT to /ps/{topic}: the hub publishes it to MQTT, retained, so a GET
(or a new MQTT subscriber) always finds the latest one.  NON requests are fine for readings
that come often (``--non``: published at QoS 0 instead of 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time

from m2mhub.client.coap import CoapClient
from m2mhub.coap.options import ContentFormat, code_name


def reading(n: int) -> bytes:
    """A made-up temperature: a slow wave around 21 degrees."""
    value = round(21.0 + 2.0 * math.sin(n / 10.0), 2)
    return json.dumps({"t": value, "ts": int(time.time())}).encode()


async def main(uri: str, count: int, interval: float, non: bool) -> int:
    async with CoapClient() as client:
        n = 0
        while count == 0 or n < count:
            if n:
                await asyncio.sleep(interval)
            payload = reading(n)
            response = await client.request(
                "PUT", uri, payload, confirmable=not non, content_format=ContentFormat.JSON
            )
            print(f"{payload.decode()} -> {code_name(response.code)}", flush=True)
            if response.code >= 128:
                return 1
            n += 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="coap://localhost/ps/sensors/room1/temp")
    parser.add_argument("--count", type=int, default=0, help="readings to send (0: forever)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    parser.add_argument("--non", action="store_true", help="send NON requests (QoS 0)")
    args = parser.parse_args()
    try:
        raise SystemExit(asyncio.run(main(args.uri, args.count, args.interval, args.non)))
    except KeyboardInterrupt:
        pass
