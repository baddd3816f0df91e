"""Random sessions of several clients (valid packets, garbage, takeovers, drops, time passing):
the broker never raises and its bookkeeping stays consistent."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from m2mhub.hub.connection import CLOSED, CONNECTED
from m2mhub.mqtt.packets import (
    Disconnect,
    Pingreq,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscribe,
    SubscriptionOptions,
    Unsubscribe,
    Will,
)
from tests.hub.harness import Client, Hub

IDS = ["a", "b", "c"]
TOPICS = ["t", "t/x", "$SYS/x", "u"]
FILTERS = ["t", "t/#", "+/x", "#", "u"]

step = st.one_of(
    st.tuples(st.just("connect"), st.sampled_from(IDS), st.booleans(), st.sampled_from([4, 5])),
    st.tuples(
        st.just("publish"),
        st.sampled_from(IDS),
        st.sampled_from(TOPICS[:2] + TOPICS[3:]),
        st.integers(0, 2),
        st.booleans(),
    ),
    st.tuples(
        st.just("subscribe"), st.sampled_from(IDS), st.sampled_from(FILTERS), st.integers(0, 2)
    ),
    st.tuples(st.just("unsubscribe"), st.sampled_from(IDS), st.sampled_from(FILTERS)),
    st.tuples(st.just("ack"), st.sampled_from(IDS)),
    st.tuples(st.just("ping"), st.sampled_from(IDS)),
    st.tuples(st.just("disconnect"), st.sampled_from(IDS)),
    st.tuples(st.just("drop"), st.sampled_from(IDS)),
    st.tuples(st.just("garbage"), st.sampled_from(IDS), st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("pause"), st.sampled_from(IDS), st.booleans()),
    st.tuples(st.just("time"), st.sampled_from([0.5, 5, 100])),
)


def _check(hub: Hub) -> None:
    broker = hub.broker
    for conn in broker.connections:
        assert conn.state != CLOSED
        assert conn.throttles >= 0
    for cid, session in broker.sessions.items():
        assert session.client_id == cid
        conn = session.connection
        if conn is not None:
            assert conn.state == CONNECTED and conn in broker.connections
            assert conn.session is session
        elif not session.persistent:
            raise AssertionError(f"offline clean session {cid} kept")
        assert len(session.inflight) <= session.inflight_max
    for target in broker._throttling:
        assert target.connection is not None
    assert broker.clients_connected == sum(1 for c in broker.connections if c.state == CONNECTED)


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=30), st.integers(1, 3), st.integers(0, 4))
def test_random_client_sessions_keep_the_broker_consistent(
    steps: list,
    window: int,
    queue: int,  # type: ignore[type-arg]
) -> None:
    hub = Hub(max_inflight_messages=window, max_queued_messages=queue, sys_interval=10)
    clients: dict[str, Client] = {}
    mid = 0
    for s in steps:
        kind, cid = s[0], s[1]
        c = clients.get(cid) if isinstance(cid, str) else None
        live = c is not None and not c.closed
        if kind == "connect":
            c = clients[cid] = hub.client(cid, level=s[3])
            c.connect(clean=s[2], will=Will("t/will", b"w", 1))
        elif kind == "time":
            hub.advance(s[1])
        elif not live or c is None:
            continue
        elif kind == "publish":
            mid = mid % 65535 + 1
            c.send(Publish(s[2], b"p", s[3], s[4], False, mid if s[3] else None))
        elif kind == "subscribe":
            c.send(Subscribe(1, [(s[2], SubscriptionOptions(qos=s[3]))]))
        elif kind == "unsubscribe":
            c.send(Unsubscribe(2, [s[2]]))
        elif kind == "ack":
            for p in c.received():
                if isinstance(p, Publish) and p.qos == 1:
                    c.send(Puback(p.packet_id or 0))
                elif isinstance(p, Publish) and p.qos == 2:
                    c.send(Pubrec(p.packet_id or 0))
                elif isinstance(p, Pubrec):
                    c.send(Pubrel(p.packet_id))
                elif isinstance(p, Pubrel):
                    c.send(Pubcomp(p.packet_id))
        elif kind == "ping":
            c.send(Pingreq())
        elif kind == "disconnect":
            c.send(Disconnect())
        elif kind == "drop":
            c.drop()
        elif kind == "garbage":
            c.send_bytes(s[2])
        elif kind == "pause":
            if s[2]:
                hub.broker.pause_writing(c.conn)
            else:
                hub.broker.resume_writing(c.conn, hub.now)
                hub.broker.flush()
        _check(hub)
    assert not any("internal error" in line for line in hub.lines), hub.lines


def test_connected_count_follows_connects_and_closes() -> None:
    hub = Hub()
    a = hub.connected("a")
    hub.connected("b")
    hub.connected("a")  # takeover: still two
    assert hub.broker.clients_connected == 2
    a.drop()  # already closed by the takeover
    hub.client("x")  # no CONNECT yet
    assert hub.broker.clients_connected == 2
    assert hub.broker.stats.clients_maximum == 2
