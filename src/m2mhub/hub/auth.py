"""The authentication and authorization hooks the broker asks."""

from __future__ import annotations

from typing import Protocol

# What an authorizer is asked about (mosquitto's MOSQ_ACL_READ / _WRITE / _SUBSCRIBE).
READ = 1  # a message on this topic is about to be delivered to the client
WRITE = 2  # the client publishes to this topic (or its will is about to be sent)
SUBSCRIBE = 4  # the client subscribes to this filter


class Authenticator(Protocol):
    """Decides whether a CONNECT with a user name may proceed.

    ``check`` returns True to accept. It is called only for clients that send a user name;
    clients without one are governed by ``allow_anonymous``.
    """

    def check(self, username: str | None, password: bytes | None, client_id: str) -> bool: ...


class Authorizer(Protocol):
    """Decides what a client may do with a topic (mosquitto's ACL check).

    ``check`` returns True to allow ``access`` (:data:`READ`, :data:`WRITE` or
    :data:`SUBSCRIBE`) to ``topic`` (a topic name; a filter for SUBSCRIBE) for the client with
    this id and user name (None: anonymous). The broker caches answers per client and topic,
    so they must depend on nothing else; after the rules change, hand the authorizer to
    ``Broker.set_authorizer`` again to drop the cache.
    """

    def check(self, client_id: str, username: str | None, topic: str, access: int) -> bool: ...
