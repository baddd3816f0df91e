"""Run experiments one after the other, with progress on a text stream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TextIO

from m2mhub.lab.record import Recording
from m2mhub.lab.results import Delivery, Outcome, deliveries_text

PER_EXPERIMENT_TIMEOUT = 20.0


class Progress:
    """``[ 3/32] lab test 3 ... ok (0.04 s, 0.5 s in all)`` lines, one per experiment."""

    def __init__(self, stream: TextIO | None, total: int) -> None:
        self.stream = stream
        self.total = total
        self.started = 0.0
        self.count = 0

    def begin(self, name: str, now: float) -> None:
        if self.count == 0:
            self.started = now
        self.count += 1
        if self.stream is not None:
            width = len(str(self.total))
            self.stream.write(f"[{self.count:>{width}}/{self.total}] {name} ... ")
            self.stream.flush()

    def end(self, outcome: Outcome, now: float) -> None:
        if self.stream is not None:
            verdict = "ok" if outcome.matches else ("ERROR" if outcome.error else "DIFFERS")
            self.stream.write(
                f"{verdict} ({outcome.elapsed:.2f} s, {now - self.started:.1f} s in all)\n"
            )
            self.stream.flush()


async def run_one(
    name: str,
    settings: str,
    expected: list[Delivery] | list[str] | Callable[[], tuple[list[str], str]],
    why: str,
    body: Callable[[Recording], Awaitable[list[Delivery] | list[str]]],
    progress: Progress,
    lanes: tuple[str, ...] | None = None,
) -> Outcome:
    """Run one experiment body with a fresh recording; failures become the row's error.

    ``expected`` may be a function returning ``(expected, why)``, called after the run.
    """
    loop = asyncio.get_running_loop()
    rec = Recording(origin=loop.time()) if lanes is None else Recording(lanes, origin=loop.time())
    progress.begin(name, rec.origin)
    outcome = Outcome(name, settings, "", "", why, rec)
    try:
        actual = await asyncio.wait_for(body(rec), PER_EXPERIMENT_TIMEOUT)
        outcome.actual = deliveries_text(actual)
    except Exception as exc:
        outcome.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        outcome.actual = "-"
    if callable(expected):  # a rule that needs what the run learnt (e.g. a body length)
        items, outcome.why = expected()
        outcome.expected = deliveries_text(items)
    else:
        outcome.expected = deliveries_text(expected)
    outcome.elapsed = loop.time() - rec.origin
    progress.end(outcome, loop.time())
    return outcome
