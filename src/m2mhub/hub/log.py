"""The broker's log, in mosquitto's words and format.

Each mosquitto log type is a plain boolean attribute, so the hot path asks ``if log.debug:``
before it formats anything. Lines are prefixed like mosquitto's: ``"1795626194: "`` (Unix
seconds) or ``strftime(log_timestamp_format) + ": "``.

The log is output, not core logic, so it may read the wall clock itself.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import TextIO

from m2mhub.hub.settings import BrokerSettings

LOG_TYPES = ("debug", "error", "warning", "notice", "information", "subscribe", "unsubscribe")


class BrokerLog:
    """Filtered, timestamped log lines written to one or more text streams.

    ``types`` holds mosquitto ``log_type`` values (``all`` and ``none`` included).
    ``destinations`` are open text streams; ``lines``, when not None, also collects every
    written line without its timestamp (used by tests).
    """

    __slots__ = (
        "_clock",
        "_files",
        "_streams",
        "_timestamp",
        "_timestamp_format",
        "debug",
        "error",
        "information",
        "lines",
        "notice",
        "subscribe",
        "unsubscribe",
        "warning",
    )

    def __init__(
        self,
        types: Iterable[str] = ("error", "warning", "notice", "information"),
        destinations: Iterable[TextIO] | None = None,
        timestamp: bool = True,
        timestamp_format: str | None = None,
        clock: Callable[[], float] = time.time,
        collect: bool = False,
    ) -> None:
        self.debug = self.error = self.warning = self.notice = False
        self.information = self.subscribe = self.unsubscribe = False
        self.set_types(types)
        self._streams: list[TextIO] = list(destinations) if destinations is not None else []
        self._files: list[TextIO] = []
        self._timestamp = timestamp
        self._timestamp_format = timestamp_format
        self._clock = clock
        self.lines: list[str] | None = [] if collect else None

    def set_types(self, types: Iterable[str]) -> None:
        """Enable exactly the given mosquitto log types."""
        wanted = set(types)
        if "all" in wanted:
            wanted = set(LOG_TYPES)
        if "none" in wanted:
            wanted = set()
        for name in LOG_TYPES:
            setattr(self, name, name in wanted)

    @classmethod
    def from_settings(
        cls, settings: BrokerSettings, verbose: bool = False, collect: bool = False
    ) -> BrokerLog:
        """The log a ``mosquitto.conf`` asks for; ``-v`` means ``log_type all``, as in mosquitto.

        ``log_dest`` entries understood: ``stderr``, ``stdout``, ``file PATH``, ``none``.
        """
        streams: list[TextIO] = []
        files: list[TextIO] = []
        for dest in settings.log_dest:
            kind, _, arg = dest.strip().partition(" ")
            if kind == "stderr":
                streams.append(sys.stderr)
            elif kind == "stdout":
                streams.append(sys.stdout)
            elif kind == "file" and arg.strip():
                handle = open(arg.strip(), "a", encoding="utf-8", buffering=1)  # noqa: SIM115
                streams.append(handle)
                files.append(handle)
        types: Iterable[str] = ("all",) if verbose else settings.log_types
        log = cls(
            types,
            streams,
            timestamp=settings.log_timestamp,
            timestamp_format=settings.log_timestamp_format,
            collect=collect,
        )
        log._files = files
        return log

    def write(self, text: str) -> None:
        """Write one line (the caller has already checked the type flag)."""
        if self.lines is not None:
            self.lines.append(text)
        if not self._streams:
            return
        if self._timestamp:
            if self._timestamp_format:
                stamp = time.strftime(self._timestamp_format, time.localtime(self._clock()))
            else:
                stamp = str(int(self._clock()))
            line = f"{stamp}: {text}\n"
        else:
            line = text + "\n"
        for stream in self._streams:
            try:
                stream.write(line)
                stream.flush()
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        """Close log files opened by :meth:`from_settings`."""
        for handle in self._files:
            handle.close()
        self._files = []
