"""Password files as the real ``mosquitto_passwd`` writes them, both hash types."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from m2mhub.auth import (
    PasswordFile,
    PasswordFileAuthenticator,
    PasswordFileError,
    hash_password,
    verify_password,
)
from tests.support import require


def mosquitto_passwd(path: Path, user: str, password: str, hash_type: str) -> None:
    exe = require("mosquitto_passwd")
    create = [] if path.exists() else ["-c"]
    subprocess.run(
        [exe, "-H", hash_type, *create, "-b", str(path), user, password],
        check=True,
        capture_output=True,
        timeout=10,
    )


@pytest.mark.interop
@pytest.mark.parametrize(("hash_type", "prefix"), [("sha512-pbkdf2", "$7$"), ("sha512", "$6$")])
def test_files_written_by_mosquitto_passwd(tmp_path: Path, hash_type: str, prefix: str) -> None:
    path = tmp_path / "passwd"
    mosquitto_passwd(path, "alice", "secret", hash_type)
    mosquitto_passwd(path, "bob", "pa ss:wörd", hash_type)
    assert f"alice:{prefix}" in path.read_text()
    passwords = PasswordFile.load(str(path))
    assert passwords.problems == []
    assert passwords.verify("alice", b"secret")
    assert passwords.verify("bob", "pa ss:wörd".encode())
    assert not passwords.verify("alice", b"Secret")
    assert not passwords.verify("alice", b"")
    assert not passwords.verify("alice", None)
    assert not passwords.verify("carol", b"secret")


def test_plain_text_and_empty_entries_are_dropped_like_mosquitto(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text(
        f"# users\nalice:{hash_password('secret')}\ncarol:plain\ndave\nerin:$7$101$!!!$!!!\n\n"
    )
    passwords = PasswordFile.load(str(path))
    assert list(passwords.users) == ["alice"]
    assert passwords.problems == [
        "Error: Invalid password hash type for user carol, removing entry.",
        "Error: Empty password for user dave, removing entry.",
        "Error: Invalid password hash type for user erin, removing entry.",
    ]
    assert not passwords.verify("carol", b"plain")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PasswordFileError, match="Unable to open pwfile"):
        PasswordFile.load(str(tmp_path / "nope"))


@pytest.mark.parametrize("kind", ["sha512", "sha512-pbkdf2"])
def test_hash_and_verify_round_trip(kind: str) -> None:
    field = hash_password("pässword", kind)
    assert field.startswith("$6$" if kind == "sha512" else "$7$101$")
    assert verify_password(field, "pässword")
    assert not verify_password(field, "password")


def test_known_vectors() -> None:
    # Written by mosquitto_passwd 2.0.11 (-H sha512-pbkdf2 and -H sha512), password "secret".
    pbkdf2 = (
        "$7$101$HQ5IZb5PpKbRwFAQ$P0KEP6Q/RKE4eeZ9TcUT1iemLeHV008yKPJB6eHWaJvDGCQsNDUcoEnW+Rd9Iw7"
        "p6eAVg+dqDJO4BEEO3JlejQ=="
    )
    assert verify_password(pbkdf2, "secret")
    assert not verify_password(pbkdf2, "secreT")
    salt = bytes(range(12))
    assert hash_password("secret", "sha512", salt=salt) == hash_password(
        "secret", "sha512", salt=salt
    )
    assert not verify_password("$5$abc$def", "secret")


def test_authenticator_needs_a_known_user_and_password(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text(f"alice:{hash_password('secret', 'sha512')}\n")
    auth = PasswordFileAuthenticator(PasswordFile.load(str(path)))
    assert auth.check("alice", b"secret", "c1")
    assert not auth.check("alice", b"wrong", "c1")
    assert not auth.check(None, None, "c1")
    assert not auth.check("mallory", b"secret", "c1")
