"""Microbenchmark of the MQTT 5.0 PUBLISH path: codec with properties, and the broker core.

    .venv/bin/python benchmarks/micro_mqtt5.py [--seconds 1.0] [--only SUBSTRING]

mqbench's 5.0 clients send PUBLISH without properties, so this is where the cost of carrying
them is measured. Property sets (64-byte payloads, topic ``bench/topic/0001``):

- ``none``: an empty property list (what mqbench sends);
- ``typical``: Content Type ``application/json``, Message Expiry Interval 3600 and two User
  Properties (a JSON sensor reading with two tags);
- ``full``: ``typical`` plus Payload Format Indicator 1, Response Topic and Correlation Data.

"as received": the properties of a decoded PUBLISH, which a broker forwards unchanged.
"unique Correlation Data": every message's property section differs (no two alike), the
case a decoder cannot take from its cache of recent property sections.

Codec rows: decoding 1000 PUBLISH packets through PacketReader (64 KiB reads) and
``encode_publish_parts``. Broker rows drive the sans-IO ``Broker`` with bytes, as the network
shell would, and count deliveries: fan-in (1 publisher, 1 subscriber), fan-out (1 publisher,
100 subscribers, also each with its own Subscription Identifier), QoS 0 and QoS 1 (the
subscribers' PUBACKs are fed back so the in-flight window keeps moving). Each figure is the
best of five rounds of CPU time (process_time); compare versions on one machine, not machines.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from _rate import rate  # benchmarks/ is the script's directory

from m2mhub.hub.broker import Broker
from m2mhub.hub.log import BrokerLog
from m2mhub.hub.settings import BrokerSettings
from m2mhub.mqtt import codec
from m2mhub.mqtt.codec import PacketReader, decode, encode, encode_publish_parts
from m2mhub.mqtt.packets import Connect, Publish, Subscribe, SubscriptionOptions

PAYLOAD = b"x" * 64
TOPIC = "bench/topic/0001"
BATCH = 1000

PROPERTY_SETS: dict[str, dict[int, Any]] = {
    "none": {},
    "typical": {
        0x03: "application/json",
        0x02: 3600,
        0x26: [("source", "sensor-17"), ("unit", "celsius")],
    },
    "full": {
        0x01: 1,
        0x03: "application/json",
        0x02: 3600,
        0x08: "bench/reply/0001",
        0x09: b"\x00\x01correlation",
        0x26: [("source", "sensor-17"), ("unit", "celsius")],
    },
}


def forget_property_sections() -> None:
    """Empty the decoder's cache of property sections: the next round has never seen them."""
    cache = getattr(codec, "_props_cache", None)  # absent in codecs before the cache
    if cache is not None:
        cache.clear()


def _props_of(i: int, props: dict[int, Any], unique: bool) -> dict[int, Any]:
    """``props``, with Correlation Data unique to message ``i`` when ``unique``."""
    return {**props, 0x09: i.to_bytes(8, "big")} if unique else props


def decode_case(qos: int, props: dict[int, Any], unique: bool = False) -> Callable[[], int]:
    packets = [
        Publish(TOPIC, PAYLOAD, qos, packet_id=(i % 65535) + 1 if qos else None,
                properties=_props_of(i, props, unique))
        for i in range(BATCH)
    ]  # fmt: skip
    wire = b"".join(encode(p, 5) for p in packets)
    chunks = [wire[i : i + 65536] for i in range(0, len(wire), 65536)]

    def run() -> int:
        if unique:
            forget_property_sections()
        reader = PacketReader(5)
        n = 0
        for c in chunks:
            reader.feed(c)
            next_packet = reader.next_packet
            while next_packet() is not None:
                n += 1
        assert n == BATCH
        return n

    return run


def ack_decode_case(spelled_out: bool) -> Callable[[], int]:
    """BATCH PUBACKs: the 2-byte form, or Success spelled out (reason code 0, no properties)."""
    tail = b"\x00\x00" if spelled_out else b""
    wire = b"".join(
        bytes((0x40, 2 + len(tail))) + ((i % 65535) + 1).to_bytes(2, "big") + tail
        for i in range(BATCH)
    )

    def run() -> int:
        return len(PacketReader(5).feed_all(wire))

    return run


def parts_case(qos: int, props: dict[int, Any], decoded: bool = False) -> Callable[[], int]:
    """Encode for sending; ``decoded``: the properties as a received PUBLISH has them."""
    if decoded:
        packet = decode(encode(Publish(TOPIC, PAYLOAD, qos, packet_id=1, properties=props), 5), 5)
        assert isinstance(packet, Publish)
        props = packet.properties

    def run() -> int:
        for _ in range(BATCH):
            encode_publish_parts(TOPIC, PAYLOAD, qos, False, False, props, 5)
        return BATCH

    return run


