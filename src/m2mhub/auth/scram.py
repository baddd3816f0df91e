"""SCRAM-SHA-256 (RFC 7677 / RFC 5802) as an MQTT 5 enhanced authentication method.

Why SCRAM: it is the standard SASL password mechanism (PostgreSQL, Kafka, XMPP, IMAP use it),
the password never crosses the wire, the server stores only a verifier (a stolen password file
does not let anyone log in), both sides prove themselves (the client checks the server's
signature), and it fits MQTT's AUTH exchange exactly:

    CONNECT  Authentication Method "SCRAM-SHA-256", Data: client-first-message
    AUTH 0x18 <- server-first-message (nonce, salt, iteration count)
    AUTH 0x18 -> client-final-message (channel binding "biws", nonce, ClientProof)
    CONNACK 0x00 <- server-final-message ("v=" ServerSignature)   or   CONNACK 0x86

Channel binding is not offered (no TLS here): a client that requires it (``p=``) is refused.
Credentials are verifiers ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (the
format PostgreSQL stores), kept in the broker's ``password_file`` (``m2mhub passwd -H
scram-sha-256``); see docs/mqtt5.md. User names and passwords are prepared with SASLprep.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stringprep
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from m2mhub.auth.enhanced import (
    BAD_USER_NAME_OR_PASSWORD,
    NOT_AUTHORIZED,
    Continue,
    Fail,
    Step,
    Success,
)

METHOD_NAME = "SCRAM-SHA-256"
DEFAULT_ITERATIONS = 4096  # RFC 7677's minimum recommendation
SALT_LENGTH = 16
NONCE_BYTES = 18  # 24 base64 characters

_GS2_HEADER = "n,,"  # no channel binding, no authorization identity
_CHANNEL_BINDING = base64.b64encode(_GS2_HEADER.encode()).decode()  # "biws"


class ScramError(ValueError):
    """A SCRAM message that does not follow RFC 5802."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ScramError("bad base64") from None


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep for user names and passwords (stored strings: unassigned code points
    are refused). Raises :class:`ScramError` for a prohibited character."""
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    if not prepared:
        return prepared
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    for c in prepared:
        if any(check(c) for check in prohibited):
            raise ScramError(f"prohibited character U+{ord(c):04X}")
    # RFC 3454 section 6: right-to-left text must start and end with RandALCat and contain
    # no LCat characters.
    right_to_left = any(stringprep.in_table_d1(c) for c in prepared)
    if right_to_left and (
        any(stringprep.in_table_d2(c) for c in prepared)
        or not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1]))
    ):
        raise ScramError("bad bidirectional text")
    return prepared


def _escape_name(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _unescape_name(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == ",":
            raise ScramError("unescaped ',' in user name")
        if c == "=":
            code = text[i + 1 : i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                raise ScramError("bad '=' escape in user name")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _attributes(message: str, names: str) -> list[str]:
    """The values of ``message``'s leading attributes, which must be ``names`` in order."""
    parts = message.split(",")
    if len(parts) < len(names):
        raise ScramError(f"expected attributes {', '.join(names)}")
    values = []
    for name, part in zip(names, parts, strict=False):
        if not part.startswith(name + "="):
            raise ScramError(f"expected attribute {name!r}")
        values.append(part[2:])
    return values


def _printable_nonce(nonce: str) -> bool:
    return bool(nonce) and all(0x21 <= ord(c) <= 0x7E and c != "," for c in nonce)


