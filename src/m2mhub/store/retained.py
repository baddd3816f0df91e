"""Retained messages, one per topic name, kept in memory.

Messages live in a dict by topic (exact lookups) and in a tree by topic level, so a wildcard
subscription visits only the branches its filter can match instead of every retained topic.

The interface (``set``, ``clear``, ``get``, ``matching``, ``__len__``) is what a persistent
store (SQLite, later Redis) implements too.
"""

from __future__ import annotations

from collections.abc import Iterator

from m2mhub.hub.message import Message


class _Level:
    __slots__ = ("children", "message")

    def __init__(self) -> None:
        self.children: dict[str, _Level] = {}
        self.message: Message | None = None


class RetainedStore:
    """Topic name -> last retained :class:`Message`."""

    __slots__ = ("_messages", "_root", "bytes")

    def __init__(self) -> None:
        self._messages: dict[str, Message] = {}
        self._root = _Level()
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
        node = self._root
        for level in message.topic.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Level()
            node = child
        node.message = message

    def clear(self, topic: str) -> bool:
        """Forget the topic's retained message; False if there was none."""
        old = self._messages.pop(topic, None)
        if old is None:
            return False
        self.bytes -= len(old.payload)
        path: list[tuple[_Level, str]] = []
        node = self._root
        for level in topic.split("/"):
            path.append((node, level))
            node = node.children[level]
        node.message = None
        while path and node.message is None and not node.children:
            parent, level = path.pop()
            del parent.children[level]
            node = parent
        return True

    def items(self) -> Iterator[tuple[str, Message]]:
        """Every (topic, retained message) pair, walking the tree depth first with levels in
        creation order: setting them again in this order rebuilds the same tree (so the
        SUBSCRIBE order survives a restart)."""
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.message is not None:
                yield node.message.topic, node.message
            stack.extend(reversed(node.children.values()))

    def get(self, topic: str) -> Message | None:
        return self._messages.get(topic)

    def matching(self, topic_filter: str) -> Iterator[Message]:
        """Retained messages whose topic matches ``topic_filter`` ($-topics need a literal
        first level), in mosquitto 2.0.11's order.

        That order is the topic tree's, depth first, the children of a level in the order
        they were first created (dicts keep insertion order, as mosquitto's hash tables do);
        a ``#`` subtree is visited parent first, except that the level ``#`` is under
        ("a" for "a/#") comes after everything below it.
        """
        if "+" not in topic_filter and "#" not in topic_filter:
            message = self._messages.get(topic_filter)
            if message is not None:
                yield message
            return
        levels = topic_filter.split("/")
        last = len(levels)
        stack: list[tuple[_Level, int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            if i == last:
                if node.message is not None:
                    yield node.message
                continue
            level = levels[i]
            if level == "#":
                yield from _subtree(node, skip_dollar=i == 0)
                # "a/#" also matches "a" itself.
                if i > 0 and node.message is not None:
                    yield node.message
            elif level == "+":
                # Pushed last to first, so that they are popped in the tree's order.
                for name, child in reversed(node.children.items()):
                    if i == 0 and name.startswith("$"):
                        continue
                    stack.append((child, i + 1))
            else:
                exact = node.children.get(level)
                if exact is not None:
                    stack.append((exact, i + 1))

    def __len__(self) -> int:
        return len(self._messages)


def _subtree(node: _Level, skip_dollar: bool) -> Iterator[Message]:
    """Every message strictly below ``node``, parents before children, in the tree's order."""
    stack = [
        child
        for name, child in reversed(node.children.items())
        if not (skip_dollar and name.startswith("$"))
    ]
    while stack:
        current = stack.pop()
        if current.message is not None:
            yield current.message
        stack.extend(reversed(current.children.values()))
