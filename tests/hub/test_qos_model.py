"""Model-based check: a persistent QoS 1/2 subscriber that comes and goes gets every message
exactly once (duplicates only as DUP resends of unacknowledged ones), whatever the order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.mqtt.packets import Connack, Puback, Pubcomp, Publish, Pubrec, Pubrel
from tests.hub.harness import Client, Hub

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(1, 2)),
        st.tuples(st.just("ack"), st.integers(0, 3)),
        st.tuples(st.just("drop"), st.just(0)),
        st.tuples(st.just("reconnect"), st.just(0)),
    ),
    max_size=40,
)


class Receiver:
    """Plays the subscriber's side of the QoS 1/2 handshakes, acking when told to."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.client: Client | None = None
        self.unacked: list[Publish | Pubrel] = []
        self.payloads: list[bytes] = []
        self.released: set[int] = set()

    def connect(self) -> None:
        self.client = self.hub.client("sub")
        ack = self.client.connect(clean=False)
        assert isinstance(ack, Connack) and ack.reason_code == 0
        self.unacked = []
        self.take(self.client.pending)

    def take(self, packets: list) -> None:  # type: ignore[type-arg]
        for p in packets:
            if isinstance(p, Publish):
                if p.qos == 2 and p.packet_id in self.released and not p.dup:
                    raise AssertionError("new QoS 2 PUBLISH reused an unreleased id")
                if not p.dup or p.payload not in self.payloads:
                    # A DUP resend of a message we already have is the only allowed copy.
                    assert p.payload not in self.payloads, f"duplicate {p}"
                    self.payloads.append(p.payload)
                self.unacked.append(p)
            elif isinstance(p, Pubrel):
                self.unacked.append(p)

    def ack(self, n: int) -> None:
        client = self.client
        if client is None or client.closed:
            return
        for p in self.unacked[:n]:
            if isinstance(p, Publish):
                client.send(Puback(p.packet_id or 0) if p.qos == 1 else Pubrec(p.packet_id or 0))
            else:
                client.send(Pubcomp(p.packet_id))
        self.unacked = self.unacked[n:]
        self.take(client.received())


@settings(max_examples=120, deadline=None)
@given(OPS, st.integers(1, 3))
def test_persistent_subscriber_gets_everything_exactly_once(ops: list, window: int) -> None:  # type: ignore[type-arg]
    hub = Hub(max_inflight_messages=window, max_queued_messages=0)
    rx = Receiver(hub)
    rx.connect()
    assert rx.client is not None
    rx.client.subscribe(("m", 2))
    pub = hub.connected("pub")
    published: list[bytes] = []

    def pump_publisher() -> None:
        # The publisher may be held back while the receiver lags: its acks come later.
        for p in pub.received():
            if isinstance(p, Pubrec):
                pub.send(Pubrel(p.packet_id))
        if rx.client is not None and not rx.client.closed:
            rx.take(rx.client.received())

    for op, arg in ops:
        if op == "publish":
            payload = b"%d" % len(published)
            published.append(payload)
            pub.send(Publish("m", payload, arg, packet_id=len(published) % 60000 + 1))
            pump_publisher()
        elif op == "ack":
            rx.ack(arg)
        elif op == "drop" and rx.client is not None and not rx.client.closed:
            rx.client.drop()
        elif op == "reconnect":
            rx.connect()  # takes over if still connected
    if rx.client is None or rx.client.closed:
        rx.connect()
    for _ in range(4 * len(published) + 4):
        pump_publisher()
        if not rx.unacked:
            break
        rx.ack(len(rx.unacked))
    assert sorted(rx.payloads, key=int) == published
    assert hub.broker.stats.publish_dropped == 0
