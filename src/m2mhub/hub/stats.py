"""Broker counters and the ``$SYS/broker/...`` messages mosquitto publishes from them."""

from __future__ import annotations

import math

from m2mhub import __version__

# The load averages mosquitto publishes: (counter attribute, topic stem).
_LOAD_COUNTERS = (
    ("messages_received", "messages/received"),
    ("messages_sent", "messages/sent"),
    ("publish_dropped", "publish/dropped"),
    ("publish_received", "publish/received"),
    ("publish_sent", "publish/sent"),
    ("bytes_received", "bytes/received"),
    ("bytes_sent", "bytes/sent"),
    ("sockets", "sockets"),
    ("connections", "connections"),
)
_WINDOWS = (("1min", 60.0), ("5min", 300.0), ("15min", 900.0))


class Stats:
    """Running totals kept by the broker (plain attributes: the hot path increments them)."""

    __slots__ = (
        "_last_counts",
        "_last_update",
        "_loads",
        "bytes_received",
        "bytes_sent",
        "clients_expired",
        "clients_maximum",
        "connections",
        "messages_received",
        "messages_sent",
        "publish_bytes_received",
        "publish_bytes_sent",
        "publish_dropped",
        "publish_received",
        "publish_sent",
        "sockets",
        "started",
    )

    def __init__(self, now: float) -> None:
        self.started = now
        self.messages_received = 0  # every MQTT packet received
        self.messages_sent = 0  # every MQTT packet sent
        self.publish_received = 0
        self.publish_sent = 0
        self.publish_dropped = 0
        self.publish_bytes_received = 0
        self.publish_bytes_sent = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.sockets = 0  # sockets accepted
        self.connections = 0  # CONNECTs accepted
        self.clients_maximum = 0
        self.clients_expired = 0
        self._loads: dict[str, float] = {}
        self._last_counts: dict[str, int] = {}
        self._last_update = now

    def update_loads(self, now: float) -> None:
        """Advance the 1/5/15 minute moving averages the way mosquitto's sys_tree.c does."""
        elapsed = now - self._last_update
        if elapsed <= 0:
            return
        per_minute = 60.0 / elapsed
        for attr, _stem in _LOAD_COUNTERS:
            count = int(getattr(self, attr))
            rate = (count - self._last_counts.get(attr, 0)) * per_minute
            self._last_counts[attr] = count
            for window, seconds in _WINDOWS:
                key = f"{attr}/{window}"
                exponent = math.exp(-elapsed / seconds)
                current = self._loads.get(key, 0.0)
                self._loads[key] = rate + exponent * (current - rate)
        self._last_update = now

    def sys_messages(
        self,
        now: float,
        clients_connected: int,
        clients_total: int,
        subscriptions: int,
        retained: int,
        stored: int,
        stored_bytes: int,
        heap: tuple[int, int] | None = None,
    ) -> list[tuple[str, str]]:
        """``($SYS topic, payload)`` pairs in mosquitto's order and wording."""
        disconnected = clients_total - clients_connected
        out = [
            ("$SYS/broker/version", f"m2mhub version {__version__}"),
            ("$SYS/broker/uptime", f"{int(now - self.started)} seconds"),
            ("$SYS/broker/clients/total", str(clients_total)),
            ("$SYS/broker/clients/inactive", str(disconnected)),
            ("$SYS/broker/clients/disconnected", str(disconnected)),
            ("$SYS/broker/clients/active", str(clients_connected)),
            ("$SYS/broker/clients/connected", str(clients_connected)),
            ("$SYS/broker/clients/expired", str(self.clients_expired)),
            ("$SYS/broker/clients/maximum", str(self.clients_maximum)),
        ]
        for attr, stem in _LOAD_COUNTERS:
            for window, _seconds in _WINDOWS:
                value = self._loads.get(f"{attr}/{window}", 0.0)
                out.append((f"$SYS/broker/load/{stem}/{window}", f"{value:.2f}"))
        out += [
            ("$SYS/broker/messages/stored", str(stored)),
            ("$SYS/broker/messages/received", str(self.messages_received)),
            ("$SYS/broker/messages/sent", str(self.messages_sent)),
            ("$SYS/broker/store/messages/count", str(stored)),
            ("$SYS/broker/store/messages/bytes", str(stored_bytes)),
            ("$SYS/broker/subscriptions/count", str(subscriptions)),
            ("$SYS/broker/shared_subscriptions/count", "0"),
            ("$SYS/broker/retained messages/count", str(retained)),
        ]
        if heap is not None:
            out.append(("$SYS/broker/heap/current", str(heap[0])))
            out.append(("$SYS/broker/heap/maximum", str(heap[1])))
        out += [
            ("$SYS/broker/publish/messages/dropped", str(self.publish_dropped)),
            ("$SYS/broker/publish/messages/received", str(self.publish_received)),
            ("$SYS/broker/publish/messages/sent", str(self.publish_sent)),
            ("$SYS/broker/publish/bytes/received", str(self.publish_bytes_received)),
            ("$SYS/broker/publish/bytes/sent", str(self.publish_bytes_sent)),
            ("$SYS/broker/bytes/received", str(self.bytes_received)),
            ("$SYS/broker/bytes/sent", str(self.bytes_sent)),
        ]
        return out
