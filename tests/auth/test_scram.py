"""SCRAM-SHA-256: RFC 7677's test vector, and the independent ``scramp`` library as the peer."""

from __future__ import annotations

import pytest
import scramp

from m2mhub.auth.enhanced import Continue, Fail, Success
from m2mhub.auth.password_file import PasswordFile, hash_password, verify_password
from m2mhub.auth.scram import (
    ScramClientExchange,
    ScramCredentials,
    ScramServerExchange,
    ScramSha256,
    ScramSha256Client,
    saslprep,
)

# RFC 7677 section 3.
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
PENCIL = ScramCredentials.from_password(
    "pencil", __import__("base64").b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096
)


def test_client_follows_rfc7677_test_vector() -> None:
    client = ScramClientExchange("user", "pencil", nonce=CLIENT_NONCE)
    assert client.initial_data() == CLIENT_FIRST
    assert client.step(SERVER_FIRST) == Continue(CLIENT_FINAL)
    assert client.finish(SERVER_FINAL) == Success()


def test_server_follows_rfc7677_test_vector() -> None:
    server = ScramServerExchange({"user": PENCIL}.get, None, nonce=SERVER_NONCE)
    assert server.step(CLIENT_FIRST) == Continue(SERVER_FIRST)
    assert server.step(CLIENT_FINAL) == Success(SERVER_FINAL, username="user")


def test_wrong_password_is_bad_user_name_or_password() -> None:
    server = ScramServerExchange({"user": PENCIL}.get, None)
    client = ScramClientExchange("user", "crayon")
    challenge = server.step(client.initial_data())
    assert isinstance(challenge, Continue)
    answer = client.step(challenge.data)
    assert isinstance(answer, Continue)
    result = server.step(answer.data)
    assert isinstance(result, Fail) and result.reason_code == 0x86


def test_unknown_user_fails_only_at_the_proof_like_a_wrong_password() -> None:
    server = ScramServerExchange({"user": PENCIL}.get, None)
    client = ScramClientExchange("mallory", "pencil")
    challenge = server.step(client.initial_data())
    assert isinstance(challenge, Continue)  # no hint that the name is unknown
    answer = client.step(challenge.data)
    assert isinstance(answer, Continue)
    result = server.step(answer.data)
    assert isinstance(result, Fail) and result.reason_code == 0x86


def test_client_refuses_a_server_that_does_not_know_the_verifier() -> None:
    client = ScramClientExchange("user", "pencil", nonce=CLIENT_NONCE)
    client.step(SERVER_FIRST)
    result = client.finish(b"v=" + b"A" * 43 + b"=")
    assert isinstance(result, Fail) and "signature" in result.reason


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"p=tls-unique,,n=user,r=abc", "channel binding is not supported"),
        (b"n,,r=abc", "bad SCRAM message"),
        (b"garbage", "bad SCRAM message"),
        (b"\xff\xfe", "not UTF-8"),
        (b"n,a=admin,n=user,r=abc", "authorization identity"),
    ],
)
def test_server_refuses_bad_client_first(message: bytes, reason: str) -> None:
    result = ScramServerExchange({"user": PENCIL}.get, None).step(message)
    assert isinstance(result, Fail) and reason in result.reason and result.reason_code == 0x87


def test_server_refuses_tampered_nonce_or_channel_binding() -> None:
    for final in (
        CLIENT_FINAL.replace(b"k0,p=", b"k1,p="),
        CLIENT_FINAL.replace(b"c=biws", b"c=eSws"),
    ):
        server = ScramServerExchange({"user": PENCIL}.get, None, nonce=SERVER_NONCE)
        server.step(CLIENT_FIRST)
        assert isinstance(server.step(final), Fail)


def test_connect_user_name_must_match_the_scram_user() -> None:
    result = ScramServerExchange({"user": PENCIL}.get, "someone-else").step(CLIENT_FIRST)
    assert isinstance(result, Fail) and "User Name" in result.reason


def test_our_server_with_scramp_client() -> None:
    method = ScramSha256({"user": ScramCredentials.from_password("pencil")}.get)
    server = method.start("cid", None, False)
    client = scramp.ScramClient(["SCRAM-SHA-256"], "user", "pencil")
    challenge = server.step(client.get_client_first().encode())
    assert isinstance(challenge, Continue)
    client.set_server_first(challenge.data.decode())
    result = server.step(client.get_client_final().encode())
    assert isinstance(result, Success) and result.data is not None
    client.set_server_final(result.data.decode())  # raises if our signature were wrong


def test_our_client_with_scramp_server() -> None:
    mechanism = scramp.ScramMechanism("SCRAM-SHA-256")
    auth_info = mechanism.make_auth_info("pencil", iteration_count=4096)
    server = mechanism.make_server(lambda username: auth_info)
    client = ScramSha256Client("user", "pencil").start()
    server.set_client_first(client.initial_data().decode())
    answer = client.step(server.get_server_first().encode())
    assert isinstance(answer, Continue)
    server.set_client_final(answer.data.decode())  # raises if our proof were wrong
    assert client.finish(server.get_server_final().encode()) == Success()


def test_scramp_verifiers_are_ours() -> None:
    _, stored, server_key, iterations = scramp.ScramMechanism("SCRAM-SHA-256").make_auth_info(
        "pencil", iteration_count=4096, salt=b"0123456789abcdef"
    )
    ours = ScramCredentials.from_password("pencil", b"0123456789abcdef", 4096)
    assert (ours.stored_key, ours.server_key, ours.iterations) == (stored, server_key, iterations)


def test_saslprep() -> None:
    assert saslprep("I\u00adX") == "IX"  # soft hyphen mapped to nothing
    assert saslprep("\u2168") == "IX"  # NFKC
    assert saslprep("a\u00a0b") == "a b"  # non-ASCII space to space
    with pytest.raises(ValueError):
        saslprep("\u0007")
    with pytest.raises(ValueError):
        saslprep("\u0627\u0031")  # RandALCat must end the string too


def test_password_file_keeps_scram_verifiers(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "pw"
    entry = hash_password("pencil", "scram-sha-256")
    assert entry.startswith("SCRAM-SHA-256$4096:")
    path.write_text(f"user:{entry}\nother:{hash_password('x')}\n")
    passwords = PasswordFile.load(str(path))
    assert passwords.problems == []
    assert passwords.verify("user", b"pencil") and not passwords.verify("user", b"crayon")
    assert verify_password(entry, "pencil")
    assert passwords.scram_credentials("user") == ScramCredentials.parse(entry)
    assert passwords.scram_credentials("other") is None
    assert ScramCredentials.parse(entry) is not None
    assert ScramCredentials.parse("SCRAM-SHA-256$x:y$z:w") is None
