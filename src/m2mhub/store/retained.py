"""Retained messages, one per topic name, kept in memory.

The interface (``set``, ``clear``, ``get``, ``matching``, ``__len__``) is what a persistent
store (SQLite, later Redis) implements too.
"""

from __future__ import annotations

from collections.abc import Iterator

from m2mhub.hub.message import Message
from m2mhub.hub.topic_tree import filter_matches


class RetainedStore:
    """Topic name -> last retained :class:`Message`."""

    __slots__ = ("_messages", "bytes")

    def __init__(self) -> None:
        self._messages: dict[str, Message] = {}
        self.bytes = 0  # payload bytes held, for $SYS

    def set(self, message: Message) -> None:
        """Keep ``message`` as the topic's retained message (empty payload clears it)."""
        if not message.payload:
            self.clear(message.topic)
            return
        old = self._messages.get(message.topic)
        if old is not None:
            self.bytes -= len(old.payload)
        self._messages[message.topic] = message
        self.bytes += len(message.payload)

    def clear(self, topic: str) -> bool:
        """Forget the topic's retained message; False if there was none."""
        old = self._messages.pop(topic, None)
        if old is None:
            return False
        self.bytes -= len(old.payload)
        return True

    def get(self, topic: str) -> Message | None:
        return self._messages.get(topic)

    def matching(self, topic_filter: str) -> Iterator[Message]:
        """Retained messages whose topic matches ``topic_filter``."""
        if "+" not in topic_filter and "#" not in topic_filter:
            message = self._messages.get(topic_filter)
            if message is not None:
                yield message
            return
        for topic, message in list(self._messages.items()):
            if filter_matches(topic_filter, topic):
                yield message

    def __len__(self) -> int:
        return len(self._messages)
