"""Subscription trie with ``+`` and ``#`` branches and a per-topic match cache.

Subscribers are any hashable objects (MQTT sessions and internal subscribers alike). A lookup
returns one entry per subscriber, carrying the highest QoS among its matching filters (one copy
per client, as mosquitto delivers overlapping subscriptions) and the MQTT 5 Subscription
Identifiers of all its matching filters. Topics starting with ``$`` are not
matched by a ``+`` or ``#`` in the first level.

The cache maps topic name -> match list and is cleared on every (un)subscribe; it is bounded
so a stream of distinct topic names cannot grow it without end.
"""

from __future__ import annotations

from typing import Any

from m2mhub.mqtt.packets import SubscriptionOptions

CACHE_LIMIT = 20_000

# One match: (subscriber, granted QoS, options of the highest-QoS matching filter,
# Subscription Identifiers of every matching filter in ascending order, or None if none has one).
Match = tuple[Any, int, SubscriptionOptions, tuple[int, ...] | None]


class _Node:
    __slots__ = ("children", "ids", "subscribers")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.subscribers: dict[Any, SubscriptionOptions] = {}
        # MQTT 5 Subscription Identifiers by subscriber (None until a filter here has one).
        self.ids: dict[Any, int] | None = None


class TopicTree:
    """Topic filters -> subscribers, with matching of topic names."""

    __slots__ = ("_cache", "_root", "count")

    def __init__(self) -> None:
        self._root = _Node()
        self._cache: dict[str, list[Match]] = {}
        self.count = 0  # number of (filter, subscriber) pairs

    def add(
        self,
        topic_filter: str,
        subscriber: Any,
        options: SubscriptionOptions,
        subscription_id: int | None = None,
    ) -> bool:
        """Subscribe; returns True if this replaced an existing subscription of the subscriber.

        A replaced subscription takes the new ``subscription_id`` (or loses its old one).
        """
        node = self._root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Node()
            node = child
        existed = subscriber in node.subscribers
        node.subscribers[subscriber] = options
        if subscription_id is not None:
            if node.ids is None:
                node.ids = {}
            node.ids[subscriber] = subscription_id
        elif node.ids is not None:
            node.ids.pop(subscriber, None)
        if not existed:
            self.count += 1
        self._cache.clear()
        return existed

    def subscription_id(self, topic_filter: str, subscriber: Any) -> int | None:
        """The MQTT 5 Subscription Identifier of ``subscriber``'s ``topic_filter`` (None: it
        has none, or there is no such subscription)."""
        node: _Node | None = self._root
        for level in topic_filter.split("/"):
            node = node.children.get(level) if node is not None else None
        if node is None or node.ids is None:
            return None
        return node.ids.get(subscriber)

    def remove(self, topic_filter: str, subscriber: Any) -> bool:
        """Unsubscribe; returns False if there was no such subscription."""
        path: list[tuple[_Node, str]] = []
        node = self._root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                return False
            path.append((node, level))
            node = child
        if node.subscribers.pop(subscriber, None) is None:
            return False
        if node.ids is not None:
            node.ids.pop(subscriber, None)
        self.count -= 1
        self._cache.clear()
        # Prune empty branches so the trie does not keep dead levels.
        while path and not node.subscribers and not node.children:
            parent, level = path.pop()
            del parent.children[level]
            node = parent
        return True

    def match(self, topic: str) -> list[Match]:
        """Subscribers whose filters match ``topic`` (cached until the next (un)subscribe)."""
        found = self._cache.get(topic)
        if found is not None:
            return found
        best: dict[Any, SubscriptionOptions] = {}
        ids: dict[Any, list[int]] = {}
        levels = topic.split("/")
        last = len(levels)
        dollar = topic.startswith("$")
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            children = node.children
            if not (i == 0 and dollar):
                hash_node = children.get("#")
                if hash_node is not None:
                    _merge(best, hash_node.subscribers)
                    if hash_node.ids:
                        _merge_ids(ids, hash_node.ids)
            if i == last:
                _merge(best, node.subscribers)
                if node.ids:
                    _merge_ids(ids, node.ids)
                continue
            exact = children.get(levels[i])
            if exact is not None:
                stack.append((exact, i + 1))
            if not (i == 0 and dollar):
                plus = children.get("+")
                if plus is not None:
                    stack.append((plus, i + 1))
        result: list[Match] = [
            (sub, opts.qos, opts, tuple(sorted(ids[sub])) if sub in ids else None)
            for sub, opts in best.items()
        ]
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[topic] = result
        return result


def _merge(best: dict[Any, SubscriptionOptions], found: dict[Any, SubscriptionOptions]) -> None:
    for sub, opts in found.items():
        have = best.get(sub)
        if have is None:
            best[sub] = opts
            continue
        # Overlapping filters, one copy: the highest QoS; the client's own messages come back
        # unless every matching filter says No Local; the RETAIN flag is kept if any says so.
        top = opts if opts.qos > have.qos else have
        no_local = opts.no_local and have.no_local
        keep_retain = opts.retain_as_published or have.retain_as_published
        if top.no_local != no_local or top.retain_as_published != keep_retain:
            top = SubscriptionOptions(top.qos, no_local, keep_retain, top.retain_handling)
        best[sub] = top


def _merge_ids(ids: dict[Any, list[int]], found: dict[Any, int]) -> None:
    for sub, sub_id in found.items():
        have = ids.get(sub)
        if have is None:
            ids[sub] = [sub_id]
        elif sub_id not in have:
            have.append(sub_id)


def filter_matches(topic_filter: str, topic: str) -> bool:
    """Does ``topic_filter`` match the topic name ``topic`` (``$`` rule included)?"""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for i, f in enumerate(f_levels):
        if f == "#":
            return True
        if i >= len(t_levels):
            return False
        if f != "+" and f != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)
