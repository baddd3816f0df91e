"""Observe lifecycle as a Hypothesis state machine: the engine's observers always match a model."""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from m2mhub.coap.endpoint import Endpoint
from m2mhub.coap.message import ACK, CON, RST, Message, decode, encode
from m2mhub.coap.options import Code

from .helpers import FakeClock, make_site

PEERS = [("127.0.0.1", 6000 + i) for i in range(3)]
TOKENS = [b"a", b"bb"]


class ObserveMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        site, res = make_site()
        self.alarm = res["alarm"]
        self.ep = Endpoint(site, clock=self.clock, rng=random.Random(5))
        self.model: set[tuple[tuple[str, int], bytes]] = set()
        self.last_seq: dict[tuple[tuple[str, int], bytes], int] = {}
        self.last_mid: dict[tuple[tuple[str, int], bytes], int] = {}
        self.mid = 0
        self.unacked: set[tuple[tuple[str, int], bytes]] = set()

    def _send(self, msg: Message, peer: tuple[str, int]) -> None:
        self.ep.datagram_received(encode(msg), peer)

    def _collect(self) -> list[tuple[Message, tuple[str, int]]]:
        out = [(decode(d), p) for d, p in self.ep.outbox]
        self.ep.outbox.clear()
        for m, p in out:
            if m.observe is not None and m.mtype in (CON, 1):
                key = (p, m.token)
                assert key in self.model, "notification to a peer that does not observe"
                seq = m.observe
                if key in self.last_seq:
                    assert (seq - self.last_seq[key]) & 0xFFFFFF < 1 << 23
                self.last_seq[key] = seq
                assert m.mid is not None
                self.last_mid[key] = m.mid
        return out

    @rule(peer=st.sampled_from(PEERS), token=st.sampled_from(TOKENS))
    def register(self, peer: tuple[str, int], token: bytes) -> None:
        self.mid += 1
        self.model.add((peer, token))  # a re-registration refreshes the same entry
        self._send(Message(CON, Code.GET, self.mid, token, uri_path=["alarm"], observe=0), peer)
        [(resp, _)] = self._collect()
        assert resp.mtype == ACK and resp.observe is not None

    @rule(peer=st.sampled_from(PEERS), token=st.sampled_from(TOKENS))
    def deregister(self, peer: tuple[str, int], token: bytes) -> None:
        self.mid += 1
        self.model.discard((peer, token))
        self.unacked.discard((peer, token))
        self.last_mid.pop((peer, token), None)  # an RST for an ended observation is stale
        self._send(Message(CON, Code.GET, self.mid, token, uri_path=["alarm"], observe=1), peer)
        self._collect()

    @rule(confirmable=st.sampled_from([None, True, False]))
    def notify(self, confirmable: bool | None) -> None:
        self.alarm.updated_state(confirmable=confirmable)
        for m, p in self._collect():
            if m.mtype == CON:
                self.unacked.add((p, m.token))

    @rule(peer=st.sampled_from(PEERS), token=st.sampled_from(TOKENS))
    def reject_last_notification(self, peer: tuple[str, int], token: bytes) -> None:
        key = (peer, token)
        if key in self.model and key in self.last_mid:
            self._send(Message(RST, 0, self.last_mid[key]), peer)
            self.model.discard(key)
            self.unacked.discard(key)
            del self.last_mid[key]

    @rule()
    def ack_everything(self) -> None:
        for (peer, _mid), out in list(self.ep._outstanding.items()):
            self._send(Message(ACK, 0, out.mid), peer)
        for key in self.unacked:
            self.last_mid.pop(key, None)  # a client does not RST what it acknowledged
        self.unacked.clear()

    @rule()
    def let_time_pass(self) -> None:
        # every unacknowledged CON notification is retransmitted and finally given up on
        for _ in range(200):
            deadline = self.ep.next_deadline()
            if deadline is None:
                break
            self.clock.now = deadline
            self.ep.handle_timer()
            self.ep.outbox.clear()
        for key in self.unacked:
            self.model.discard(key)
            self.last_mid.pop(key, None)
        self.unacked.clear()

    @invariant()
    def observers_match_the_model(self) -> None:
        table = self.alarm._observations.get((), {})
        assert set(table) == self.model
        assert self.alarm.observer_count() == len(self.model)


ObserveMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestObserve = ObserveMachine.TestCase
