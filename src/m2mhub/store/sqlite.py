"""The persistence file: a broker :class:`~m2mhub.hub.snapshot.Snapshot` in SQLite.

Each save replaces the whole content in one transaction, so a crash mid-save leaves the
previous save intact. Times are stored as wall-clock (Unix) seconds: a session's
``offline_for`` becomes the time it went offline and a message's ``expires_in`` the time it
expires, so the time the broker spends stopped counts, as mosquitto's persistence does.

The file is m2mhub's own format (not mosquitto's ``mosquitto.db``): a file that is not
SQLite, or SQLite without m2mhub's marker, is refused with :class:`PersistenceError`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from m2mhub.hub.snapshot import (
    MessageState,
    OutgoingState,
    SessionState,
    Snapshot,
    SubscriptionState,
)

FORMAT = "m2mhub persistence"
VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL,
    retain INTEGER NOT NULL, properties TEXT NOT NULL, expires_at REAL);
CREATE TABLE IF NOT EXISTS retained (message_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, client_id TEXT NOT NULL UNIQUE, protocol_level INTEGER NOT NULL,
    expiry_interval INTEGER NOT NULL, username TEXT, offline_since REAL NOT NULL,
    next_packet_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    session_id INTEGER NOT NULL, seq INTEGER NOT NULL, topic_filter TEXT NOT NULL,
    qos INTEGER NOT NULL, no_local INTEGER NOT NULL, retain_as_published INTEGER NOT NULL,
    retain_handling INTEGER NOT NULL, subscription_id INTEGER);
CREATE TABLE IF NOT EXISTS outgoing (
    session_id INTEGER NOT NULL, seq INTEGER NOT NULL, message_id INTEGER NOT NULL,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, subscription_ids TEXT, shared TEXT,
    packet_id INTEGER, released INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS inbound (
    session_id INTEGER NOT NULL, packet_id INTEGER NOT NULL, message_id INTEGER);
"""
_TABLES = ("messages", "retained", "sessions", "subscriptions", "outgoing", "inbound")


class PersistenceError(Exception):
    """The persistence file cannot be opened, read or written."""


def database_path(location: str, file_name: str) -> str:
    """Where ``persistence_location`` and ``persistence_file`` put the file, spelt as
    mosquitto 2.0 spells it in its log (``LOCATION/FILE``; no location: the current
    directory)."""
    return f"{location}/{file_name}" if location else file_name


class SqliteStore:
    """One persistence file; :meth:`load` at start-up, :meth:`save` on each autosave."""

    def __init__(self, path: str | Path) -> None:
        self.name = str(path)  # as given, for messages
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        try:
            if not self.path.exists():
                # Owner-only, as mosquitto's file: it holds messages and user names.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA synchronous = FULL")
        except (OSError, sqlite3.OperationalError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise PersistenceError(
                f"Unable to open persistence file {self.name}: {reason}."
            ) from None
        except sqlite3.DatabaseError:
            raise self._unrecognised() from None
        return db

    def _unrecognised(self) -> PersistenceError:
        return PersistenceError(
            f"Unable to restore persistent database from {self.name}. Unrecognised file format."
        )

    def load(self, wall_now: float) -> Snapshot | None:
        """The saved state with times relative to ``wall_now``; None if there is no file yet."""
        if not self.path.exists():
            return None
        db = self._connect()
        try:
            self._check_format(db)
            return _read(db, wall_now)
        except sqlite3.Error as exc:
            raise PersistenceError(
                f"Unable to restore persistent database from {self.name}: {exc}."
            ) from None
        finally:
            db.close()

    def save(self, data: Snapshot, wall_now: float) -> None:
        """Replace the file's content with ``data`` (taken at ``wall_now``), atomically."""
        db = self._connect()
        try:
            if self.path.stat().st_size:
                self._check_format(db)
            db.executescript(_SCHEMA)  # idempotent; the content changes in one transaction:
            db.execute("BEGIN IMMEDIATE")
            try:
                for table in _TABLES:
                    db.execute(f"DELETE FROM {table}")
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('format', ?), ('version', ?),"
                    " ('saved_at', ?)",
                    (FORMAT, str(VERSION), repr(wall_now)),
                )
                _write(db, data, wall_now)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise PersistenceError(f"Unable to save persistence file {self.name}: {exc}.") from None
        finally:
            db.close()

    def _check_format(self, db: sqlite3.Connection) -> None:
        try:
            rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError:
            rows = {}
        if rows.get("format") != FORMAT:
            raise PersistenceError(
                f"Unable to restore persistent database from {self.name}. Unrecognised file format."
            )
        if rows.get("version") != str(VERSION):
            raise PersistenceError(
                f"Unable to restore persistent database from {self.name}. "
                f"Unsupported version {rows.get('version')}."
            )


