"""A malformed shared-subscription filter in a 5.0 SUBSCRIBE costs that filter, not the client.

m2mhub answers SUBACK 0x8F (Topic Filter invalid) for it and grants the other filters of the
same SUBSCRIBE (MQTT 5.0 3.9.3); the connection carries on. mosquitto 2.0.11 does something
else for each shape (recorded here, so a change in either broker shows up).
"""

from __future__ import annotations

import pytest

from tests.interop import raw
from tests.interop.conftest import Broker
from tests.interop.raw import RawClient

# filter -> what mosquitto 2.0.11 answers (SUBACK codes, or its DISCONNECT)
SHAPES: dict[str, list[int] | str] = {
    "$share/g+/x": "DISCONNECT 0x81",
    "$share/g": [1, 1],  # mosquitto takes it as a plain filter
    "$share/g/a/#/b": "DISCONNECT 0x81",
}


def _answer(port: int, topic_filter: str) -> list[int] | str:
    with RawClient(port, 5) as client:
        assert client.connect("shared-bad").body[1] == 0
        client.send(raw.subscribe(1, [(topic_filter, 1), ("shared/ok", 1)], level=5))
        answer = client.read()
        if answer.ptype == raw.DISCONNECT:
            return f"DISCONNECT 0x{answer.body[0]:02X}"
        assert answer.ptype == raw.SUBACK
        body = answer.body
        plen, used = raw.read_varint(body, 2)
        codes = list(body[2 + used + plen :])
        # The connection is still good: the granted filter delivers.
        client.send(raw.publish("shared/ok", b"still here", qos=0, level=5))
        delivered = client.read()
        assert delivered.ptype == raw.PUBLISH
        assert delivered.publish_fields(5)[2] == b"still here"
        return codes


@pytest.mark.parametrize("topic_filter", list(SHAPES))
def test_malformed_shared_filter(broker: Broker, topic_filter: str) -> None:
    got = _answer(broker.port, topic_filter)
    if broker.kind == "mosquitto":
        assert got == SHAPES[topic_filter]
    else:
        assert got == [0x8F, 1]
