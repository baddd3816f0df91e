"""Microbenchmark of the broker core's PUBLISH fan-out, in process (no sockets).

    .venv/bin/python benchmarks/micro_fanout.py [--seconds 2.0] [--subscribers 100]

One publisher sends QoS 0 PUBLISHes (64-byte payloads, 10 topics in turn) to N subscribers of
``bench/#``; the core runs as the TCP shell drives it (``data_received`` then ``flush``), the
sinks throw the bytes away. Prints deliveries per second for subscribers that are

- ``3.1.1``: MQTT 3.1.1 clients,
- ``5.0``: MQTT 5 clients without Topic Alias Maximum,
- ``5.0 aliases``: MQTT 5 clients allowing 10 topic aliases (the broker assigns them).

Each figure is the best of five rounds of CPU time (process_time). Numbers compare versions
of the core on one machine; they are not assertions.
"""

from __future__ import annotations

import argparse
from typing import Any

from _rate import rate  # benchmarks/ is the script's directory

from m2mhub.hub.broker import Broker
from m2mhub.hub.log import BrokerLog
from m2mhub.hub.settings import BrokerSettings
from m2mhub.mqtt.codec import encode
from m2mhub.mqtt.packets import Connect, Publish, Subscribe, SubscriptionOptions

PAYLOAD = b"x" * 64
TOPICS = [f"bench/sensor/{i:04d}/value" for i in range(10)]
BATCH = 100  # PUBLISHes per read, as a busy socket delivers them


class NullSink:
    """Counts nothing, keeps nothing: only the core's own cost is measured."""

    def write(self, data: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def _broker(subscribers: int, level: int, alias_maximum: int) -> tuple[Broker, Any]:
    broker = Broker(BrokerSettings(sys_interval=0), BrokerLog(("error",)))
    for i in range(subscribers):
        conn = broker.connection_made(NullSink(), f"127.0.0.1:{10000 + i}", 1883, 0.0)
        props = {0x22: alias_maximum} if alias_maximum else {}
        connect = Connect(protocol_level=level, client_id=f"s{i}", properties=props)
        broker.data_received(conn, encode(connect, level), 0.0)
        subscribe = Subscribe(1, [("bench/#", SubscriptionOptions(qos=0))])
        broker.data_received(conn, encode(subscribe, level), 0.0)
    pub = broker.connection_made(NullSink(), "127.0.0.1:9999", 1883, 0.0)
    broker.data_received(pub, encode(Connect(protocol_level=4, client_id="pub"), 4), 0.0)
    broker.flush()
    return broker, pub


def deliveries_per_second(
    subscribers: int, level: int, alias_maximum: int, seconds: float
) -> float:
    broker, pub = _broker(subscribers, level, alias_maximum)
    burst = b"".join(encode(Publish(TOPICS[i % len(TOPICS)], PAYLOAD), 4) for i in range(BATCH))

    def step() -> int:
        broker.data_received(pub, burst, 0.0)
        broker.flush()
        return BATCH * subscribers

    return rate(step, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--subscribers", type=int, default=100)
    args = parser.parse_args()
    for name, level, aliases in (("3.1.1", 4, 0), ("5.0", 5, 0), ("5.0 aliases", 5, 10)):
        rate = deliveries_per_second(args.subscribers, level, aliases, args.seconds)
        print(f"{name:12} {rate:12,.0f} deliveries/s")


if __name__ == "__main__":
    main()