class _Sink:
    """Collects what the broker writes (the subscribers' sockets)."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: Any) -> None:
        self.data += data

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def _pubacks(data: bytearray) -> bytes:
    """PUBACKs for a run of equally sized QoS 1 PUBLISH packets."""
    i, size, shift = 1, 0, 0
    while True:
        b = data[i]
        size |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            break
        shift += 7
    stride = i + size
    off = i + 2 + ((data[i] << 8) | data[i + 1])  # past the topic: the packet id
    return b"".join(bytes((0x40, 2, data[j], data[j + 1])) for j in range(off, len(data), stride))


def broker_case(
    qos: int,
    subscribers: int,
    props: dict[int, Any],
    level: int = 5,
    pub_level: int = 5,
    unique: bool = False,
    sub_ids: bool = False,
) -> Callable[[], int]:
    """A publisher of ``pub_level`` sends BATCH messages to ``subscribers`` of ``level``."""
    settings = BrokerSettings(sys_interval=0, max_inflight_messages=0, max_queued_messages=0)
    broker = Broker(settings, BrokerLog(("none",)), now=1.0)
    now = 1.0
    subs = []
    for i in range(subscribers):
        sink = _Sink()
        conn = broker.connection_made(sink, "127.0.0.1", 1883, now)
        broker.data_received(
            conn, encode(Connect(protocol_level=level, client_id=f"s{i}"), level), now
        )
        # With ``sub_ids`` every subscriber has its own Subscription Identifier (i + 1).
        sub = Subscribe(
            1, [(TOPIC, SubscriptionOptions(qos=qos))], {0x0B: [i + 1]} if sub_ids else {}
        )
        broker.data_received(conn, encode(sub, level), now)
        broker.flush()
        sink.data.clear()
        subs.append((conn, sink))
    pub_sink = _Sink()
    pub = broker.connection_made(pub_sink, "127.0.0.1", 1883, now)
    broker.data_received(
        pub, encode(Connect(protocol_level=pub_level, client_id="p"), pub_level), now
    )
    broker.flush()
    wire = b"".join(
        encode(
            Publish(
                TOPIC,
                PAYLOAD,
                qos,
                packet_id=(i % 65535) + 1 if qos else None,
                properties=_props_of(i, props, unique),
            ),
            pub_level,
        )
        for i in range(BATCH)
    )

    def run() -> int:
        if unique:
            forget_property_sections()
        broker.data_received(pub, wire, now)
        broker.flush()
        pub_sink.data.clear()
        for conn, sink in subs:
            if qos:
                # Acknowledge every delivery so the in-flight window keeps moving (cheaply:
                # all deliveries have one size, so the packet ids sit at a fixed stride).
                acks = _pubacks(sink.data)
                broker.data_received(conn, acks, now)
            sink.data.clear()
        broker.flush()
        for _, sink in subs:
            sink.data.clear()
        return BATCH * subscribers

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--only", default="", help="run only the rows containing this text")
    args = parser.parse_args()
    cases: list[tuple[str, Callable[[], int]]] = []
    for name, props in PROPERTY_SETS.items():
        for qos in (0, 1):
            cases.append((f"decode PUBLISH 5.0 qos{qos} props={name}", decode_case(qos, props)))
    cases.append(("decode PUBLISH 5.0 qos0 props=typical + unique Correlation Data",
                  decode_case(0, PROPERTY_SETS["typical"], unique=True)))  # fmt: skip
    cases.append(("decode PUBACK 5.0 (2 bytes)", ack_decode_case(False)))
    cases.append(("decode PUBACK 5.0, Success spelled out (4 bytes)", ack_decode_case(True)))
    for name, props in PROPERTY_SETS.items():
        cases.append((f"encode_publish_parts 5.0 qos1 props={name}", parts_case(1, props)))
        if props:
            cases.append((f"encode_publish_parts 5.0 qos1 props={name}, as received",
                          parts_case(1, props, decoded=True)))  # fmt: skip
    for name, props in PROPERTY_SETS.items():
        for qos in (0, 1):
            cases.append((f"broker fan-in 1->1 qos{qos} props={name}",
                          broker_case(qos, 1, props)))  # fmt: skip
        cases.append((f"broker fan-out 1->100 qos0 props={name}", broker_case(0, 100, props)))
    for name in ("none", "typical"):
        cases.append((f"broker fan-out 1->100 qos0 props={name}, a Subscription Identifier each",
                      broker_case(0, 100, PROPERTY_SETS[name], sub_ids=True)))  # fmt: skip
    cases.append(("broker fan-in 1->1 qos0 props=typical + unique Correlation Data",
                  broker_case(0, 1, PROPERTY_SETS["typical"], unique=True)))  # fmt: skip
    for qos in (0, 1):
        cases.append((f"broker fan-in 1->1 qos{qos}, all clients 3.1.1 (reference)",
                      broker_case(qos, 1, {}, level=4, pub_level=4)))  # fmt: skip
    cases.append(("broker fan-out 1->100 qos0, all clients 3.1.1 (reference)",
                  broker_case(0, 100, {}, level=4, pub_level=4)))  # fmt: skip
    cases.append(("broker fan-out 1->100 qos0 props=typical, 3.1.1 subscribers",
                  broker_case(0, 100, PROPERTY_SETS["typical"], level=4)))  # fmt: skip
    cases = [(n, f) for n, f in cases if args.only in n]
    width = max(len(name) for name, _ in cases)
    for name, fn in cases:
        unit = "deliveries/s" if name.startswith("broker") else "packets/s"
        print(f"{name:<{width}}  {rate(fn, args.seconds):>12,.0f} {unit}", flush=True)


if __name__ == "__main__":
    main()