def _new_nonce() -> str:
    return base64.b64encode(os.urandom(NONCE_BYTES)).decode("ascii")


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """A stored SCRAM-SHA-256 verifier: what the broker keeps instead of the password."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(
        cls, password: str, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS
    ) -> ScramCredentials:
        """The verifier of ``password`` (a fresh random salt unless one is given)."""
        salt = os.urandom(SALT_LENGTH) if salt is None else salt
        salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, iterations)
        return cls(
            salt,
            iterations,
            _h(_hmac(salted, b"Client Key")),
            _hmac(salted, b"Server Key"),
        )

    def format(self) -> str:
        """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (PostgreSQL's form)."""
        return (
            f"{METHOD_NAME}${self.iterations}:{_b64(self.salt)}"
            f"${_b64(self.stored_key)}:{_b64(self.server_key)}"
        )

    @classmethod
    def parse(cls, text: str) -> ScramCredentials | None:
        """The verifier in ``text`` (as :meth:`format` writes it), or None if it is not one."""
        head, _, rest = text.partition("$")
        if head != METHOD_NAME:
            return None
        params, _, keys = rest.partition("$")
        iterations, _, salt = params.partition(":")
        stored, _, server = keys.partition(":")
        try:
            count = int(iterations)
            result = cls(_unb64(salt), count, _unb64(stored), _unb64(server))
        except (ScramError, ValueError):
            return None
        if count < 1 or len(result.stored_key) != 32 or len(result.server_key) != 32:
            return None
        return result

    def verify_password(self, password: str | bytes) -> bool:
        """Whether ``password`` is the one this verifier was made from (plain CONNECT logins)."""
        text = password.decode("utf-8", "replace") if isinstance(password, bytes) else password
        try:
            other = ScramCredentials.from_password(text, self.salt, self.iterations)
        except ScramError:
            return False
        return hmac.compare_digest(other.stored_key, self.stored_key)


CredentialLookup = Callable[[str], ScramCredentials | None]
"""Finds the verifier of a (SASLprep'd) user name; None for an unknown user."""


class ScramServerExchange:
    """The broker's side of one SCRAM-SHA-256 exchange."""

    __slots__ = ("_auth_message", "_credentials", "_gs2", "_lookup", "_nonce", "_state", "_user")

    def __init__(
        self, lookup: CredentialLookup, connect_username: str | None, nonce: str | None = None
    ) -> None:
        self._lookup = lookup
        self._user = connect_username
        self._state = "first"
        self._nonce = nonce or ""  # the server's part of the nonce (random unless given)
        self._gs2 = ""
        self._auth_message = ""
        self._credentials: ScramCredentials | None = None

    def step(self, data: bytes | None) -> Step:
        """Feed the client's message; see the module docstring for the sequence."""
        try:
            text = (data or b"").decode("utf-8")
        except UnicodeDecodeError:
            return Fail("SCRAM message is not UTF-8")
        try:
            if self._state == "first":
                return self._client_first(text)
            if self._state == "final":
                return self._client_final(text)
        except ScramError as exc:
            return Fail(f"bad SCRAM message: {exc}")
        return Fail("SCRAM exchange already finished")

    def _client_first(self, text: str) -> Step:
        if text.startswith("p="):
            return Fail("SCRAM channel binding is not supported")
        if not (text.startswith("n,") or text.startswith("y,")):
            raise ScramError("client-first-message must start with a gs2 header")
        _, authzid, bare = text.split(",", 2) if text.count(",") >= 2 else ("", "", "")
        if not bare:
            raise ScramError("client-first-message without user name and nonce")
        if bare.startswith("m="):
            raise ScramError("mandatory extensions are not supported")
        name, client_nonce = _attributes(bare, "nr")
        username = saslprep(_unescape_name(name))
        if authzid and authzid != "a=" + _escape_name(username):
            return Fail("SCRAM authorization identity differs from the user name")
        if not _printable_nonce(client_nonce):
            raise ScramError("bad client nonce")
        if self._user is not None and self._user != username:
            return Fail("SCRAM user name differs from the CONNECT's User Name")
        credentials = self._lookup(username)
        if credentials is None:
            # Go on with a made-up verifier, so an unknown user fails like a wrong password
            # (RFC 5802 section 9: do not tell which user names exist).
            # The salt is stable per name, as a real user's would be.
            credentials = ScramCredentials(
                _h(b"m2mhub unknown user " + username.encode())[:SALT_LENGTH],
                DEFAULT_ITERATIONS,
                os.urandom(32),
                os.urandom(32),
            )
        self._user = username
        self._gs2 = text[: len(text) - len(bare)]
        self._credentials = credentials
        self._nonce = client_nonce + (self._nonce or _new_nonce())
        server_first = f"r={self._nonce},s={_b64(credentials.salt)},i={credentials.iterations}"
        self._auth_message = f"{bare},{server_first},"
        self._state = "final"
        return Continue(server_first.encode())

    def _client_final(self, text: str) -> Step:
        self._state = "done"
        without_proof, sep, proof_b64 = text.rpartition(",p=")
        if not sep:
            raise ScramError("client-final-message without proof")
        binding, nonce = _attributes(without_proof, "cr")
        if _unb64(binding) != self._gs2.encode():
            raise ScramError("channel binding data does not echo the gs2 header")
        if nonce != self._nonce:
            raise ScramError("nonce does not match")
        credentials = self._credentials
        assert credentials is not None
        auth_message = (self._auth_message + without_proof).encode()
        client_signature = _hmac(credentials.stored_key, auth_message)
        proof = _unb64(proof_b64)
        if len(proof) != len(client_signature):
            raise ScramError("proof has the wrong length")
        client_key = _xor(proof, client_signature)
        if not hmac.compare_digest(_h(client_key), credentials.stored_key):
            return Fail(
                "SCRAM proof does not match (bad user name or password)", BAD_USER_NAME_OR_PASSWORD
            )
        server_signature = _hmac(credentials.server_key, auth_message)
        return Success(f"v={_b64(server_signature)}".encode(), username=self._user)


class ScramSha256:
    """The broker's SCRAM-SHA-256 method (``m2mhub.auth.enhanced.ServerAuthMethod``).

    ``lookup`` finds a user's verifier, e.g. ``PasswordFile.scram_credentials``.
    """

    name = METHOD_NAME

    def __init__(self, lookup: CredentialLookup) -> None:
        self.lookup = lookup

    def start(
        self, client_id: str, username: str | None, reauthenticating: bool
    ) -> ScramServerExchange:
        """A fresh exchange; the SCRAM user must equal ``username`` when one was given (the
        CONNECT's User Name, or the identity the first authentication established)."""
        return ScramServerExchange(self.lookup, username)


class ScramClientExchange:
    """The client's side of one SCRAM-SHA-256 exchange."""

    __slots__ = ("_bare", "_nonce", "_password", "_server_signature", "_username")

    def __init__(self, username: str, password: str, nonce: str | None = None) -> None:
        self._username = saslprep(username)
        self._password = saslprep(password)
        self._nonce = nonce or _new_nonce()
        self._bare = f"n={_escape_name(self._username)},r={self._nonce}"
        self._server_signature: bytes | None = None

    def initial_data(self) -> bytes:
        """client-first-message."""
        return (_GS2_HEADER + self._bare).encode()

    def step(self, data: bytes | None) -> Step:
        """server-first-message -> Continue(client-final-message)."""
        if self._server_signature is not None:
            return Fail("unexpected SCRAM challenge after the proof")
        try:
            server_first = (data or b"").decode("utf-8")
            if server_first.startswith("e="):
                return Fail(f"server refused: {server_first[2:]}")
            nonce, salt, iterations = _attributes(server_first, "rsi")
            if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
                return Fail("server nonce does not extend ours")
            count = int(iterations)
            if count < 1:
                raise ScramError("bad iteration count")
            salted = hashlib.pbkdf2_hmac("sha256", self._password.encode(), _unb64(salt), count)
        except (ScramError, ValueError, UnicodeDecodeError) as exc:
            return Fail(f"bad SCRAM server-first-message: {exc}")
        without_proof = f"c={_CHANNEL_BINDING},r={nonce}"
        auth_message = f"{self._bare},{server_first},{without_proof}".encode()
        client_key = _hmac(salted, b"Client Key")
        proof = _xor(client_key, _hmac(_h(client_key), auth_message))
        self._server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        return Continue(f"{without_proof},p={_b64(proof)}".encode())

    def finish(self, data: bytes | None) -> Success | Fail:
        """server-final-message: the server must prove it knows our verifier."""
        if self._server_signature is None:
            return Fail("server accepted before the SCRAM exchange finished")
        text = (data or b"").decode("utf-8", "replace")
        if text.startswith("e="):
            return Fail(f"server refused: {text[2:]}")
        if not text.startswith("v="):
            return Fail("server-final-message without a signature")
        try:
            signature = _unb64(text[2:].split(",")[0])
        except ScramError:
            return Fail("bad server signature")
        if not hmac.compare_digest(signature, self._server_signature):
            return Fail("server signature does not match: not the server we know")
        return Success()


class ScramSha256Client:
    """The client's SCRAM-SHA-256 method (``m2mhub.auth.enhanced.ClientAuthMethod``)."""

    name = METHOD_NAME

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password

    def start(self) -> ScramClientExchange:
        """A fresh exchange with a new nonce."""
        return ScramClientExchange(self.username, self.password)


__all__ = [
    "METHOD_NAME",
    "NOT_AUTHORIZED",
    "ScramCredentials",
    "ScramError",
    "ScramSha256",
    "ScramSha256Client",
    "saslprep",
]
