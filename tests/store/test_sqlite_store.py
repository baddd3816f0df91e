"""The SQLite persistence file: round trips, wall-clock times, atomic saves, foreign files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from m2mhub.hub.snapshot import (
    MessageState,
    OutgoingState,
    SessionState,
    Snapshot,
    SubscriptionState,
)
from m2mhub.store.sqlite import PersistenceError, SqliteStore, database_path

SAVED_AT = 1_700_000_000.0


def _everything() -> Snapshot:
    """One of each kind of state the broker persists."""
    return Snapshot(
        messages=[
            MessageState("r/t", b"retained", 1, True),
            MessageState(
                "q/t",
                b"\x00binary\xff",
                2,
                False,
                {
                    0x01: 1,
                    0x02: 300,
                    0x03: "text/plain",
                    0x08: "reply/here",
                    0x09: b"\x01corr",
                    0x26: [("k", "v"), ("k", "w")],
                },
                250.5,
            ),
            MessageState("in/t", b"inbound", 2, False),
        ],
        retained=[0],
        sessions=[
            SessionState(
                "v5",
                5,
                3600,
                "alice",
                12.5,
                41,
                subscriptions=[
                    SubscriptionState("q/#", 2, True, True, 1, 7),
                    SubscriptionState("$share/g/s/+", 1, subscription_id=None),
                ],
                inflight=[
                    OutgoingState(1, 2, False, (7,), None, 40, released=True),
                    OutgoingState(1, 1, False, None, "$share/g/s/+", 41),
                ],
                queue=[OutgoingState(1, 2, True, (7, 9)), OutgoingState(0, 1, False)],
                inbound=[(5, 2), (6, None)],
            ),
            SessionState("v311", 4, 0, None, 0.0, 0, [SubscriptionState("a", 0)]),
        ],
    )


def test_round_trip_keeps_every_kind_of_state(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "m2mhub.db")
    assert store.load(SAVED_AT) is None  # no file yet: a fresh start
    store.save(_everything(), SAVED_AT)
    assert store.load(SAVED_AT) == _everything()


def test_times_are_wall_clock_so_downtime_counts(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "m2mhub.db")
    store.save(_everything(), SAVED_AT)
    later = store.load(SAVED_AT + 100)
    assert later is not None
    assert later.messages[1].expires_in == pytest.approx(150.5)
    assert [s.offline_for for s in later.sessions] == [pytest.approx(112.5), 100.0]


def test_a_later_save_replaces_the_earlier_one(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "m2mhub.db")
    store.save(_everything(), SAVED_AT)
    smaller = Snapshot([MessageState("only", b"x", 0, True)], [0], [])
    store.save(smaller, SAVED_AT + 1)
    assert store.load(SAVED_AT + 1) == smaller


def test_a_failed_save_keeps_the_previous_state(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "m2mhub.db")
    store.save(_everything(), SAVED_AT)
    broken = _everything()
    broken.sessions.append(SessionState("bad", 4, 0, None, 0.0, 0))
    broken.sessions[-1].inbound = [(1, object())]  # type: ignore[list-item]
    with pytest.raises(PersistenceError, match="Unable to save"):
        store.save(broken, SAVED_AT + 5)
    assert store.load(SAVED_AT) == _everything()


def test_a_process_killed_mid_save_leaves_the_previous_state(tmp_path: Path) -> None:
    path = tmp_path / "m2mhub.db"
    SqliteStore(path).save(_everything(), SAVED_AT)
    # The child dies (os._exit, no clean-up) while binding a row in the middle of its save.
    child = textwrap.dedent(
        f"""
        import os, sqlite3
        from m2mhub.hub.snapshot import MessageState, Snapshot
        from m2mhub.store.sqlite import SqliteStore

        class Doom(bytes):
            pass

        sqlite3.register_adapter(Doom, lambda value: os._exit(9))
        messages = [MessageState(f"t/{{i}}", b"x", 0, True) for i in range(500)]
        messages.append(MessageState("t/doom", Doom(b"boom"), 0, True))
        SqliteStore({str(path)!r}).save(Snapshot(messages, list(range(501)), []), 1.0)
        """
    )
    done = subprocess.run([sys.executable, "-c", child], timeout=60, check=False)
    assert done.returncode == 9
    assert SqliteStore(path).load(SAVED_AT) == _everything()


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m2mhub.db"
    path.write_bytes(b"mosquitto db\x00" + bytes(200))
    with pytest.raises(PersistenceError, match="Unrecognised file format"):
        SqliteStore(path).load(SAVED_AT)
    with pytest.raises(PersistenceError, match="Unrecognised file format"):
        SqliteStore(path).save(Snapshot(), SAVED_AT)
    assert path.read_bytes().startswith(b"mosquitto db")  # left as it was


def test_another_programs_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(PersistenceError, match="Unrecognised file format"):
        SqliteStore(path).load(SAVED_AT)


def test_an_unreachable_location_is_an_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "missing" / "m2mhub.db")
    with pytest.raises(PersistenceError, match="Unable to open"):
        store.save(Snapshot(), SAVED_AT)


def test_database_path_joins_location_and_file() -> None:
    # mosquitto 2.0.11 joins them with a slash, whether or not the location ends in one.
    assert database_path("/var/lib/m2mhub", "hub.db") == "/var/lib/m2mhub/hub.db"
    assert database_path("/var/lib/m2mhub/", "hub.db") == "/var/lib/m2mhub//hub.db"
    assert database_path("", "hub.db") == "hub.db"


def test_the_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "m2mhub.db"
    SqliteStore(path).save(_everything(), SAVED_AT)
    assert path.stat().st_mode & 0o777 == 0o600
