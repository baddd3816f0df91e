"""Persistence for a running hub: restore at start-up, save on a timer, on SIGUSR1 and at exit.

The broker core hands out and takes back plain data (:meth:`Broker.snapshot`,
:meth:`Broker.restore`); this shell owns the clock, the file and the timing. The snapshot is
taken on the event loop (it is a walk over memory), the file is written in a worker thread so
clients are not held up by the disk. Nothing here runs per message.

``autosave_interval`` is mosquitto's: seconds between saves, or with ``autosave_on_changes``
a number of changes. 0 saves only at exit (and on SIGUSR1).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from m2mhub.hub.broker import Broker
from m2mhub.hub.log import BrokerLog
from m2mhub.hub.settings import BrokerSettings
from m2mhub.store.sqlite import PersistenceError, SqliteStore, database_path

CHANGES_POLL = 1.0  # seconds between looks at the change count (autosave_on_changes)


class Autosave:
    """Restores the broker from the persistence file and keeps that file up to date."""

    def __init__(self, broker: Broker, settings: BrokerSettings, log: BrokerLog) -> None:
        self.broker = broker
        self.settings = settings
        self.log = log
        self.store = SqliteStore(
            database_path(settings.persistence_location, settings.persistence_file)
        )
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._received_at_save = 0
        self._retained_at_save = 0

    def restore(self, now: float) -> None:
        """Load the file, if there is one, into the broker (raises :class:`PersistenceError`)."""
        data = self.store.load(time.time())
        if data is not None:
            self.broker.restore(data, now)
        self._mark_saved()

    def start(self) -> None:
        """Start the autosave timer (nothing to do for ``autosave_interval 0``)."""
        if self.settings.autosave_interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _changes(self) -> int:
        """Changes since the last save. mosquitto counts subscription changes, retained
        messages and queued messages; counting them here would put work on the publish path,
        so this uses counters the core keeps anyway: every MQTT packet received (each
        subscription change and each MQTT-published message comes in one) plus the change
        in the number of retained messages (CoAP can change those)."""
        stats = self.broker.stats
        return (
            stats.messages_received
            - self._received_at_save
            + abs(len(self.broker.retained_store) - self._retained_at_save)
        )

    def _mark_saved(self) -> None:
        self._received_at_save = self.broker.stats.messages_received
        self._retained_at_save = len(self.broker.retained_store)

    async def _run(self) -> None:
        interval = self.settings.autosave_interval
        if not self.settings.autosave_on_changes:
            while True:
                await asyncio.sleep(interval)
                await self.save()
        while True:
            await asyncio.sleep(CHANGES_POLL)
            if self._changes() >= interval:
                await self.save()

    async def save(self) -> None:
        """Save now (timer, SIGUSR1); the file is written off the event loop."""
        async with self._lock:
            self._log_saving()
            self._mark_saved()
            data = self.broker.snapshot(asyncio.get_running_loop().time())
            try:
                await asyncio.to_thread(self.store.save, data, time.time())
            except PersistenceError as exc:
                self._log_error(exc)

    async def close(self, now: float) -> bool:
        """Stop the timer and save one last time (the clients are gone by now); False if
        that save failed.

        The lock first: a save in progress finishes writing before this one starts, so an
        older snapshot can never land on top of the last one.
        """
        async with self._lock:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._log_saving()
            try:
                self.store.save(self.broker.snapshot(now), time.time())
            except PersistenceError as exc:
                self._log_error(exc)
                return False
        return True

    def _log_saving(self) -> None:
        if self.log.information:
            self.log.write(f"Saving in-memory database to {self.store.name}.")

    def _log_error(self, exc: PersistenceError) -> None:
        if self.log.error:
            self.log.write(f"Error: {exc}")
