"""SIGHUP re-checks connected clients against the reloaded password file (mosquitto 2.0.11).

A client whose user was removed or whose password changed is disconnected as if it had sent
DISCONNECT: the log line is the plain ``Client ID disconnected.``, its will is not sent, an
MQTT 5 client gets no DISCONNECT packet (the connection is closed) and a persistent session
stays. Clients whose credentials still hold, and anonymous clients, stay connected.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.interop import raw
from tests.interop.conftest import Broker, BrokerFactory
from tests.interop.raw import RawClient
from tests.support import require

pytestmark = pytest.mark.interop


def passwd(flags: list[str], path: Path, *args: str) -> None:
    """``mosquitto_passwd FLAGS FILE ARGS``."""
    subprocess.run([require("mosquitto_passwd"), *flags, str(path), *args], check=True, timeout=20)


def set_password(path: Path, user: str, password: str) -> None:
    passwd(["-b"] if path.exists() else ["-c", "-b"], path, user, password)


def reload(broker: Broker) -> int:
    mark = broker.mark()
    broker.proc.popen.send_signal(signal.SIGHUP)
    broker.wait_log("Reloading config.", mark)
    return mark


@pytest.fixture
def pw_broker(make_broker: BrokerFactory, tmp_path: Path) -> tuple[Broker, Path]:
    pw = tmp_path / "pw"
    for user in ("alice", "bob", "carol", "watch"):
        set_password(pw, user, f"{user}-pw")
    broker = make_broker([f"password_file {pw}", "allow_anonymous true"])
    broker.auth = {"username": "watch", "password": "watch-pw"}
    return broker, pw


def connect(
    broker: Broker, client_id: str, user: str | None, level: int = 4, **kw: object
) -> RawClient:
    client = RawClient(broker.port, level=level)
    password = f"{user}-pw" if user is not None else None
    connack = client.connect(client_id, username=user, password=password, **kw)  # type: ignore[arg-type]
    assert connack.body[1] == 0, connack
    return client


@pytest.mark.parametrize("level", [4, 5])
def test_reload_disconnects_clients_whose_credentials_no_longer_hold(
    pw_broker: tuple[Broker, Path], level: int
) -> None:
    broker, pw = pw_broker
    watcher = connect(broker, "watcher", "watch")
    watcher.subscribe([("will/#", 0)])
    alice = connect(broker, "c-alice", "alice", level, will=("will/alice", b"gone", 0, False))
    bob = connect(broker, "c-bob", "bob", level, clean=False, will=("will/bob", b"gone", 0, False))
    carol = connect(broker, "c-carol", "carol", level)
    anon = connect(broker, "c-anon", None, level)
    set_password(pw, "alice", "changed")
    passwd(["-D"], pw, "bob")
    mark = reload(broker)
    assert alice.wait_closed() == []  # no DISCONNECT packet, in 5.0 either
    assert bob.wait_closed() == []
    broker.barrier()
    lines = broker.lines_since(mark)
    assert "Client c-alice disconnected." in lines
    assert "Client c-bob disconnected." in lines
    assert not any("c-carol" in line or "c-anon" in line for line in lines)
    # Still connected: they answer a ping.
    for client in (carol, anon, watcher):
        client.send(raw.PINGREQ_BYTES)
        assert client.expect(raw.PINGRESP).ptype == raw.PINGRESP
    # No will was sent (the watcher would have it before this live message).
    watcher.send(raw.publish("will/end", b"end"))
    assert [p.publish_fields()[0] for p in watcher.collect_until(b"end")] == ["will/end"]
    # bob's persistent 3.1.1 session stayed: with credentials back, he resumes it (in 5.0
    # without a Session Expiry Interval the session ended with the connection).
    set_password(pw, "bob", "bob-pw")
    reload(broker)
    again = RawClient(broker.port, level=level)
    connack = again.connect("c-bob", clean=False, username="bob", password="bob-pw")
    assert connack.body[0] & 1 == (1 if level == 4 else 0)  # sessionPresent
    for client in (again, carol, anon, watcher):
        client.close()


def test_reload_keeps_clients_that_lost_their_acl_rights(
    make_broker: BrokerFactory, tmp_path: Path
) -> None:
    """An ACL file change does not disconnect anyone: the new rules apply message by message."""
    pw = tmp_path / "pw"
    set_password(pw, "alice", "alice-pw")
    acl = tmp_path / "acl"
    acl.write_text("user alice\ntopic readwrite x\n")
    broker = make_broker([f"password_file {pw}", f"acl_file {acl}"])
    broker.auth = {"username": "alice", "password": "alice-pw"}
    alice = connect(broker, "c-alice", "alice")
    acl.write_text("user bob\ntopic readwrite y\n")
    mark = reload(broker)
    alice.send(raw.PINGREQ_BYTES)
    assert alice.expect(raw.PINGRESP).ptype == raw.PINGRESP
    broker.barrier()
    assert not any("c-alice disconnected" in line for line in broker.lines_since(mark))
    alice.close()
