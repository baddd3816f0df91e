"""Random garbage (Hypothesis) over real sockets never crashes the broker.

After every example a well-behaved client must still connect, subscribe, publish to itself and
ping; at the end the broker is still running, a persistent session still gets the messages queued
for it before the garbage, and the broker has printed no traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.interop import raw
from tests.interop.conftest import start_broker
from tests.interop.raw import RawClient

pytestmark = pytest.mark.interop

VALID_SESSION = [
    raw.connect("fuzz", keepalive=30),
    raw.subscribe(1, [("fuzz/+", 1)]),
    raw.publish("fuzz/a", b"payload", qos=1, pid=2),
    raw.publish("fuzz/b", b"payload", qos=2, pid=3),
    raw.ack(raw.PUBREL, 3),
    raw.unsubscribe(4, ["fuzz/+"]),
    raw.PINGREQ_BYTES,
    raw.DISCONNECT_BYTES,
]
VALID_SESSION_5 = [
    raw.connect("fuzz5", keepalive=30, level=5),
    raw.subscribe(1, [("fuzz/+", 2)], level=5),
    raw.publish("fuzz/a", b"payload", qos=1, pid=2, level=5),
    raw.PINGREQ_BYTES,
]


@st.composite
def mutated(draw: st.DrawFn, session: list[bytes]) -> bytes:
    """A valid session with a few bytes changed, cut short or with garbage spliced in."""
    data = bytearray(b"".join(session[: draw(st.integers(1, len(session)))]))
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(max_size=16))
    return bytes(data[: draw(st.integers(1, len(data)))])


GARBAGE = st.one_of(
    st.binary(min_size=1, max_size=200),
    st.binary(min_size=1, max_size=200).map(lambda b: VALID_SESSION[0] + b),
    st.binary(min_size=1, max_size=200).map(lambda b: VALID_SESSION_5[0] + b),
    mutated(VALID_SESSION),
    mutated(VALID_SESSION_5),
)


def healthy(port: int) -> None:
    with RawClient(port) as c:
        assert c.connect("healthy").body == b"\x00\x00"
        c.subscribe([("fuzz/health", 1)])
        c.send(raw.publish("fuzz/health", b"ok", qos=1, pid=9) + raw.PINGREQ_BYTES)
        got = sorted(c.read().ptype for _ in range(3))
        assert got == sorted([raw.PUBACK, raw.PUBLISH, raw.PINGRESP])
        c.send(raw.DISCONNECT_BYTES)


@pytest.mark.parametrize("kind", ["mosquitto", "m2mhub"])
def test_random_garbage_never_crashes_the_broker(tmp_path: Path, kind: str) -> None:
    with start_broker(kind, tmp_path, ["max_keepalive 60"]) as broker:
        # A stored session with queued messages must come through the garbage intact.
        with RawClient(broker.port) as keeper:
            keeper.connect("keeper", clean=False)
            keeper.subscribe([("keep/t", 1)])
            keeper.send(raw.DISCONNECT_BYTES)
        with RawClient(broker.port) as talker:
            talker.connect("talker")
            for i in range(3):
                talker.send(raw.publish("keep/t", b"queued %d" % i, qos=1, pid=i + 1))
                talker.expect(raw.PUBACK)

        @settings(
            max_examples=60,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(data=GARBAGE, wait=st.booleans())
        def one_example(data: bytes, wait: bool) -> None:
            with RawClient(broker.port) as c:
                try:
                    c.send(data)
                    if wait:  # also take whatever the broker answers, up to its close
                        c.wait_closed(timeout=0.2)
                except (OSError, TimeoutError):
                    pass
            assert broker.alive(), broker.proc.output()
            healthy(broker.port)

        one_example()
        assert broker.alive()
        with RawClient(broker.port) as keeper, RawClient(broker.port) as talker:
            assert keeper.connect("keeper", clean=False).body == b"\x01\x00"
            talker.connect("talker")
            talker.send(raw.publish("keep/t", b"end", qos=1, pid=9))
            got = [p.publish_fields()[2] for p in keeper.collect_until(b"end")]
            assert got == [b"queued 0", b"queued 1", b"queued 2", b"end"]
        assert "Traceback" not in broker.proc.output()
