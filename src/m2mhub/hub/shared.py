"""MQTT 5 shared subscriptions: one ``$share/{group}/{filter}`` group and its members.

A group sits in the topic trie as one subscriber (with QoS 2, so the trie never lowers what a
member asked for); each message matching its filter goes to one member, chosen round robin,
preferring members that are connected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from m2mhub.mqtt.packets import SubscriptionOptions

if TYPE_CHECKING:
    from m2mhub.hub.session import Session

# What the trie stores for a group: the member's own options decide QoS and Retain As Published.
GROUP_OPTIONS = SubscriptionOptions(qos=2)


class SharedGroup:
    """The members of one shared subscription (same group name and topic filter)."""

    __slots__ = ("filter", "ids", "members", "name", "next", "options")

    def __init__(self, name: str, topic_filter: str) -> None:
        self.name = name
        self.filter = topic_filter
        # Members in subscription order; round robin walks this list.
        self.members: list[Session] = []
        self.options: dict[Session, SubscriptionOptions] = {}
        self.ids: dict[Session, int] = {}
        self.next = 0

    def add(self, session: Session, options: SubscriptionOptions, sub_id: int | None) -> bool:
        """Add or update a member; True if it was a member already."""
        existed = session in self.options
        if not existed:
            self.members.append(session)
        self.options[session] = options
        if sub_id is None:
            self.ids.pop(session, None)
        else:
            self.ids[session] = sub_id
        return existed

    def remove(self, session: Session) -> bool:
        """Remove a member; False if it was not one."""
        if self.options.pop(session, None) is None:
            return False
        self.ids.pop(session, None)
        index = self.members.index(session)
        del self.members[index]
        if index < self.next:
            self.next -= 1
        return True

    def pick(self) -> Session:
        """The member to receive the next message (round robin, connected ones first)."""
        members = self.members
        count = len(members)
        start = self.next if self.next < count else 0
        chosen = start
        for step in range(count):
            i = (start + step) % count
            if members[i].connection is not None:
                chosen = i
                break
        self.next = chosen + 1
        return members[chosen]

    def __repr__(self) -> str:
        return f"SharedGroup({self.name!r}, {self.filter!r}, {len(self.members)} members)"
