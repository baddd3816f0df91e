"""Microbenchmark of the MQTT codec's hot path: PUBLISH decode and fan-out encode.

    .venv/bin/python benchmarks/micro_codec.py [--seconds 1.0]

Prints packets per second for: decoding a stream of QoS 0/1 PUBLISH packets (3.1.1 and 5.0,
64-byte payloads) through PacketReader, encode_publish_parts, full encode(Publish), and acks.
Each figure is the best of five rounds of CPU time (process_time), so a busy machine skews
it less. Numbers are for comparison between versions of the
codec on one machine, not assertions.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from _rate import rate  # benchmarks/ is the script's directory

from m2mhub.mqtt.codec import PacketReader, encode, encode_publish_parts
from m2mhub.mqtt.packets import Puback, Publish

PAYLOAD = b"x" * 64
TOPIC = "bench/topic/0001"
BATCH = 1000


def decode_case(level: int, qos: int, chunk: int) -> Callable[[], int]:
    packets = [Publish(TOPIC, PAYLOAD, qos, packet_id=(i % 65535) + 1 if qos else None)
               for i in range(BATCH)]  # fmt: skip
    wire = b"".join(encode(p, level) for p in packets)
    chunks = [wire[i : i + chunk] for i in range(0, len(wire), chunk)]

    def run() -> int:
        reader = PacketReader(level)
        n = 0
        for c in chunks:
            reader.feed(c)
            next_packet = reader.next_packet
            while next_packet() is not None:
                n += 1
        assert n == BATCH
        return n

    return run


def ack_decode_case(level: int) -> Callable[[], int]:
    wire = b"".join(encode(Puback((i % 65535) + 1), level) for i in range(BATCH))

    def run() -> int:
        reader = PacketReader(level)
        reader.feed(wire)
        n = 0
        next_packet = reader.next_packet
        while next_packet() is not None:
            n += 1
        return n

    return run


def parts_case(level: int, qos: int) -> Callable[[], int]:
    def run() -> int:
        for _ in range(BATCH):
            encode_publish_parts(TOPIC, PAYLOAD, qos, False, False, None, level)
        return BATCH

    return run


def fanout_case(level: int, receivers: int) -> Callable[[], int]:
    """One encode, then per-receiver packet id splice (what the broker does for QoS 1)."""

    def run() -> int:
        head, tail = encode_publish_parts(TOPIC, PAYLOAD, 1, False, False, None, level)
        for i in range(receivers):
            _ = head + (i + 1).to_bytes(2, "big") + tail
        return receivers

    return run


def encode_case(level: int, qos: int) -> Callable[[], int]:
    packet = Publish(TOPIC, PAYLOAD, qos, packet_id=7 if qos else None)

    def run() -> int:
        for _ in range(BATCH):
            encode(packet, level)
        return BATCH

    return run


def ack_case(level: int) -> Callable[[], int]:
    packet = Puback(7)

    def run() -> int:
        for _ in range(BATCH):
            encode(packet, level)
        return BATCH

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    cases: list[tuple[str, Callable[[], int]]] = []
    for level in (4, 5):
        v = "3.1.1" if level == 4 else "5.0"
        for qos in (0, 1):
            cases.append((f"decode PUBLISH {v} qos{qos} (64 KiB reads)",
                          decode_case(level, qos, 65536)))  # fmt: skip
        cases.append((f"decode PUBLISH {v} qos0 (4000-byte reads, split packets)",
                      decode_case(level, 0, 4000)))  # fmt: skip
        cases.append((f"decode PUBLISH {v} qos1 (1 packet per read)",
                      decode_case(level, 1, len(encode(Publish(TOPIC, PAYLOAD, 1, packet_id=1),
                                                       level)))))  # fmt: skip
        cases.append((f"decode PUBACK {v}", ack_decode_case(level)))
        for qos in (0, 1):
            cases.append((f"encode_publish_parts {v} qos{qos}", parts_case(level, qos)))
        cases.append((f"encode(Publish) {v} qos1", encode_case(level, 1)))
        cases.append((f"fan-out 1 encode + 100 id splices {v}", fanout_case(level, 100)))
        cases.append((f"encode(Puback) {v}", ack_case(level)))
    width = max(len(name) for name, _ in cases)
    for name, fn in cases:
        print(f"{name:<{width}}  {rate(fn, args.seconds):>12,.0f} packets/s")


if __name__ == "__main__":
    main()
