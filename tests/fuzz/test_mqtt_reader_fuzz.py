"""Fuzzing the MQTT reader: garbage and mutated valid packets may only raise MQTTError.

Whatever the reader does accept must survive a re-encode/decode round trip unchanged.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m2mhub.mqtt.codec import PacketReader, encode
from m2mhub.mqtt.errors import MQTTError
from m2mhub.mqtt.packets import Connect, Packet
from tests.mqtt.strategies import packets

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
level_or_server = st.sampled_from([None, 3, 4, 5])


def drain(level: int | None, data: bytes, chunk: int) -> list[Packet]:
    """Feed ``data`` in chunks; return what decoded before the first error (if any)."""
    reader = PacketReader(level)
    got: list[Packet] = []
    try:
        for i in range(0, len(data), chunk):
            reader.feed(data[i : i + chunk])
            while (packet := reader.next_packet()) is not None:
                got.append(packet)
    except MQTTError:
        # Poisoned: later calls raise the same error again.
        try:
            reader.next_packet()
        except MQTTError:
            pass
        else:
            raise AssertionError("reader not poisoned after an error") from None
    return got


def check_stable(level: int | None, got: list[Packet]) -> None:
    for packet in got:
        lvl = packet.protocol_level if isinstance(packet, Connect) else level
        assert lvl is not None
        again = PacketReader(lvl).feed_all(encode(packet, lvl))
        assert again == [packet]
        if isinstance(packet, Connect):
            level = packet.protocol_level


@FUZZ
@given(level_or_server, st.binary(max_size=300), st.integers(1, 50))
def test_random_bytes(level: int | None, data: bytes, chunk: int) -> None:
    check_stable(level, drain(level, data, chunk))


@st.composite
def mutated_stream(draw: st.DrawFn) -> tuple[int, bytes]:
    level = draw(st.sampled_from([3, 4, 5]))
    stream = draw(st.lists(packets(level), min_size=1, max_size=4))
    data = bytearray(b"".join(encode(p, level) for p in stream))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xC0, 0xFF]))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 4))]
        elif kind == "truncate":
            del data[pos:]
    return level, bytes(data)


@FUZZ
@given(mutated_stream(), st.integers(1, 50))
def test_mutated_valid_packets(case: tuple[int, bytes], chunk: int) -> None:
    level, data = case
    check_stable(level, drain(level, data, chunk))


@FUZZ
@given(mutated_stream())
def test_mutated_stream_on_server_reader(case: tuple[int, bytes]) -> None:
    """A server-side reader (level learnt from CONNECT) fed a mutated CONNECT + packets."""
    level, data = case
    connect = encode(Connect(level, "fuzz", protocol_name="MQIsdp" if level == 3 else "MQTT"),
                     level)  # fmt: skip
    got = drain(None, connect + data, 7)
    assert got[:1] == [PacketReader().feed_all(connect)[0]]
    check_stable(level, got[1:])
