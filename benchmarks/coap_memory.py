"""CoAP engine memory, measured with tracemalloc (no sockets): issue 4's memory targets.

- bytes per observer with 10,000 observers of one resource, with and without the
  duplicate-detection records of their registration requests (kept for EXCHANGE_LIFETIME);
- the same after 50 notifications to all of them (CON ones acknowledged);
- the engine's memory after each 65,536 requests, 1,048,576 requests in all (must stay flat:
  duplicate detection is bounded).

Run: ``.venv/bin/python benchmarks/coap_memory.py``
"""

from __future__ import annotations

import gc
import time
import tracemalloc

from m2mhub.coap import Message, ObservableResource, Site
from m2mhub.coap.endpoint import Endpoint
from m2mhub.coap.message import ACK, CON, encode

OBSERVERS = 10_000


class State(ObservableResource):
    """A small observable value, like the lab's alarm."""

    def __init__(self) -> None:
        super().__init__()
        self.state = b"0123456789abcdef"

    def render_get(self, request: Message) -> Message:
        return Message(payload=self.state, content_format=0)


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def main() -> None:
    site = Site()
    site.add_resource(("bench", "get"), State())
    observed = State()
    site.add_resource(("bench", "obs"), observed)
    endpoint = Endpoint(site, clock=time.monotonic)
    tracemalloc.start()
    base = traced()
    for i in range(OBSERVERS):
        request = Message(CON, 1, i, i.to_bytes(8, "big"), uri_path=["bench", "obs"], observe=0)
        endpoint.datagram_received(encode(request), ("127.0.0.1", 20000 + i))
    endpoint.outbox.clear()
    with_dedup = traced() - base
    endpoint._dd_cur.clear()  # the registrations' duplicate-detection records
    endpoint._dd_old.clear()
    observers_only = traced() - base
    print(f"{observed.observer_count()} observers")
    per_observer = with_dedup / OBSERVERS
    print(f"  bytes per observer, with dedup records of the registrations: {per_observer:.0f}")
    print(f"  bytes per observer, observer state alone: {observers_only / OBSERVERS:.0f}")
    for k in range(50):
        observed.updated_state(Message(payload=b"update %d" % k, content_format=0))
        endpoint.outbox.clear()
        for peer, mid in list(endpoint._outstanding):
            endpoint.datagram_received(encode(Message(ACK, 0, mid, b"")), peer)
        endpoint.outbox.clear()
    print(f"  after 50 updates: {(traced() - base) / OBSERVERS:.0f} bytes per observer")

    requests_endpoint = Endpoint(site, clock=time.monotonic)
    requests = [
        encode(Message(CON, 1, i & 0xFFFF, i.to_bytes(4, "big"), uri_path=["bench", "get"]))
        for i in range(65536)
    ]
    start = traced()
    marks = []
    for r in range(16):
        peer = ("127.0.0.1", 30000 + r)
        for datagram in requests:
            requests_endpoint.datagram_received(datagram, peer)
            requests_endpoint.outbox.clear()
        marks.append((traced() - start) // 1024)
    print("engine KiB after each 65,536 GET requests (1,048,576 in all):", marks)


if __name__ == "__main__":
    main()