def _write(db: sqlite3.Connection, data: Snapshot, wall_now: float) -> None:
    db.executemany(
        "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (
                i,
                m.topic,
                m.payload,
                m.qos,
                int(m.retain),
                _properties_text(m.properties),
                None if m.expires_in is None else wall_now + m.expires_in,
            )
            for i, m in enumerate(data.messages)
        ),
    )
    db.executemany("INSERT INTO retained VALUES (?)", ((i,) for i in data.retained))
    for sid, s in enumerate(data.sessions):
        db.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                sid,
                s.client_id,
                s.protocol_level,
                s.expiry_interval,
                s.username,
                wall_now - s.offline_for,
                s.next_packet_id,
            ),
        )
        db.executemany(
            "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    sid,
                    seq,
                    sub.topic_filter,
                    sub.qos,
                    int(sub.no_local),
                    int(sub.retain_as_published),
                    sub.retain_handling,
                    sub.subscription_id,
                )
                for seq, sub in enumerate(s.subscriptions)
            ),
        )
        db.executemany(
            "INSERT INTO outgoing VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    sid,
                    seq,
                    o.message,
                    o.qos,
                    int(o.retain),
                    None if o.subscription_ids is None else json.dumps(list(o.subscription_ids)),
                    o.shared,
                    o.packet_id,
                    int(o.released),
                )
                for seq, o in enumerate([*s.inflight, *s.queue])
            ),
        )
        db.executemany(
            "INSERT INTO inbound VALUES (?, ?, ?)",
            ((sid, mid, message) for mid, message in s.inbound),
        )


def _read(db: sqlite3.Connection, wall_now: float) -> Snapshot:
    data = Snapshot()
    places: dict[int, int] = {}
    for mid, topic, payload, qos, retain, props, expires_at in db.execute(
        "SELECT * FROM messages ORDER BY id"
    ):
        places[mid] = len(data.messages)
        data.messages.append(
            MessageState(
                topic,
                bytes(payload),
                qos,
                bool(retain),
                _properties_of(props),
                None if expires_at is None else expires_at - wall_now,
            )
        )
    data.retained = [places[row[0]] for row in db.execute("SELECT message_id FROM retained")]
    sessions: dict[int, SessionState] = {}
    for sid, client_id, level, expiry, username, offline_since, next_mid in db.execute(
        "SELECT * FROM sessions ORDER BY id"
    ):
        state = SessionState(
            client_id, level, expiry, username, max(0.0, wall_now - offline_since), next_mid
        )
        sessions[sid] = state
        data.sessions.append(state)
    for row in db.execute("SELECT * FROM subscriptions ORDER BY session_id, seq"):
        sid, _, topic_filter, qos, no_local, rap, handling, sub_id = row
        sessions[sid].subscriptions.append(
            SubscriptionState(topic_filter, qos, bool(no_local), bool(rap), handling, sub_id)
        )
    for row in db.execute("SELECT * FROM outgoing ORDER BY session_id, seq"):
        sid, _, message, qos, retain, sub_ids, shared, packet_id, released = row
        item = OutgoingState(
            places[message],
            qos,
            bool(retain),
            None if sub_ids is None else tuple(json.loads(sub_ids)),
            shared,
            packet_id,
            bool(released),
        )
        state = sessions[sid]
        (state.queue if packet_id is None else state.inflight).append(item)
    for sid, packet_id, message in db.execute("SELECT * FROM inbound ORDER BY session_id, rowid"):
        sessions[sid].inbound.append((packet_id, None if message is None else places[message]))
    return data


# MQTT 5 property values are ints, strings, bytes, lists of ints or lists of string pairs:
# JSON keeps them, with bytes tagged (correlation data).
def _properties_text(properties: dict[int, Any]) -> str:
    items = []
    for prop_id, value in properties.items():
        if isinstance(value, bytes | bytearray):
            items.append([int(prop_id), "b", bytes(value).hex()])
        elif isinstance(value, list):
            items.append(
                [int(prop_id), "l", [list(v) if isinstance(v, tuple) else v for v in value]]
            )
        else:
            items.append([int(prop_id), "v", value])
    return json.dumps(items)


def _properties_of(text: str) -> dict[int, Any]:
    properties: dict[int, Any] = {}
    for prop_id, kind, value in json.loads(text):
        if kind == "b":
            properties[prop_id] = bytes.fromhex(value)
        elif kind == "l":
            properties[prop_id] = [tuple(v) if isinstance(v, list) else v for v in value]
        else:
            properties[prop_id] = value
    return properties
