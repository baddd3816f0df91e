"""The timing loop the micro-benchmarks share: best rate over a few rounds of CPU time."""

from __future__ import annotations

import time
from collections.abc import Callable


def rate(fn: Callable[[], int], seconds: float, rounds: int = 5) -> float:
    """Best items-per-second of ``fn`` (which returns how many items it did) over ``rounds``.

    CPU time (process_time), best round: a shared machine slows some rounds, never speeds one.
    """
    fn()  # warm up
    best = 0.0
    for _ in range(rounds):
        count = 0
        start = time.process_time()
        deadline = start + seconds / rounds
        while True:
            count += fn()
            now = time.process_time()
            if now >= deadline:
                break
        best = max(best, count / (now - start))
    return best
