"""Publishing the ``$SYS/broker/...`` topics from the broker's counters (see stats.py).

Called by ``Broker.tick`` every ``sys_interval`` seconds. Like mosquitto, a topic is published
(retained, QoS 0) only when its value changed since the last time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from m2mhub.hub.broker import Broker


def publish_sys(broker: Broker, now: float) -> None:
    """Bring the loads up to ``now`` and publish every ``$SYS`` value that changed."""
    stats = broker.stats
    stats.update_loads(now)
    connected = broker.clients_connected
    stored = len(broker.retained_store) + sum(
        len(s.queue or ()) + len(s.inflight) for s in broker.sessions.values()
    )
    heap: tuple[int, int] | None = None
    if broker.heap_probe is not None:
        current = broker.heap_probe()
        broker._heap_max = max(broker._heap_max, current)
        heap = (current, broker._heap_max)
    for topic, text in stats.sys_messages(
        now,
        clients_connected=connected,
        clients_total=len(broker.sessions),
        subscriptions=broker.tree.count,
        retained=len(broker.retained_store),
        stored=stored,
        stored_bytes=broker.retained_store.bytes,
        heap=heap,
    ):
        # Like mosquitto, a value is published only when it changed since the last time.
        if broker._sys_last.get(topic) != text:
            broker._sys_last[topic] = text
            broker._route(topic, text.encode(), 0, True, {}, None)
