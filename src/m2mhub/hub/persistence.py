"""Saving and restoring the broker's durable state: retained messages and persistent sessions.

:func:`snapshot` turns them into the plain data of :mod:`m2mhub.hub.snapshot` for a store to
save; :func:`restore` takes such data back at start-up. ``Broker.snapshot``/``Broker.restore``
are the public entry points (docs/hub-api.md); these functions do the work on the broker's
state. Sans-IO: the time is passed in as ``now``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from m2mhub.hub.message import Message
from m2mhub.hub.session import AWAIT_ACK, AWAIT_COMP, Outgoing, Session
from m2mhub.hub.snapshot import (
    MessageState,
    OutgoingState,
    SessionState,
    Snapshot,
    SubscriptionState,
)
from m2mhub.mqtt.packets import SubscriptionOptions
from m2mhub.mqtt.topics import split_shared

if TYPE_CHECKING:
    from m2mhub.hub.broker import Broker


def snapshot(broker: Broker, now: float) -> Snapshot:
    """Retained messages and persistent sessions as plain data, for a store to save.

    Non-persistent sessions and ``$SYS`` topics are left out (as mosquitto does). A client
    connected at ``now`` counts as going offline at ``now``: if the broker stops without
    another save, its session expiry runs from this snapshot.
    """
    data = Snapshot()
    index: dict[int, int] = {}  # id(Message) -> its place in data.messages

    def ref(message: Message) -> int:
        place = index.get(id(message))
        if place is None:
            place = index[id(message)] = len(data.messages)
            expires = message.expires_at
            data.messages.append(
                MessageState(
                    message.topic,
                    message.payload,
                    message.qos,
                    message.retain,
                    dict(message.properties),
                    None if expires is None else expires - now,
                )
            )
        return place

    def outgoing(item: Outgoing, packet_id: int | None) -> OutgoingState:
        group = item.group
        return OutgoingState(
            ref(item.message),
            item.qos,
            item.retain,
            item.sub_ids,
            None if group is None else f"$share/{group.name}/{group.filter}",
            packet_id,
            item.state == AWAIT_COMP,
        )

    for topic, message in broker.retained_store.items():
        if not topic.startswith("$SYS") and not broker._expired(message):
            data.retained.append(ref(message))
    for session in broker.sessions.values():
        if not session.persistent:
            continue
        gone = session.disconnected_at
        state = SessionState(
            session.client_id,
            session.protocol_level,
            session.expiry_interval,
            session.username,
            0.0 if gone is None or session.connection is not None else now - gone,
            session.next_mid,
        )
        for topic_filter, options in session.subscriptions.items():
            state.subscriptions.append(
                SubscriptionState(
                    topic_filter,
                    options.qos,
                    options.no_local,
                    options.retain_as_published,
                    options.retain_handling,
                    _subscription_id(broker, session, topic_filter),
                )
            )
        state.inflight = [outgoing(item, mid) for mid, item in session.inflight.items()]
        if session.queue:
            state.queue = [outgoing(item, None) for item in session.queue]
        if session.inbound:
            state.inbound = [
                (mid, None if message is None else ref(message))
                for mid, message in session.inbound.items()
            ]
        data.sessions.append(state)
    return data


def _subscription_id(broker: Broker, session: Session, topic_filter: str) -> int | None:
    if not topic_filter.startswith("$share/"):
        return broker.tree.subscription_id(topic_filter, session)
    group_name, shared_filter = split_shared(topic_filter)
    group = broker.shared.get((group_name or "", shared_filter))
    return None if group is None else group.ids.get(session)


def restore(broker: Broker, data: Snapshot, now: float) -> None:
    """Take back a :meth:`snapshot` at start-up (before any client connects).

    Sessions whose expiry passed while the broker was down are not restored, nor are
    queued or retained messages whose MQTT 5 Message Expiry passed.
    """
    broker._now = now
    messages: list[Message] = []
    for kept in data.messages:
        message = Message(kept.topic, kept.payload, kept.qos, kept.retain, dict(kept.properties))
        if kept.expires_in is not None:
            message.expires_at = now + kept.expires_in
        messages.append(message)
    for place in data.retained:
        if not broker._expired(messages[place]):
            broker.retained_store.set(messages[place])
    restored: list[tuple[Session, SessionState]] = []
    for state in data.sessions:
        session = Session(state.client_id, True, state.protocol_level)
        session.expiry_interval = state.expiry_interval
        session.username = state.username
        session.disconnected_at = now - state.offline_for
        session.next_mid = state.next_packet_id
        ends = broker._session_expires_at(session)
        if ends is not None and ends <= now:
            if broker.log.notice:
                broker.log.write(f"Expiring client {session.client_id} due to timeout.")
            broker.stats.clients_expired += 1
            continue
        broker.sessions[session.client_id] = session
        for sub in state.subscriptions:
            options = SubscriptionOptions(
                sub.qos, sub.no_local, sub.retain_as_published, sub.retain_handling
            )
            if sub.topic_filter.startswith("$share/"):
                group_name, shared_filter = split_shared(sub.topic_filter)
                broker._add_shared(
                    session, group_name or "", shared_filter, options, sub.subscription_id
                )
            else:
                broker.tree.add(sub.topic_filter, session, options, sub.subscription_id)
            session.subscriptions[sub.topic_filter] = options
        if ends is not None:
            broker._expiry_soon(session, ends)
        restored.append((session, state))
    # Second pass: a queued message may name a shared group another session joins.
    for session, state in restored:
        for item in state.inflight:
            if item.packet_id is None:
                continue
            # Kept even if expired: the client may have it already, and must see the
            # flow end (resent with DUP, as before the restart).
            entry = _restored_outgoing(broker, messages[item.message], item)
            entry.state = AWAIT_COMP if item.released else AWAIT_ACK
            session.inflight[item.packet_id] = entry
        for item in state.queue:
            message = messages[item.message]
            if not broker._expired(message):
                broker._enqueue(session, _restored_outgoing(broker, message, item))
        if state.inbound:
            session.inbound = {
                mid: None if place is None else messages[place] for mid, place in state.inbound
            }


def _restored_outgoing(broker: Broker, message: Message, state: OutgoingState) -> Outgoing:
    group = None
    if state.shared is not None:
        group_name, shared_filter = split_shared(state.shared)
        group = broker.shared.get((group_name or "", shared_filter))
    return Outgoing(message, state.qos, state.retain, state.subscription_ids, group)
