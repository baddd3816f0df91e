"""The authentication hook the broker asks when a client connects."""

from __future__ import annotations

from typing import Protocol


class Authenticator(Protocol):
    """Decides whether a CONNECT with a user name may proceed.

    ``check`` returns True to accept. It is called only for clients that send a user name;
    clients without one are governed by ``allow_anonymous``.
    """

    def check(self, username: str | None, password: bytes | None, client_id: str) -> bool: ...
