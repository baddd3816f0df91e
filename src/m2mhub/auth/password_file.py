"""mosquitto password files: ``username:$7$iterations$salt$hash`` or ``username:$6$salt$hash``.

The two hash types ``mosquitto_passwd`` writes (salt and hash are standard base64):

- ``$6$``: SHA-512 of the password followed by the (12-byte) salt, mosquitto 1.6's default;
- ``$7$``: PBKDF2-HMAC-SHA512 with the given iteration count and a 64-byte key, mosquitto
  2.0's default (101 iterations).

m2mhub also reads and writes SCRAM-SHA-256 verifiers (``username:SCRAM-SHA-256$4096:salt$
StoredKey:ServerKey``, ``m2mhub passwd -H scram-sha-256``): such a user can log in with a
password as usual and with MQTT 5 enhanced authentication (``m2mhub.auth.scram``); mosquitto
drops these lines.

Like mosquitto 2.0, entries in plain text or with an unknown hash type are dropped with an
error line, so such a user can never log in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

from m2mhub.auth.scram import ScramCredentials

SALT_LENGTH = 12
PBKDF2_ITERATIONS = 101
PBKDF2_KEY_LENGTH = 64


class PasswordFileError(Exception):
    """The password file cannot be read at all."""


@dataclass(frozen=True, slots=True)
class _Hash:
    kind: str  # "6", "7" or "scram"
    salt: bytes
    digest: bytes
    iterations: int = 0
    scram: ScramCredentials | None = None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _parse_hash(text: str) -> _Hash | None:
    """The parsed hash field of one line, or None if it is not a hash mosquitto understands."""
    scram = ScramCredentials.parse(text)
    if scram is not None:
        return _Hash("scram", scram.salt, scram.stored_key, scram.iterations, scram)
    parts = text.split("$")
    try:
        if len(parts) == 4 and parts[0] == "" and parts[1] == "6":
            return _Hash(
                "6",
                base64.b64decode(parts[2], validate=True),
                base64.b64decode(parts[3], validate=True),
            )
        if len(parts) == 5 and parts[0] == "" and parts[1] == "7" and parts[2].isdigit():
            iterations = int(parts[2])
            if iterations < 1:
                return None
            return _Hash(
                "7",
                base64.b64decode(parts[3], validate=True),
                base64.b64decode(parts[4], validate=True),
                iterations,
            )
    except (binascii.Error, ValueError):
        return None
    return None


def _digest(entry: _Hash, password: bytes) -> bytes:
    if entry.scram is not None:
        text = password.decode("utf-8", "replace")
        try:
            return ScramCredentials.from_password(text, entry.salt, entry.iterations).stored_key
        except ValueError:  # SASLprep refused it
            return b""
    if entry.kind == "6":
        return hashlib.sha512(password + entry.salt).digest()
    return hashlib.pbkdf2_hmac(
        "sha512", password, entry.salt, entry.iterations, dklen=len(entry.digest)
    )


def hash_password(
    password: str | bytes,
    kind: str = "sha512-pbkdf2",
    iterations: int = PBKDF2_ITERATIONS,
    salt: bytes | None = None,
) -> str:
    """A hash field as ``mosquitto_passwd -H sha512-pbkdf2|sha512`` writes it, or a
    SCRAM-SHA-256 verifier (``scram-sha-256``; ``iterations`` below 4096 become 4096)."""
    secret = password.encode("utf-8") if isinstance(password, str) else password
    if kind == "scram-sha-256":
        text = secret.decode("utf-8")
        return ScramCredentials.from_password(text, salt, max(iterations, 4096)).format()
    salt = os.urandom(SALT_LENGTH) if salt is None else salt
    if kind == "sha512":
        return f"$6${_b64(salt)}${_b64(hashlib.sha512(secret + salt).digest())}"
    if kind == "sha512-pbkdf2":
        digest = hashlib.pbkdf2_hmac("sha512", secret, salt, iterations, dklen=PBKDF2_KEY_LENGTH)
        return f"$7${iterations}${_b64(salt)}${_b64(digest)}"
    raise ValueError(f"unknown hash type {kind!r} (sha512, sha512-pbkdf2 or scram-sha-256)")


def verify_password(hash_field: str, password: str | bytes) -> bool:
    """Whether ``password`` matches a ``$6$``/``$7$`` hash field (or a SCRAM verifier)."""
    entry = _parse_hash(hash_field)
    if entry is None:
        return False
    secret = password.encode("utf-8") if isinstance(password, str) else password
    return hmac.compare_digest(_digest(entry, secret), entry.digest)


@dataclass(slots=True)
class PasswordFile:
    """The users of one password file. ``problems`` lists the lines that were dropped."""

    path: str
    users: dict[str, _Hash] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: str) -> PasswordFile:
        """Read a password file; raises :class:`PasswordFileError` if it cannot be read."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise PasswordFileError(f'Unable to open pwfile "{path}": {reason}.') from None
        result = cls(path)
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            username, sep, hash_field = line.partition(":")
            if not username:
                continue
            if not sep or not hash_field:
                result.problems.append(
                    f"Error: Empty password for user {username}, removing entry."
                )
                continue
            entry = _parse_hash(hash_field)
            if entry is None:
                result.problems.append(
                    f"Error: Invalid password hash type for user {username}, removing entry."
                )
                continue
            result.users[username] = entry
        return result

    def scram_credentials(self, username: str) -> ScramCredentials | None:
        """The user's SCRAM-SHA-256 verifier (None: unknown user, or another hash type)."""
        entry = self.users.get(username)
        return entry.scram if entry is not None else None

    def verify(self, username: str, password: bytes | None) -> bool:
        """Whether the user exists and the password matches its hash."""
        entry = self.users.get(username)
        if entry is None or password is None:
            return False
        return hmac.compare_digest(_digest(entry, password), entry.digest)


class PasswordFileAuthenticator:
    """The broker's authenticator for ``password_file`` (``m2mhub.hub.auth.Authenticator``)."""

    __slots__ = ("passwords",)

    def __init__(self, passwords: PasswordFile) -> None:
        self.passwords = passwords

    def check(self, username: str | None, password: bytes | None, client_id: str) -> bool:
        """Accept a client only with a known user name and its password."""
        if username is None:
            return False
        return self.passwords.verify(username, password)
