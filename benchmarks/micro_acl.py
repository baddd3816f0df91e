"""Microbenchmark: what access control costs the broker core's PUBLISH fan-out.

    .venv/bin/python benchmarks/micro_acl.py [--seconds 2.0] [--subscribers 100]

The load of ``micro_fanout.py`` (one publisher, QoS 0, 64-byte payloads, 10 topics in turn,
N MQTT 3.1.1 subscribers of ``bench/#``), run

- ``no acl_file``: no authorizer (the default);
- ``acl_file``: an ACL file letting anonymous clients read ``bench/#`` and write anywhere
  (every check is answered from the per-client cache after the first message per topic);
- ``acl_file, pattern``: the same through ``pattern`` rules with ``%c`` substitution;
- ``acl_file, new topics``: every message on a topic never seen before, so each delivery is a
  cache miss and a real ACL evaluation (the worst case).

Each figure is the best of five rounds of CPU time (process_time), in deliveries per second.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable

from _rate import rate  # benchmarks/ is the script's directory

from m2mhub.auth.acl import AclFile, AclFileAuthorizer
from m2mhub.hub.broker import Broker
from m2mhub.hub.log import BrokerLog
from m2mhub.hub.settings import BrokerSettings
from m2mhub.mqtt.codec import encode
from m2mhub.mqtt.packets import Connect, Publish, Subscribe, SubscriptionOptions

PAYLOAD = b"x" * 64
TOPICS = [f"bench/sensor/{i:04d}/value" for i in range(10)]
BATCH = 100

TOPIC_ACL = "topic read bench/#\ntopic write #\n"
PATTERN_ACL = "topic write #\npattern read bench/+/%c/#\npattern read bench/#\n"


class NullSink:
    def write(self, data: object) -> None:
        pass

    def close(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def _broker(subscribers: int, acl: str | None) -> tuple[Broker, object]:
    broker = Broker(BrokerSettings(sys_interval=0), BrokerLog(("error",)))
    if acl is not None:
        broker.set_authorizer(AclFileAuthorizer(AclFile.parse(acl)))
    for i in range(subscribers):
        conn = broker.connection_made(NullSink(), f"127.0.0.1:{10000 + i}", 1883, 0.0)
        broker.data_received(conn, encode(Connect(protocol_level=4, client_id=f"s{i}"), 4), 0.0)
        subscribe = Subscribe(1, [("bench/#", SubscriptionOptions(qos=0))])
        broker.data_received(conn, encode(subscribe, 4), 0.0)
    pub = broker.connection_made(NullSink(), "127.0.0.1:9999", 1883, 0.0)
    broker.data_received(pub, encode(Connect(protocol_level=4, client_id="pub"), 4), 0.0)
    broker.flush()
    return broker, pub


def deliveries_per_second(
    subscribers: int, acl: str | None, seconds: float, bursts: Callable[[], bytes]
) -> float:
    broker, pub = _broker(subscribers, acl)

    def step() -> int:
        broker.data_received(pub, bursts(), 0.0)  # type: ignore[arg-type]
        broker.flush()
        return BATCH * subscribers

    return rate(step, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--subscribers", type=int, default=100)
    args = parser.parse_args()
    same = b"".join(encode(Publish(TOPICS[i % len(TOPICS)], PAYLOAD), 4) for i in range(BATCH))
    fresh = itertools.count()

    def new_topics() -> bytes:
        return b"".join(
            encode(Publish(f"bench/new/{next(fresh)}", PAYLOAD), 4) for _ in range(BATCH)
        )

    for name, acl, bursts in (
        ("no acl_file", None, lambda: same),
        ("acl_file", TOPIC_ACL, lambda: same),
        ("acl_file, pattern", PATTERN_ACL, lambda: same),
        ("acl_file, new topics", TOPIC_ACL, new_topics),
    ):
        rate = deliveries_per_second(args.subscribers, acl, args.seconds, bursts)
        print(f"{name:22} {rate:12,.0f} deliveries/s")


if __name__ == "__main__":
    main()
