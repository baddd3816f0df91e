"""Topic aliases the broker assigns to the PUBLISHes it sends to one MQTT 5 connection.

A client that sets Topic Alias Maximum > 0 in CONNECT lets the broker replace a topic name by
a number: the first PUBLISH of a topic carries the name and a Topic Alias property, later ones
an empty name and the alias (MQTT 5 3.3.2.3.4).

Policy: the first distinct topics sent to the connection get aliases 1, 2, 3... until the
limit (the client's maximum, capped at :data:`MAX_OUTBOUND_ALIASES`); those keep their alias
for the life of the connection and later topics go with their full name. Never reassigning
costs nothing per send once the table is full and every alias, once sent, saves bytes on each
later send of its topic. LRU replacement would need bookkeeping on every send, and a client
cycling over more topics than aliases would get every PUBLISH in its longest form (name plus
alias) and no saving at all.

Aliases belong to the network connection: a reconnecting client starts with none, so
messages resent after a reconnect carry the full topic again.
"""

from __future__ import annotations

# The most aliases the broker keeps for one connection, whatever the client allows (up to
# 65,535): this bounds the table's memory to a few tens of kilobytes per connection.
MAX_OUTBOUND_ALIASES = 256


class OutboundAliases:
    """Topic name -> alias for one connection; see the module docstring for the policy."""

    __slots__ = ("by_topic", "maximum")

    def __init__(self, client_maximum: int) -> None:
        self.maximum = min(client_maximum, MAX_OUTBOUND_ALIASES)
        self.by_topic: dict[str, int] = {}

    def get(self, topic: str) -> int | None:
        """The alias the client already knows for ``topic``, if any."""
        return self.by_topic.get(topic)

    def free(self) -> int:
        """The alias a new topic would get; 0 when all are taken."""
        used = len(self.by_topic)
        return used + 1 if used < self.maximum else 0

    def assign(self, topic: str, alias: int) -> None:
        """Record that a PUBLISH carrying ``topic`` and ``alias`` is on its way to the client."""
        self.by_topic[topic] = alias
